#include "manifests/secret_text.hpp"

#include <cctype>

#include "manifests/schema.hpp"

namespace pgc::manifests {
namespace {

constexpr std::string_view k_prefix = "secret:";
constexpr const char* k_why =
    "must not start with \"secret:\": that is pgconverge's placeholder for a password it generates "
    "(passwords are never taken from manifests)";

void walk(const YamlValue& node, const std::string& path, Diagnostics& diagnostics) {
  switch (node.kind) {
    case YamlValue::Kind::scalar:
      if (looks_like_secret_reference(node.text))
        diagnostics.push_back(Diagnostic{Severity::error, node.where, path, k_why});
      break;
    case YamlValue::Kind::map:
      for (const auto& entry : node.entries) {
        std::string child = child_path(path, entry.key);
        if (looks_like_secret_reference(entry.key))
          diagnostics.push_back(Diagnostic{Severity::error, entry.key_where, child, std::string("key ") + k_why});
        walk(entry.value, child, diagnostics);
      }
      break;
    case YamlValue::Kind::list:
      for (std::size_t i = 0; i < node.items.size(); ++i) walk(node.items[i], item_path(path, i), diagnostics);
      break;
    case YamlValue::Kind::null:
      break;
  }
}

}  // namespace

bool looks_like_secret_reference(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (text.size() - i < k_prefix.size()) return false;
  for (std::size_t j = 0; j < k_prefix.size(); ++j)
    if (std::tolower(static_cast<unsigned char>(text[i + j])) != k_prefix[j]) return false;
  return true;
}

void check_secret_text(const YamlValue& document, Diagnostics& diagnostics) { walk(document, "", diagnostics); }

}  // namespace pgc::manifests

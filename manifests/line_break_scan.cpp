#include "manifests/line_break_scan.hpp"

#include "manifests/schema.hpp"
#include "util/line_breaks.hpp"

namespace pgc::manifests {

namespace {

std::string quote_key(const std::string& key) { return "\"" + key + "\""; }

// The first line break in text a value may not hold (anything but a newline or a tab).
std::optional<LineBreak> value_break(std::string_view text) {
  std::size_t offset = 0;
  while (auto found = find_line_break(text.substr(offset))) {
    found->offset += offset;
    const char c = text[found->offset];
    if (c != '\n' && c != '\t') return found;
    offset = found->offset + 1;
  }
  return std::nullopt;
}

void scan(const YamlValue& node, const std::string& path, Diagnostics& diagnostics) {
  // field: the one named in the message (for a key its parent, as other key findings do).
  auto refuse = [&](const SourceLocation& where, const std::string& field, const std::string& what,
                    const LineBreak& found) {
    diagnostics.push_back(Diagnostic{Severity::error, where, field, what + " " + line_break_message(found)});
  };
  switch (node.kind) {
    case YamlValue::Kind::scalar:
      if (auto found = value_break(node.text)) refuse(node.where, path, "value", *found);
      return;
    case YamlValue::Kind::map:
      for (const auto& entry : node.entries) {
        const std::string field = child_path(path, entry.key);
        if (auto found = find_line_break(entry.key)) {
          refuse(entry.key_where, path, "key " + quote_key(entry.key), *found);
          continue;
        }
        scan(entry.value, field, diagnostics);
      }
      return;
    case YamlValue::Kind::list:
      for (std::size_t i = 0; i < node.items.size(); ++i)
        scan(node.items[i], item_path(path, i), diagnostics);
      return;
    case YamlValue::Kind::null:
      return;
  }
}

}  // namespace

void scan_line_breaks(const YamlValue& document, Diagnostics& diagnostics) { scan(document, "", diagnostics); }

bool scan_refuses_key(std::string_view key) { return find_line_break(key).has_value(); }

bool scan_refuses_value(std::string_view value) { return value_break(value).has_value(); }

}  // namespace pgc::manifests

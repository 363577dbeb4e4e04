#include "manifests/yaml_value.hpp"

#include <charconv>
#include <regex>

#include <yaml-cpp/yaml.h>

namespace pgc::manifests {

namespace {

// yaml-cpp marks are 0-based, with -1 for "unknown"; SourceLocation is 1-based, 0 for unknown.
SourceLocation location(const YAML::Mark& mark, const std::string& file) {
  if (mark.line < 0 || mark.column < 0) return SourceLocation{file, 0, 0};
  return SourceLocation{file, mark.line + 1, mark.column + 1};
}

YamlValue convert(const YAML::Node& node, const std::string& file) {
  YamlValue out;
  out.where = location(node.Mark(), file);
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      out.kind = YamlValue::Kind::scalar;
      out.text = node.Scalar();
      // "!" is yaml-cpp's tag for quoted scalars; an explicit !!str also means "a string".
      out.quoted = node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";
      break;
    case YAML::NodeType::Sequence:
      out.kind = YamlValue::Kind::list;
      for (const auto& item : node) out.items.push_back(convert(item, file));
      break;
    case YAML::NodeType::Map:
      out.kind = YamlValue::Kind::map;
      for (auto it = node.begin(); it != node.end(); ++it) {
        YamlEntry entry;
        entry.key = it->first.IsScalar() ? it->first.Scalar() : std::string("<complex key>");
        entry.key_where = location(it->first.Mark(), file);
        entry.value = convert(it->second, file);
        out.entries.push_back(std::move(entry));
      }
      break;
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out.kind = YamlValue::Kind::null;
      break;
  }
  return out;
}

}  // namespace

const YamlValue* YamlValue::find(std::string_view key) const {
  for (const auto& entry : entries)
    if (entry.key == key) return &entry.value;
  return nullptr;
}

std::string YamlValue::describe() const {
  switch (kind) {
    case Kind::scalar: return "\"" + text + "\"";
    case Kind::map: return "a mapping";
    case Kind::list: return "a list";
    case Kind::null: break;
  }
  return "null";
}

std::expected<std::vector<YamlValue>, YamlSyntaxError> parse_yaml(const std::string& text,
                                                                  const std::string& file_name) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    return std::unexpected(YamlSyntaxError{location(e.mark, file_name), e.msg});
  }
  std::vector<YamlValue> out;
  for (const auto& document : documents) {
    if (document.IsNull() || !document.IsDefined()) continue;
    out.push_back(convert(document, file_name));
  }
  return out;
}

ScalarType scalar_type(const YamlValue& value) {
  if (value.kind == YamlValue::Kind::null) return ScalarType::null;
  if (value.quoted) return ScalarType::string;
  if (scalar_boolean(value)) return ScalarType::boolean;
  if (scalar_integer(value)) return ScalarType::integer;
  static const std::regex floating(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (std::regex_match(value.text, floating)) return ScalarType::floating;
  return ScalarType::string;
}

std::optional<long long> scalar_integer(const YamlValue& value) {
  if (value.kind != YamlValue::Kind::scalar || value.quoted || value.text.empty()) return std::nullopt;
  std::string_view text(value.text);
  if (text.front() == '+') text.remove_prefix(1);
  long long result = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), result);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return result;
}

std::optional<bool> scalar_boolean(const YamlValue& value) {
  if (value.kind != YamlValue::Kind::scalar || value.quoted) return std::nullopt;
  const std::string& t = value.text;
  if (t == "true" || t == "True" || t == "TRUE") return true;
  if (t == "false" || t == "False" || t == "FALSE") return false;
  return std::nullopt;
}

nlohmann::json to_json(const YamlValue& value) {
  switch (value.kind) {
    case YamlValue::Kind::null: return nullptr;
    case YamlValue::Kind::list: {
      auto out = nlohmann::json::array();
      for (const auto& item : value.items) out.push_back(to_json(item));
      return out;
    }
    case YamlValue::Kind::map: {
      auto out = nlohmann::json::object();
      for (const auto& entry : value.entries)
        if (!out.contains(entry.key)) out[entry.key] = to_json(entry.value);
      return out;
    }
    case YamlValue::Kind::scalar: break;
  }
  switch (scalar_type(value)) {
    case ScalarType::boolean: return *scalar_boolean(value);
    case ScalarType::integer: return *scalar_integer(value);
    case ScalarType::floating: return std::stod(value.text);
    case ScalarType::null: return nullptr;
    case ScalarType::string: break;
  }
  return value.text;
}

}  // namespace pgc::manifests

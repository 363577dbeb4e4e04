#include "reconciler/yaml_json.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <regex>

#include "util/booleans.hpp"

namespace pgc::reconciler {
namespace {

// A string as a YAML scalar that any reader (Patroni's PyYAML included) takes back as exactly
// this string: plain only when it is a simple word, else double-quoted, where yaml-cpp escapes
// control characters and, with EscapeNonAscii (to_yaml), every non-ASCII character: U+0085,
// U+2028 and U+2029 are line breaks to PyYAML (YAML 1.1), never written raw.
void emit_string(YAML::Emitter& out, const std::string& s) {
  static const std::regex plain(R"(^[A-Za-z_/][A-Za-z0-9_./:@%+-]*$)");
  static const std::regex special(R"(^(true|false|yes|no|on|off|y|n|null|~)$)", std::regex::icase);
  if (std::regex_match(s, plain) && !std::regex_match(s, special)) out << s;
  else out << YAML::DoubleQuoted << s;
}

// Block-style YAML of a JSON tree, shared by both key orders (nlohmann::json sorts keys,
// ordered_json keeps them as inserted). quote_keys: keys are written like string values (for
// files other programs read back); otherwise yaml-cpp writes them as given (render's own,
// fixed field names).
template <typename Json>
void emit(YAML::Emitter& out, const Json& value, bool quote_keys) {
  switch (value.type()) {
    case Json::value_t::object:
      if (value.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (auto it = value.begin(); it != value.end(); ++it) {
        out << YAML::Key;
        if (quote_keys) emit_string(out, it.key());
        else out << it.key();
        out << YAML::Value;
        emit(out, it.value(), quote_keys);
      }
      out << YAML::EndMap;
      return;
    case Json::value_t::array:
      if (value.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      out << YAML::BeginSeq;
      for (const auto& v : value) emit(out, v, quote_keys);
      out << YAML::EndSeq;
      return;
    case Json::value_t::boolean:
      out << YAML::TrueFalseBool << value.template get<bool>();
      return;
    case Json::value_t::number_integer:
      out << value.template get<long long>();
      return;
    case Json::value_t::number_unsigned:
      out << value.template get<unsigned long long>();
      return;
    case Json::value_t::number_float:
      out << value.template get<double>();
      return;
    case Json::value_t::string:
      emit_string(out, value.template get_ref<const std::string&>());
      return;
    case Json::value_t::null:
    default:
      out << YAML::Null;
      return;
  }
}

// The emitter's text, ending in a newline.
std::string yaml_text(const YAML::Emitter& out) {
  std::string text = out.c_str();
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

nlohmann::json scalar_to_json(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted in the source: always a string
  static const std::regex integer(R"(^[-+]?[0-9]+$)");
  static const std::regex real(R"(^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$)");
  if (auto b = yaml_boolean(s)) return *b;
  if (s == "null" || s == "~" || s.empty()) return nullptr;
  if (std::regex_match(s, integer)) {
    try {
      return std::stoll(s);
    } catch (...) {
      return s;
    }
  }
  if (std::regex_match(s, real)) return std::stod(s);
  return s;
}

nlohmann::json node_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = node_to_json(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& v : node) out.push_back(node_to_json(v));
      return out;
    }
    case YAML::NodeType::Scalar:
      return scalar_to_json(node);
    default:
      return nullptr;
  }
}

}  // namespace

std::string to_yaml(const nlohmann::json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetOutputCharset(YAML::EscapeNonAscii);
  emit(out, value, true);
  return yaml_text(out);
}

std::string to_ordered_yaml(const nlohmann::ordered_json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  emit(out, value, false);
  return yaml_text(out);
}

Result<nlohmann::json> yaml_to_json(const std::string& text) {
  try {
    return node_to_json(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    return fail(std::string("invalid YAML: ") + e.what());
  }
}

std::string json_string(const nlohmann::json& object, const char* key, const std::string& fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

bool json_bool(const nlohmann::json& object, const char* key, bool fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

std::optional<long long> json_integer(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<long long>();
}

}  // namespace pgc::reconciler

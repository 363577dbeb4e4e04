#pragma once
// A parsed YAML document as plain data with source positions, so that nothing outside
// yaml_value.cpp depends on yaml-cpp.

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/source_location.hpp"

namespace pgc::manifests {

struct YamlEntry;

// One YAML node. Scalars keep their text as written; quoted (or !!str) scalars are always strings.
struct YamlValue {
  enum class Kind { null, scalar, map, list };

  Kind kind = Kind::null;
  std::string text;        // Kind::scalar
  bool quoted = false;     // Kind::scalar: quoted or tagged !!str, so never a number or boolean
  SourceLocation where;    // where the node starts
  std::vector<YamlEntry> entries;  // Kind::map, in document order (duplicate keys kept)
  std::vector<YamlValue> items;    // Kind::list

  // The first entry named key of a map, or nullptr (also for non-maps).
  [[nodiscard]] const YamlValue* find(std::string_view key) const;

  // How the value reads in a message: "\"text\"", "a mapping", "a list" or "null".
  [[nodiscard]] std::string describe() const;
};

struct YamlEntry {
  std::string key;
  SourceLocation key_where;
  YamlValue value;
};

// A YAML syntax error: where the parser stopped (1-based) and what it said.
struct YamlSyntaxError {
  SourceLocation where;
  std::string message;
};

// Parses every document of text (multi-document files allowed); empty documents are dropped.
// file_name is only used for the locations.
std::expected<std::vector<YamlValue>, YamlSyntaxError> parse_yaml(const std::string& text,
                                                                  const std::string& file_name);

// Plain scalars resolved as YAML 1.2 core types (null, true/false, integers, floats, else strings).
enum class ScalarType { null, boolean, integer, floating, string };
ScalarType scalar_type(const YamlValue& value);

// The integer a plain scalar spells (decimal, optional sign), if it fits in a long long.
std::optional<long long> scalar_integer(const YamlValue& value);
// The boolean a plain scalar spells (true/True/TRUE/false/False/FALSE).
std::optional<bool> scalar_boolean(const YamlValue& value);

// The value as JSON, scalars resolved with scalar_type(); maps keep their first duplicate.
nlohmann::json to_json(const YamlValue& value);

}  // namespace pgc::manifests

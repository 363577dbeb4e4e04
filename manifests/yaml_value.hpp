#pragma once
// A parsed YAML document as plain data with source positions, so that nothing outside
// yaml_value.cpp depends on yaml-cpp.

#include <cstddef>
#include <cstdint>
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

// What one manifest file may make the loader build (docs/manifests.md, "Limits"): hostile or
// broken input is refused before it can exhaust memory, time or the stack.
inline constexpr std::size_t k_max_file_bytes = 4 * 1024 * 1024;  // 4 MiB per file
inline constexpr int k_max_nesting_depth = 64;                    // maps/lists inside each other
// Nodes of a file once aliases are expanded ("billion laughs" expands a few lines to 10^9 nodes).
inline constexpr std::size_t k_max_nodes = 100'000;
// Bytes of keys and scalar values once aliases are expanded: one alias of a long string used
// many times stays under k_max_nodes. Twice the file limit, so that input without aliases never
// reaches it.
inline constexpr std::size_t k_max_expanded_bytes = 2 * k_max_file_bytes;

// Why a file could not be parsed: where (1-based) and what was wrong.
struct YamlSyntaxError {
  enum class Kind {
    syntax,  // the parser's own error: message is yaml-cpp's ("illegal map value")
    limit,   // one of the limits above: message is the whole text
  };
  SourceLocation where;
  std::string message;
  Kind kind = Kind::syntax;
};

// Parses every document of text (multi-document files allowed); empty documents are dropped.
// file_name is only used for the locations. Refuses text above k_max_file_bytes, nesting deeper
// than k_max_nesting_depth, more than k_max_nodes nodes and more than k_max_expanded_bytes of
// text (Kind::limit).
std::expected<std::vector<YamlValue>, YamlSyntaxError> parse_yaml(const std::string& text,
                                                                  const std::string& file_name);

// "file is N bytes, more than the limit of 4194304 (4 MiB)": the k_max_file_bytes message.
std::string file_too_large(std::uintmax_t size);

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

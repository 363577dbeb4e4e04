#pragma once
// Conversions between JSON trees (the core's plain data) and YAML text (files on hosts, output).

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "util/expected.hpp"

namespace pgc::reconciler {

// Deterministic block-style YAML: keys in the JSON object's order (sorted), booleans as
// true/false, strings quoted whenever YAML would read them as another type.
std::string to_yaml(const nlohmann::json& value);

// Block YAML of any ordered JSON tree for people to read (render): keys in their order and
// written as given, strings quoted as to_yaml quotes them, UTF-8 kept as it is.
std::string to_ordered_yaml(const nlohmann::ordered_json& value);

// Parses YAML text into JSON (scalars that read as booleans/integers/floats become such).
Result<nlohmann::json> yaml_to_json(const std::string& text);

// Fields of JSON from the outside world (Patroni's answers), read without trusting their shape:
// a missing key or a value of another type gives the fallback, never an exception.
std::string json_string(const nlohmann::json& object, const char* key, const std::string& fallback = "");
bool json_bool(const nlohmann::json& object, const char* key, bool fallback);
std::optional<long long> json_integer(const nlohmann::json& object, const char* key);

}  // namespace pgc::reconciler

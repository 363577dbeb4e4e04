// What counts as "on" in YAML, in PostgreSQL's parameters and in Patroni's compared settings.
#include "util/booleans.hpp"

#include "util/strings.hpp"

namespace pgc {

std::optional<bool> yaml_boolean(std::string_view plain) {
  if (plain == "true" || plain == "True" || plain == "TRUE") return true;
  if (plain == "false" || plain == "False" || plain == "FALSE") return false;
  return std::nullopt;
}

bool postgres_on(std::string_view value) {
  auto v = lower(trim(value));
  return v == "on" || v == "true" || v == "yes" || v == "1";
}

std::optional<bool> patroni_boolean(std::string_view value) {
  auto v = lower(value);
  if (v == "true" || v == "on" || v == "yes") return true;
  if (v == "false" || v == "off" || v == "no") return false;
  return std::nullopt;
}

}  // namespace pgc

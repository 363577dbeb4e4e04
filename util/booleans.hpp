#pragma once
// What counts as "on": the three rules pgconverge reads boolean-ish words by, one per context,
// named for whose rule each is. They differ on purpose; pick by where the text comes from.
// Pure functions, thread-safe.

#include <optional>
#include <string_view>

namespace pgc {

// YAML 1.2's core schema, for plain (unquoted) scalars of manifests and Patroni configs:
// true/True/TRUE and false/False/FALSE. Not YAML 1.1's yes/no/on/off, which StackGres' CRDs
// (Kubernetes, YAML 1.2) read as strings; a quoted scalar is always a string (callers check).
std::optional<bool> yaml_boolean(std::string_view plain);

// PostgreSQL's spellings of a boolean parameter's "on" (postgresql.conf, SGPostgresConfig):
// on/true/yes/1, any case, surrounding whitespace ignored. PostgreSQL also takes unique
// prefixes ("t", "y"); pgconverge does not need them: a value not recognised here is only set
// to "on" explicitly where pgconverge requires on, which PostgreSQL reads the same.
bool postgres_on(std::string_view value);

// How two Patroni dynamic-configuration values are compared as booleans (a DCS value read back
// may be true where the desired one is "on"): true/on/yes and false/off/no, any case, no
// whitespace. Unlike Patroni's own parse_bool, "1" and "0" are not booleans here, on purpose:
// the settings compared include integers (synchronous_node_count, ttl), whose "1" must not
// equal true.
std::optional<bool> patroni_boolean(std::string_view value);

}  // namespace pgc

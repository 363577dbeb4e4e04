#pragma once
// spec.configurations.patroni.dynamicConfig: Patroni 3.0.2's documented dynamic configuration
// (docs/dynamic_configuration.rst, patroni/config.py __DEFAULT_CONFIG) as an allowlist of keys
// and value types. Whatever a pusher writes there reaches the DCS (PATCH /config) and every
// member's bootstrap.dcs: a key Patroni does not document, a '/' or '~' in a key, a value of
// another shape (an object where a number belongs) is refused, never passed on.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace pgc::manifests {

// One refusal: the dotted field (base + key path) and why.
struct DynamicConfigFinding {
  std::string field;
  std::string message;
};

// Every refusal of config (a mapping; base is its dotted path) against the allowlist: unknown
// keys (with a "did you mean"), keys pgconverge owns, values of the wrong type or range, slot
// names and sub-keys Patroni would interpret otherwise, line breaks in any string. Keys
// pgconverge takes from elsewhere (ignored_dynamic_key_reason) are not checked here. scanned:
// the document went through scan_line_breaks (line_break_scan.hpp), so keys and values it
// reported are left out here (each finding once).
// tls: the cluster's PostgreSQL TLS is on (postgresql.pg_hba lines may not admit the network
// without it).
std::vector<DynamicConfigFinding> check_dynamic_config(const nlohmann::json& config, const std::string& base,
                                                       bool scanned = false, bool tls = true);

// Documented keys pgconverge does not pass to Patroni from the manifest (standby_cluster, pause),
// and why; nullopt for any other key. (postgresql is checked: its pg_hba is taken, the rest ignored.)
std::optional<std::string> ignored_dynamic_key_reason(std::string_view key);

// True for the keys passed to Patroni as written once check_dynamic_config found nothing.
bool passed_dynamic_key(std::string_view key);

// Why a key of dynamicConfig.postgresql is ignored; nullopt for pg_hba, which is taken (placed
// after the lines pgconverge's and Patroni's own access need: reconciler/compile.cpp).
std::optional<std::string> postgresql_key_ignored_reason(std::string_view key);

// The documented keys, sorted (for messages and tests).
const std::vector<std::string>& dynamic_config_keys();

}  // namespace pgc::manifests

#pragma once
// Cluster secrets (superuser, replication, rewind, REST API passwords): generated with a CSPRNG
// on first bootstrap, kept in the state dir (0600) and on the hosts only inside the Patroni
// config, never printed. Recovered from a host's Patroni config when the state dir is lost.

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "reconciler/desired.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

struct ClusterSecrets {
  std::map<SecretKind, std::string> values;
  [[nodiscard]] const std::string& get(SecretKind kind) const;
  // Every kind a cluster has had from the start is present (later kinds may be missing).
  [[nodiscard]] bool complete() const;
};

// New random secrets for every kind (32 characters from a 62-letter alphabet, /dev/urandom).
ClusterSecrets generate_secrets();

// Adds a new random value for every kind secrets lacks (a state file written before the kind
// existed); true when it added one.
bool add_missing_secrets(ClusterSecrets& secrets);

// Secrets read back from a member's patroni.yml (as JSON); nullopt unless all are present.
std::optional<ClusterSecrets> recover_secrets(const nlohmann::json& patroni_config);

// A copy of config with every "secret:<kind>" string replaced by its value.
nlohmann::json resolve_secrets(const nlohmann::json& config, const ClusterSecrets& secrets);

// A copy of value with every string that equals a secret value replaced by <redacted>; used on
// anything read from a host before it is shown.
nlohmann::json redact_secrets(const nlohmann::json& value, const ClusterSecrets& secrets);

// The secrets files under <state-dir>/secrets/<namespace>.<cluster>.json, mode 0600.
class SecretStore {
 public:
  explicit SecretStore(std::filesystem::path state_dir) : dir_(std::move(state_dir)) {}
  Result<std::optional<ClusterSecrets>> load(const std::string& ns, const std::string& cluster) const;
  Result<void> save(const std::string& ns, const std::string& cluster, const ClusterSecrets& secrets) const;
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  [[nodiscard]] std::filesystem::path path_for(const std::string& ns, const std::string& cluster) const;
  std::filesystem::path dir_;
};

}  // namespace pgc::reconciler

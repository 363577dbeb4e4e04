#pragma once
// Cluster secrets (superuser, replication, rewind, REST API passwords): generated with a CSPRNG
// on first bootstrap, kept in the state dir (0600) and on the hosts only inside the Patroni
// config, never printed. Recovered from a host's Patroni config when the state dir is lost.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/desired.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

struct ClusterSecrets {
  std::map<SecretKind, std::string> values;
  // The certificate (PEM) of the cluster's CA in the state dir (cluster_ca.hpp), when its TLS
  // certificates are generated and the CA exists; its key stays in the state dir.
  std::string ca_certificate_pem;
  // What the members' REST certificates must chain to (rest_ca_pem: the state dir's CA, else the
  // CA files the hosts hold, read over their verified SSH — a lost state dir), and whether https
  // is the scheme to try first (the cluster's TLS is on). Empty: plain http only.
  std::string rest_ca_pem;
  bool rest_tls = false;
  [[nodiscard]] const std::string& get(SecretKind kind) const;
  // Every kind a cluster has had from the start is present (later kinds may be missing).
  [[nodiscard]] bool complete() const;
};

// New random secrets for every kind (32 characters from a 62-letter alphabet, /dev/urandom).
ClusterSecrets generate_secrets();

// Every kind there is, in a fixed order.
const std::vector<SecretKind>& all_secret_kinds();
// The kind named text ("superuser", "replication", …).
std::optional<SecretKind> parse_secret_kind(const std::string& text);

// Adds a new random value for every kind secrets lacks (a state file written before the kind
// existed); true when it added one.
bool add_missing_secrets(ClusterSecrets& secrets);

// Where a secret goes in a member's patroni.yml: the only places a password is ever put.
struct SecretPlacement {
  SecretKind kind;
  std::string pointer;  // JSON pointer, e.g. /postgresql/authentication/superuser/password
};
const std::vector<SecretPlacement>& secret_placements();

// Secrets read back from a member's patroni.yml (as JSON); nullopt unless all are present.
std::optional<ClusterSecrets> recover_secrets(const nlohmann::json& patroni_config);

// A copy of config with the reference at each of secret_placements() replaced by its value; a
// "secret:..." string anywhere else is left as it is (manifests cannot hold one: validation).
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
  // A rotation `pgconverge secrets rotate` requested: the new values of the kinds it rotates,
  // kept beside the secrets file (<namespace>.<cluster>.rotate.json, 0600) until apply has set
  // them on the leader and saved them as the cluster's secrets.
  Result<std::optional<ClusterSecrets>> load_rotation(const std::string& ns, const std::string& cluster) const;
  Result<void> save_rotation(const std::string& ns, const std::string& cluster, const ClusterSecrets& rotated) const;
  Result<void> remove_rotation(const std::string& ns, const std::string& cluster) const;
  [[nodiscard]] std::filesystem::path file(const std::string& ns, const std::string& cluster) const {
    return path_for(ns, cluster);
  }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  [[nodiscard]] std::filesystem::path path_for(const std::string& ns, const std::string& cluster) const;
  std::filesystem::path dir_;
};

}  // namespace pgc::reconciler

#pragma once
// Where a cluster's secrets come from in a run (the "secrets" pass): the state dir; else read back
// from the hosts' Patroni configs (every one found must agree); else new ones, but only at a
// verified first bootstrap: every declared host answered and none shows a trace of the cluster
// (its Patroni config, its data directory, its Patroni service running) and its DCS has no key for
// it. Anything else is refused with the way out: passwords are never generated over working ones.
// Pure decision logic over what the probe and the DCS reported (unit-tested with plain data).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/secrets.hpp"

namespace pgc::reconciler {

// What the hosts and the DCS show of one cluster.
struct SecretEvidence {
  std::vector<std::string> unanswered;             // "pg-2 (connection refused)": hosts that did not answer
  std::vector<std::string> traces;                 // "data directory /var/lib/... on pg-1", …
  std::map<std::string, ClusterSecrets> configs;   // host → the secrets its Patroni config holds
  std::optional<bool> dcs_has_cluster;             // nullopt: the DCS could not be asked
  std::string dcs_error;                           // why not
};

// The DCS keys Patroni writes for a cluster once it exists (etcd3, namespace /service/).
std::vector<std::string> dcs_cluster_keys(const DesiredCluster& cluster);

// The evidence the probe gathered (every declared host) for cluster; the DCS fields are left unset.
SecretEvidence host_evidence(const DesiredCluster& cluster, const std::map<std::string, ObservedHost>& hosts);

enum class SecretOrigin { stored, recovered, generated, refused };

struct SecretDecision {
  SecretOrigin origin = SecretOrigin::refused;
  std::optional<ClusterSecrets> secrets;
  std::string error;  // refused: what was found and how to recover
};

// The decision for a cluster without secrets in the state dir. state_file names where they were
// looked for (in the message). dcs_asked: whether evidence.dcs_has_cluster was filled (the DCS is
// asked only when the hosts left nothing else to decide on).
SecretDecision decide_missing_secrets(const DesiredCluster& cluster, const SecretEvidence& evidence,
                                      const std::string& state_file);

// True when the hosts alone decide (recover or refuse) and the DCS need not be asked.
bool hosts_decide(const SecretEvidence& evidence);

// Secrets agreed on by every host's config; nullopt (with why) when they differ or none has them.
std::optional<ClusterSecrets> agreed_secrets(const SecretEvidence& evidence, std::string* why = nullptr);

}  // namespace pgc::reconciler

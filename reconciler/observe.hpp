#pragma once
// The observe pass: probe every host over SSH (one round trip each), then every cluster over the
// Patroni REST API and every member over libpq, in parallel with a bounded worker pool.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "manifests/model.hpp"
#include "providers/ssh/remote_host.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "util/base64.hpp"
#include "util/strings.hpp"
#include "reconciler/secrets.hpp"
#include "reconciler/world.hpp"

namespace pgc::reconciler {

// What to look at on one host.
struct HostProbe {
  std::vector<std::string> packages;
  std::vector<std::string> files;
  std::vector<std::string> services;
  std::vector<std::string> data_dirs;
  std::vector<std::string> roles;  // PostgreSQL roles, read from the host's local server
  std::vector<std::string> volume_dirs;  // data dirs of clusters declaring pods.persistentVolume.size
};

// The fixed shell script run on each host; its arguments are the probe's items, quoted.
const std::string& host_probe_script();
// The arguments for host_probe_script().
std::vector<std::string> host_probe_args(const HostProbe& probe);
// Base64 as the probe sends file contents (padding and whitespace ignored).
inline std::string probe_base64_decode(std::string_view in) { return base64_decode(in); }
// Parses the script's output into an ObservedHost (reachable = true).
Result<ObservedHost> parse_host_probe(const std::string& host_name, const std::string& output);

// What every host should be probed for, given the desired state (all clusters' files, services
// and data dirs on every host, so that members placed earlier or elsewhere are seen too).
HostProbe probe_for(const DesiredState& desired);

// SSH sessions opened during a run, one per host, reused by observe and apply. Thread-safe for
// distinct hosts; a session itself is used by one thread at a time.
class Sessions {
 public:
  explicit Sessions(World& world) : world_(world) {}
  // The session for host, connecting on first use; the error is remembered (no retry storm).
  Result<providers::RemoteHost*> get(const manifests::Host& host);

 private:
  World& world_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<providers::RemoteHost>> open_;
  std::map<std::string, Error> failed_;
};

struct ObserveOptions {
  std::size_t workers = 8;
};

// Probes every host over SSH, one round trip each, in parallel.
std::map<std::string, ObservedHost> observe_hosts(const manifests::ManifestSet& manifests, const DesiredState& desired,
                                                  Sessions& sessions, const ObserveOptions& options);

// Observes every cluster through Patroni and PostgreSQL, in parallel. secrets: per cluster name
// (REST/libpq credentials); clusters whose secrets are unknown are observed without libpq.
std::map<std::string, ObservedCluster> observe_clusters(const manifests::ManifestSet& manifests,
                                                        const DesiredState& desired,
                                                        const std::map<std::string, ObservedHost>& hosts,
                                                        const std::map<std::string, ClusterSecrets>& secrets,
                                                        World& world, const ObserveOptions& options);

// Where members live now, read from the member names in the Patroni configs found on the hosts;
// feeds sticky placement.
PlacementHistory placement_from(const DesiredState& desired, const std::map<std::string, ObservedHost>& hosts);

// Observes one cluster through the Patroni REST API of the given addresses (first that answers)
// and PostgreSQL on each member. Used by observe() and by apply's waits.
ObservedCluster observe_cluster(const DesiredCluster& cluster, const std::vector<std::string>& addresses,
                                const ClusterSecrets* secrets, World& world, bool with_postgres,
                                std::size_t workers);

// Only who the members are and their roles (GET /cluster of the first member that answers, no
// configuration, no PostgreSQL): what a call that goes to the leader first needs. When no member
// answers, the same error fields as observe_cluster.
ObservedCluster observe_members(const DesiredCluster& cluster, const std::vector<std::string>& addresses,
                                const ClusterSecrets* secrets, World& world);

// The REST endpoint of a member address for a cluster (port 8008, Basic auth when known).
providers::PatroniEndpoint patroni_endpoint(const std::string& address, const ClusterSecrets* secrets);

}  // namespace pgc::reconciler

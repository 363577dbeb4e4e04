#pragma once
// The etcd pgconverge runs on Hosts (EtcdCluster spec.hosts): compiling it, its
// /etc/default/etcd, what the host probe asks of it, and planning its changes (forming a new
// cluster, rolling config fixes, member add before start, member remove before stop).

#include <map>
#include <set>
#include <string>
#include <vector>

#include "manifests/model.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/plan.hpp"

namespace pgc::reconciler {

// Patroni's etcd3.hosts for an EtcdCluster: its spec.endpoints, or for spec.hosts every selected
// Host's address:clientPort (in member order).
std::vector<std::string> etcd_client_endpoints(const manifests::EtcdCluster& etcd,
                                               const std::vector<manifests::Host>& hosts);

// Compiles every EtcdCluster with spec.hosts. Errors (a Host without an IP address) are appended
// to diagnostics at the EtcdCluster's spec.hosts.
std::vector<DesiredEtcd> compile_etcds(const manifests::ManifestSet& manifests, Diagnostics& diagnostics);

// ETCD_INITIAL_CLUSTER and ETCD_INITIAL_CLUSTER_STATE: read by etcd only when it starts on an
// empty data directory.
struct EtcdInitial {
  std::string cluster;  // "pg-1=http://10.0.0.11:2380,pg-2=…"
  std::string state;    // "new" or "existing"
};
// Every declared member, state new: the configuration that forms a new cluster.
EtcdInitial new_cluster_initial(const DesiredEtcd& etcd);

// The exact text of /etc/default/etcd for one member (Debian's etcd.service reads it as
// EnvironmentFile; variable names as `etcd --help` of etcd 3.4 lists them).
std::string etcd_config_text(const DesiredEtcd& etcd, const DesiredEtcdMember& member, const EtcdInitial& initial);

// KEY=VALUE lines of an environment file (comments and blank lines skipped).
std::map<std::string, std::string> parse_env_file(const std::string& text);

// The probe items of one host (pairs KIND VALUE for host_probe_script()): its data directory and
// local client URL when it is a declared member of a managed etcd, else nothing.
std::vector<std::string> etcd_probe_args(const DesiredState& desired, const std::string& host_name);
// Parses an "etcddir …" or "etcd …" line of the probe into host.etcd. False for other lines;
// an etcd line whose payload is not what etcdctl prints is reported as an error.
Result<bool> parse_etcd_probe_line(const std::vector<std::string>& fields, ObservedHost& host);

// The etcd changes of a plan, in execution order, and what stops them.
struct EtcdPlan {
  std::vector<Change> changes;
  std::vector<std::string> errors;
  std::map<std::string, std::set<std::string>> packages;  // host → etcd packages not installed
  std::set<std::string> refused;  // etcds nothing is planned for: their clusters are not planned either
};
EtcdPlan plan_etcd(const manifests::ManifestSet& manifests, const DesiredState& desired, const ObservedState& observed);

// True for the steps only etcd changes use (steps::Etcd*, each naming its EtcdCluster; executed by
// reconciler/etcd_apply.hpp).
bool is_etcd_step(const Step& step);

}  // namespace pgc::reconciler

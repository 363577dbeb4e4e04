#pragma once
// The steps a plan's changes ask the executor for: one struct per kind, each with the typed data
// its runner needs (no string-keyed payload: a misspelt field does not compile), and Step, the
// variant of them all. `k_name` is the step's name as `plan` and `plan -o json` print it.
// Runners dispatch with std::visit, so a new kind that no runner handles fails to compile. Every
// field has a default initializer: designated initializers may leave any out (-Wextra accepts it).

#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/desired.hpp"

namespace pgc::reconciler {
namespace steps {

// Host preparation (host_prep.cpp), before anything else.

// Host: add the repository (pgdg) to apt's sources, then apt-get update.
struct ConfigureRepository {
  static constexpr const char* k_name = "configure-repository";
  std::string repository{};
};

// Host: apt-get install the packages. apply first resolves every host's install with apt-get -s
// (after apt-get update when update is set), except one after_repository: its repository is only
// added by the configure-repository step before it, which updates the lists.
struct InstallPackages {
  static constexpr const char* k_name = "install-packages";
  std::vector<std::string> packages{};
  bool update = false;
  bool after_repository = false;
};

// Host: stop Debian's cluster version/cluster and set its start.conf to disabled (data kept).
struct StopDebianCluster {
  static constexpr const char* k_name = "stop-debian-cluster";
  std::string version{};
  std::string cluster{};  // its name ("main")
  bool online = false;
};

// Members of a cluster (plan.cpp).

// Member: write its patroni.yml (secrets resolved at execution).
struct WriteConfig {
  static constexpr const char* k_name = "write-config";
};

// Member: write its TLS files (postgres_ssl.hpp's TlsFiles): a certificate issued now by the
// cluster's CA (created in the state dir at the first one), or the user's files. PostgreSQL and
// Patroni's REST API load them at the next reload.
struct WriteCertificate {
  static constexpr const char* k_name = "write-certificate";
};

// Member: systemctl reload (Patroni re-reads its local config: tags…).
struct ReloadMember {
  static constexpr const char* k_name = "reload";
};

// What a start waits for once the service runs.
enum class StartWait {
  running,    // the member runs (or streams)
  leader,     // the member leads: the bootstrap's first member
  streaming,  // the member (or every one of wait_members) streams as a replica
  none,       // nothing: a later start waits for it (replicas joining together)
};
std::string to_string(StartWait wait);

// Member: enable (when enable) + start its service, then wait.
struct StartMember {
  static constexpr const char* k_name = "start";
  StartWait wait = StartWait::running;
  bool enable = false;
  std::vector<std::string> wait_members{};  // whom the wait is for; empty: the member itself
};

// Cluster: PATCH /config with patch (JSON by nature: Patroni's dynamic configuration), then read
// it back until every patched key holds.
struct PatchDcs {
  static constexpr const char* k_name = "patch-dcs";
  nlohmann::json patch = nlohmann::json::object();
  // Turn synchronous_mode off first, until the leader's synchronous_standby_names clear (Patroni
  // 3.0.2 keeps '*' or stale names otherwise; docs/replication-semantics.md §5.5).
  bool release_first = false;
  // Non-empty: the release is for these stale names, and happens only while some are still stale.
  std::vector<std::string> release_stale{};
};

// Strict mode: the members a restart or stop may not count on to stream. Set when no other
// replica streams at plan time; the step then first waits for one (one coming back) to stream.
using AwaitStreamingExcept = std::optional<std::vector<std::string>>;

// Member: POST /restart (a pending restart), one at a time.
struct RestartMember {
  static constexpr const char* k_name = "restart";
  AwaitStreamingExcept await_streaming_except{};
};

// Cluster: switch over from leader to candidate.
struct Switchover {
  static constexpr const char* k_name = "switchover";
  std::string leader{};
  std::string candidate{};
};

// Member (scale down): stop + disable its service; the data directory is kept.
struct StopMember {
  static constexpr const char* k_name = "stop";
  std::string service{};
  std::string config_path{};
  AwaitStreamingExcept await_streaming_except{};
};

// Sidecars (sidecars.cpp, rotation.cpp).

// Member: write one of its managed files (sidecars.hpp), by path.
struct WriteFile {
  static constexpr const char* k_name = "write-file";
  std::string path{};
};

enum class ServiceAction { start, restart, reload, enable, stop };
std::string to_string(ServiceAction action);

// Member: start, restart, reload, enable or stop (+ disable) a sidecar's unit; enable first when enable.
struct Service {
  static constexpr const char* k_name = "service";
  std::string unit{};
  ServiceAction action = ServiceAction::start;
  bool enable = false;
};

// Cluster: create or correct the roles on the leader.
struct EnsureRoles {
  static constexpr const char* k_name = "ensure-roles";
  std::vector<std::string> roles{};
};

// Cluster: ALTER ROLE … PASSWORD of the roles of the kinds rotated, on the leader.
struct RotateSecrets {
  static constexpr const char* k_name = "rotate-secrets";
  std::set<SecretKind> kinds{};
  std::vector<std::string> roles{};
};

// The etcd pgconverge runs (EtcdCluster spec.hosts; etcd.cpp), before any cluster change. Each
// names its EtcdCluster (etcd); those using etcdctl reach it at client_url on their host.

// Host: data directory etcd:etcd 0700, then /etc/default/etcd (path) with content.
struct EtcdWriteConfig {
  static constexpr const char* k_name = "etcd-write-config";
  std::string etcd{};
  std::string path = "/etc/default/etcd";
  std::string content{};
  std::string data_dir{};
};

// Host: TLS files of an etcd (etcd_tls.hpp) — for a managed etcd, a new key and a certificate for common_name
// and the names issued by the etcd's CA in the state dir, and that CA, in files.dir (root:
// files.group, the key 0640). With wait_hosts (a running member renewed), then /health there
// through the new certificate: etcd reads its certificate files at each new connection.
struct EtcdWriteCertificate {
  static constexpr const char* k_name = "etcd-write-certificate";
  std::string etcd{};
  EtcdTlsFiles files{};
  std::string common_name{};
  std::vector<std::string> dns_names{};
  std::vector<std::string> ip_addresses{};
  std::vector<std::string> wait_hosts{};
  std::string client_url = "https://127.0.0.1:2379";
  ExternalEtcdTls given{};  // an external etcd's files (ca_file set): copied from the controller instead
};

// The hosts together: enable + (re)start etcd.service, then /health on wait_hosts.
struct EtcdStart {
  static constexpr const char* k_name = "etcd-start";
  std::string etcd{};
  std::vector<std::string> hosts{};
  bool restart = false;
  std::vector<std::string> wait_hosts{};
  std::string client_url = "http://127.0.0.1:2379";
};

// Host: restart etcd.service alone, then /health on wait_hosts.
struct EtcdRestart {
  static constexpr const char* k_name = "etcd-restart";
  std::string etcd{};
  std::vector<std::string> wait_hosts{};
  std::string client_url = "http://127.0.0.1:2379";
};

// Through host: `etcdctl member add member --peer-urls=peer_url`.
struct EtcdMemberAdd {
  static constexpr const char* k_name = "etcd-member-add";
  std::string etcd{};
  std::string member{};
  std::string peer_url{};
  std::string client_url = "http://127.0.0.1:2379";
};

// Through host: `etcdctl member remove` of member (by id when it has no name).
struct EtcdMemberRemove {
  static constexpr const char* k_name = "etcd-member-remove";
  std::string etcd{};
  std::string member{};
  std::string id{};
  std::string client_url = "http://127.0.0.1:2379";
};

// Host: stop + disable etcd.service (a removed member); the data directory is kept.
struct EtcdStop {
  static constexpr const char* k_name = "etcd-stop";
  std::string etcd{};
};

}  // namespace steps

// What the executor does for a change.
using Step = std::variant<steps::ConfigureRepository, steps::InstallPackages, steps::StopDebianCluster,
                          steps::WriteCertificate, steps::WriteConfig, steps::ReloadMember, steps::StartMember, steps::PatchDcs,
                          steps::RestartMember, steps::Switchover, steps::StopMember, steps::WriteFile,
                          steps::Service, steps::EnsureRoles, steps::RotateSecrets, steps::EtcdWriteConfig,
                          steps::EtcdStart, steps::EtcdRestart, steps::EtcdMemberAdd, steps::EtcdMemberRemove,
                          steps::EtcdStop, steps::EtcdWriteCertificate>;

// The step's name, as plan output prints it ("write-config").
std::string to_string(const Step& step);

// The EtcdCluster an etcd step belongs to; empty for every other step.
std::string etcd_name(const Step& step);

// True when the step is of kind S.
template <typename S>
bool is(const Step& step) {
  return std::holds_alternative<S>(step);
}

// Overloaded lambdas for std::visit.
template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace pgc::reconciler

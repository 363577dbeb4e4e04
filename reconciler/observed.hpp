#pragma once
// The observed state: what pgconverge saw on the hosts and members in this run. Plain data.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/etcd_state.hpp"

namespace pgc::reconciler {

// /etc/os-release of a host.
struct OsRelease {
  std::string id;          // "debian", "ubuntu", "rhel"… (empty: no /etc/os-release)
  std::string version_id;  // "12"
  std::string id_like;     // space-separated, e.g. "debian" on Ubuntu
  std::string pretty_name; // "Debian GNU/Linux 12 (bookworm)"
  std::string codename;    // VERSION_CODENAME: "bookworm"
};

// A cluster Debian's postgresql-common manages (/etc/postgresql/<version>/<name>), e.g. the
// 15/main the package creates on install.
struct DebianCluster {
  std::string version;
  std::string name;
  int port = 5432;
  bool online = false;       // its postmaster runs
  std::string start_conf;    // auto, manual, disabled
  std::string data_dir;
};

// A role as the host's local PostgreSQL reports it (read as postgres over the Unix socket).
struct ObservedRole {
  bool exists = false;
  bool superuser = false;
  std::vector<std::string> member_of;  // of the roles asked about (pg_monitor…)
  std::string password;                // pg_authid.rolpassword (a SCRAM verifier); never shown
  bool lookup = false;                 // may execute PgBouncer's lookup function (in postgres)
};

// What one SSH probe of a host found. A probe is one round trip per host.
struct ObservedHost {
  std::string name;
  bool reachable = false;
  std::string error;                                   // why not reachable (e.g. host key mismatch)
  std::string controller_address;                      // our address as the host sees it
  std::map<std::string, bool> packages;                // package → installed
  std::map<std::string, std::optional<std::string>> files;  // managed path → content (nullopt: absent)
  std::map<std::string, std::string> services;         // unit → ActiveState (active, inactive, failed…)
  std::map<std::string, std::string> service_enabled;  // unit → is-enabled answer
  std::map<std::string, bool> data_dirs;               // data_dir → holds a PGDATA (PG_VERSION)
  OsRelease os;
  bool has_apt = false;                                // apt-get and dpkg-query are there
  bool has_dnf = false;
  bool apt_lists = false;                              // apt has package lists (apt-get update ran)
  // Packages not installed → the version apt would install ("" when apt has none).
  std::map<std::string, std::string> candidates;
  std::vector<DebianCluster> debian_clusters;
  std::map<std::string, bool> repositories;            // package repository (pgdg) → configured
  int cpus = 0;                                        // online CPUs (nproc); 0: unknown
  long long memory_bytes = 0;                          // MemTotal; 0: unknown
  // data_dir → {available, total} bytes of the filesystem that holds it (or would: its nearest
  // existing parent).
  std::map<std::string, std::pair<long long, long long>> filesystems;
  // Roles asked about, when the host's PostgreSQL answered (absent: it did not, e.g. not running).
  std::map<std::string, ObservedRole> roles;
  std::optional<ObservedEtcd> etcd;                    // the managed etcd, on its member hosts
};

// One member as Patroni's GET /cluster reports it.
struct ObservedMember {
  std::string name;
  std::string host;        // address as Patroni reports it
  int port = 0;
  std::string role;        // leader, replica, sync_standby, standby_leader
  std::string state;       // running, streaming, stopped, starting…
  std::optional<long> timeline;
  std::optional<long long> lag_bytes;  // null for the leader or unknown
  nlohmann::json tags = nlohmann::json::object();
  bool pending_restart = false;
};

// A member's PostgreSQL as libpq sees it.
struct ObservedPostgres {
  bool reachable = false;
  std::string error;
  // Why waiting cannot fix error (a wrong password, no pg_hba.conf entry: util/expected.hpp);
  // empty: it may pass (not started yet, a refused connection, a timeout).
  std::string permanent;
  bool in_recovery = false;
  std::string server_version;
  std::string synchronous_standby_names;
  std::vector<std::pair<std::string, std::string>> sync_states;  // application_name → sync_state (streaming only)
  std::vector<std::string> pending_restart;
  std::string system_identifier;  // pg_control_system()
};

// One cluster as Patroni and PostgreSQL report it.
struct ObservedCluster {
  std::string name;
  bool api_reachable = false;   // at least one member's REST API answered GET /cluster
  std::string error;
  // Why waiting cannot fix error: set when every member asked refused it permanently (HTTP
  // 401/403: util/expected.hpp); empty: it may pass.
  std::string permanent;
  // Set when members answer GET /patroni but not GET /cluster: Patroni runs and cannot read its
  // DCS. Names the DCS and how long ago Patroni last reached it.
  std::string dcs_error;
  std::string system_identifier;  // the leader's PostgreSQL (observed with it), else empty
  bool paused = false;
  nlohmann::json dcs_config = nlohmann::json::object();  // GET /config
  std::vector<ObservedMember> members;                    // GET /cluster
  std::map<std::string, ObservedPostgres> postgres;       // member name → PostgreSQL
  std::map<std::string, nlohmann::json> member_tags;      // member name → GET /patroni tags

  // The leader member, if any.
  [[nodiscard]] const ObservedMember* leader() const;
  [[nodiscard]] const ObservedMember* member(const std::string& name) const;
  // Members Patroni reports as sync standbys.
  [[nodiscard]] std::vector<std::string> sync_standbys() const;
  // Patroni 3.0.2's stuck standby names (docs/replication-semantics.md §5.13): in non-strict sync mode the
  // leader's synchronous_standby_names names members none of which streams, while Patroni's /sync
  // key names nobody. Patroni compares the standbys it picks with /sync only, so it never clears
  // them, and commits wait until a named member returns. Those names; empty in any other state.
  [[nodiscard]] std::vector<std::string> stale_standby_names() const;
  // Replicas that stream (state running/streaming, not the leader).
  [[nodiscard]] std::vector<std::string> streaming_replicas() const;
};

// The member names of a synchronous_standby_names value: `a`, `"a-1"`, `2 (a,b)`,
// `FIRST 1 (a, "b")`, `ANY 1 (a)`; `*` stays `*`; none for an empty value.
[[nodiscard]] std::vector<std::string> standby_names(const std::string& value);

struct ObservedState {
  std::map<std::string, ObservedHost> hosts;        // by Host name
  std::map<std::string, ObservedCluster> clusters;  // by cluster name
};

}  // namespace pgc::reconciler

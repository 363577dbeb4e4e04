#pragma once
// The observed state: what pgconverge saw on the hosts and members in this run. Plain data.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/etcd_state.hpp"

namespace pgc::reconciler {

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
  bool in_recovery = false;
  std::string server_version;
  std::string synchronous_standby_names;
  std::vector<std::pair<std::string, std::string>> sync_states;  // application_name → sync_state (streaming only)
  std::vector<std::string> pending_restart;
};

// One cluster as Patroni and PostgreSQL report it.
struct ObservedCluster {
  std::string name;
  bool api_reachable = false;   // at least one member's REST API answered GET /cluster
  std::string error;
  // Set when members answer GET /patroni but not GET /cluster: Patroni runs and cannot read its
  // DCS. Names the DCS and how long ago Patroni last reached it.
  std::string dcs_error;
  std::string system_identifier;
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
  // Replicas that stream (state running/streaming, not the leader).
  [[nodiscard]] std::vector<std::string> streaming_replicas() const;
};

struct ObservedState {
  std::map<std::string, ObservedHost> hosts;        // by Host name
  std::map<std::string, ObservedCluster> clusters;  // by cluster name
};

}  // namespace pgc::reconciler

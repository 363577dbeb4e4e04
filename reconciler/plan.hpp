#pragma once
// The diff is data: a plan is a list of typed changes {subject, action, before, after, reason}
// that can be printed, serialised to JSON and executed, in order. The reason explains; it never
// decides what the executor does (the step and its parameters do).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "manifests/model.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/secrets.hpp"

namespace pgc::reconciler {

enum class Action { create, update, remove, restart };
std::string to_string(Action action);
// "+", "~", "-", "↻"
std::string action_symbol(Action action);

// What the executor does for a change.
enum class Step {
  configure_repository,  // host: add payload.repository (pgdg) to apt's sources, apt-get update
  install_packages,   // host: apt-get install payload.packages; apply first resolves every host's
                      // install with apt-get -s (after apt-get update if payload.update)
  stop_debian_cluster,  // host: stop Debian's cluster payload.version/payload.name, start.conf disabled
  write_config,       // member: write its patroni.yml (secrets resolved at execution)
  reload_member,      // member: systemctl reload (Patroni re-reads local config: tags…)
  start_member,       // member: enable + start its service, then wait per payload.wait
  patch_dcs,          // cluster: PATCH /config with payload.patch, then verify by observation
  restart_member,     // member: POST /restart (pending restart), one at a time
  switchover,         // cluster: from payload.leader to payload.candidate
  stop_member,        // member (scale down): stop + disable service, keep the data directory
  write_file,         // member: write payload.path, one of its managed files (sidecars.hpp)
  service,            // member: payload.action (start, restart, reload, enable, stop) of payload.unit
  ensure_roles,       // cluster: create or correct payload.roles on the leader
  rotate_secrets,     // cluster: ALTER ROLE … PASSWORD of payload.roles on the leader (payload.kinds rotated)
  // The etcd pgconverge runs (EtcdCluster spec.hosts; reconciler/etcd.hpp), before any cluster change:
  etcd_write_config,  // host: data directory etcd:etcd 0700, then /etc/default/etcd (payload.content)
  etcd_start,         // payload.hosts together: enable + (re)start etcd.service, then /health on payload.wait_hosts
  etcd_restart,       // host: restart etcd.service alone, then /health on payload.wait_hosts
  etcd_member_add,    // through host: `etcdctl member add payload.name --peer-urls=payload.peer_url`
  etcd_member_remove, // through host: `etcdctl member remove` of payload.name (id payload.id)
  etcd_stop,          // host: stop + disable etcd.service (a removed member), keep the data directory
};
std::string to_string(Step step);

// One changed field of a change, for display ("synchronous_node_count: 1 → 2").
struct FieldChange {
  std::string key;
  std::string before;  // "(unset)" when absent; secrets redacted
  std::string after;
};

struct Change {
  std::string subject;   // e.g. "member sync-cluster-1 (pg-2): /etc/patroni/15-sync-cluster.yml"
  Action action = Action::update;
  std::string before;    // display values, secrets redacted
  std::string after;
  std::string reason;
  Step step = Step::write_config;
  std::string cluster;   // empty for host-level changes
  std::string member;
  std::string host;
  nlohmann::json payload = nlohmann::json::object();
  std::vector<FieldChange> fields;  // per-field before/after, for display
};

// A change with its display fields and where it runs (cluster/member empty for host changes).
inline Change make_change(std::string subject, Action action, std::string before, std::string after, std::string reason,
                   Step step, std::string cluster, std::string member, std::string host) {
  Change c;
  c.subject = std::move(subject);
  c.action = action;
  c.before = std::move(before);
  c.after = std::move(after);
  c.reason = std::move(reason);
  c.step = step;
  c.cluster = std::move(cluster);
  c.member = std::move(member);
  c.host = std::move(host);
  return c;
}

// What a replication change means before it is applied.
struct Impact {
  std::string mode;                      // declared mode
  bool strict = false;
  int desired_sync = 0;                  // synchronous_node_count pgconverge asks for (0: async)
  int effective_sync_declared = 0;       // what Patroni will keep once every declared member streams
  int effective_sync_now = 0;            // what the live topology allows right now
  std::vector<std::string> streaming;    // replicas streaming now
  std::vector<std::string> leader_candidates;  // members that may become leader (nofailover false)
  std::vector<std::string> sync_candidates;    // in Patroni's preference order
  std::vector<std::string> statements;   // "strict-sync: writes block if pg-2 and pg-3 are both lost"
  std::vector<std::string> warnings;
};

struct ClusterPlan {
  std::string name;
  std::string namespace_;
  bool bootstrap = false;                // no member has data yet: a new cluster
  bool suspended = false;                // pgconverge.io/suspend: planned and shown, never applied
  std::vector<Change> changes;
  std::optional<Impact> impact;          // present when replication settings or members change
  std::vector<std::string> errors;       // things that stop part of the plan (unreachable host…)
  std::vector<std::string> warnings;     // shown, never stopping (a host with fewer CPUs than its profile…)
};

struct Plan {
  std::vector<Change> host_changes;      // packages etc., before any cluster change
  std::vector<ClusterPlan> clusters;
  std::vector<std::string> host_errors;  // hosts that could not be observed

  [[nodiscard]] bool has_changes() const;
  [[nodiscard]] bool has_errors() const;
  [[nodiscard]] std::size_t change_count() const;
};

// The Patroni DCS keys pgconverge owns for a cluster, with their desired values, flattened to
// JSON pointers ("/synchronous_mode", "/postgresql/parameters/max_connections").
std::map<std::string, nlohmann::json> owned_dcs_keys(const DesiredCluster& cluster);

// True when a and b are the same setting value (Patroni may store 10 as "10", on as true).
bool same_setting(const nlohmann::json& a, const nlohmann::json& b);

// The exact text of a member's patroni.yml with secrets resolved.
std::string config_text(const DesiredMember& member, const ClusterSecrets& secrets);

// The dotted key paths where two configs differ (values of secret paths are never shown).
std::vector<std::string> changed_keys(const nlohmann::json& before, const nlohmann::json& after);

// Impact analysis of the declared replication settings against the observed topology.
Impact analyse_impact(const DesiredCluster& desired, const ObservedCluster& observed);

struct PlanOptions {
  // --allow-write-outage: plan restarts and stops even when they leave a cluster without a
  // writable primary or, in strict mode, without a sync standby for as long as they take.
  // Without it those changes are held back, each with an error saying why.
  bool allow_write_outage = false;
};

// The flag that overrides the write-availability checks, as the messages name it.
inline constexpr const char* k_allow_write_outage_flag = "--allow-write-outage";

// Compares desired and observed state and orders the changes safely (see ARCHITECTURE.md):
// packages → configs (tags first) → reloads → starts (bootstrap: first member, then the rest)
// → DCS patch → pending restarts → scale down.
Plan diff(const manifests::ManifestSet& manifests, const DesiredState& desired, const ObservedState& observed,
          const std::map<std::string, ClusterSecrets>& secrets, const PlanOptions& options = {});

}  // namespace pgc::reconciler

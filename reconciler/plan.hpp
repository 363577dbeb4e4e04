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
#include "reconciler/steps.hpp"

namespace pgc::reconciler {

enum class Action { create, update, remove, restart };
std::string to_string(Action action);
// "+", "~", "-", "↻"
std::string action_symbol(Action action);

// One changed field of a change, for display ("synchronous_node_count: 1 → 2").
struct FieldChange {
  std::string key;
  std::string before;  // "(unset)" when absent; secrets redacted
  std::string after;
};

// Built with designated initializers (Change{.subject = …, .step = steps::X{…}, .cluster = …}):
// where it runs is named, so no two strings can swap places unseen. Every member has a default
// initializer, so that g++ -Wmissing-field-initializers accepts the ones left out.
struct Change {
  std::string subject{};  // e.g. "member sync-cluster-1 (pg-2): /etc/patroni/15-sync-cluster.yml"
  Action action = Action::update;
  std::string before{};   // display values, secrets redacted
  std::string after{};
  std::string reason{};
  Step step = steps::WriteConfig{};  // what the executor does, with its data (steps.hpp)
  std::string cluster{};  // empty for host-level changes
  std::string member{};
  std::string host{};     // empty for a change that spans hosts (an etcd start)
  std::vector<FieldChange> fields{};  // per-field before/after, for display
};

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

// The JSON pointers of the leaves where two configs differ (a leaf absent on one side included).
std::vector<std::string> changed_pointers(const nlohmann::json& before, const nlohmann::json& after);

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

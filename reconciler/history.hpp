#pragma once
// What each run leaves behind: a record of the revision it applied, how long it took, what it
// changed and, per cluster, conditions in the spirit of Flux/kstatus (Ready, Reconciling,
// Stalled, PendingRestart, Degraded) with the last revision the cluster was Ready at.
// Kept in <state dir>/history.json (newest last, bounded), written atomically.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/apply.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/revision.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

struct Condition {
  std::string type;    // Ready, Reconciling, Stalled, PendingRestart, Degraded, Suspended
  std::string status;  // True, False, Unknown
  std::string reason;  // CamelCase, e.g. Converged, StepFailed
  std::string message;
};

struct ClusterRecord {
  std::string namespace_;
  std::string name;
  std::vector<Condition> conditions;
  std::string last_applied_revision;  // sha (or "") of the last run that left it Ready
  int sync_desired = 0;
  int sync_observed = 0;
  bool suspended = false;

  [[nodiscard]] const Condition* condition(const std::string& type) const;
};

struct RunRecord {
  std::string command;       // apply, serve, hook…
  std::string trigger;       // manual, poll, webhook:<receiver>, resync, post-receive
  Revision revision;
  std::string started_at;    // RFC 3339, UTC
  double duration_s = 0;
  double waited_s = 0;       // of duration_s: waiting for Patroni to act (the longest cluster's wait)
  std::size_t changes_planned = 0;
  std::size_t changes_applied = 0;
  std::string result;        // success, no-change, failure
  std::vector<std::string> errors;
  std::vector<ClusterRecord> clusters;

  [[nodiscard]] const ClusterRecord* cluster(const std::string& namespace_, const std::string& name) const;
};

nlohmann::json to_json(const Revision& revision);
nlohmann::json to_json(const RunRecord& record);
// One record; an error naming the field when a field has the wrong type (absent fields keep
// their defaults). URL credentials in records of earlier versions are redacted.
Result<RunRecord> run_record_from_json(const nlohmann::json& j);

// The conditions of one cluster after a run. outcome is null for plan/status (nothing applied).
std::vector<Condition> cluster_conditions(const DesiredCluster& desired, const ObservedCluster& observed,
                                          const ClusterPlan* plan, const ClusterOutcome* outcome);

// The record of one cluster: conditions plus lastAppliedRevision carried over from `previous`
// when the cluster is not Ready now.
ClusterRecord cluster_record(const DesiredCluster& desired, const ObservedCluster& observed, const ClusterPlan* plan,
                             const ClusterOutcome* outcome, const Revision& revision,
                             const RunRecord* previous);

// The run history in a state dir. Not thread-safe; callers hold the RunLock.
class History {
 public:
  explicit History(std::filesystem::path state_dir, std::size_t keep = 100);
  // Every record, oldest first; empty when there is no history yet. A damaged file (not JSON,
  // not a history, a field of the wrong type) is moved aside to history.json.damaged-<time> and
  // the error says so (the next load finds no history); it is never half-read.
  [[nodiscard]] Result<std::vector<RunRecord>> load() const;
  [[nodiscard]] Result<std::optional<RunRecord>> last() const;
  // Appends record, dropping the oldest beyond `keep`; written atomically (0600). A damaged
  // history is moved aside first (see load) and a new one started.
  Result<void> append(const RunRecord& record) const;
  [[nodiscard]] std::filesystem::path path() const { return path_; }

 private:
  static std::string parse(const std::string& text, std::vector<RunRecord>& out);
  std::filesystem::path path_;
  std::size_t keep_;
};

// The current time as RFC 3339 UTC with milliseconds ("2026-12-01T19:28:34.125Z").
std::string now_rfc3339();

// `pgconverge history`: one line per run, newest first.
void print_history(const std::vector<RunRecord>& records, std::ostream& out);

}  // namespace pgc::reconciler

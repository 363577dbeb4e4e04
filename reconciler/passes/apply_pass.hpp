#pragma once
// The apply pass of an apply run (apply_run.hpp), once per pass of observation: the clusters
// this run may act on (ownership), their new secrets saved, then their changes applied and
// verified by observation (apply.hpp); and whether a fresh observe → plan → apply should follow.

#include <map>
#include <optional>
#include <set>
#include <string>

#include "reconciler/apply.hpp"
#include "reconciler/apply_run.hpp"
#include "reconciler/passes/run_state.hpp"

namespace pgc::reconciler {

// What the passes of one apply run share.
struct ApplyPasses {
  Prepared current;  // the latest pass's observation and plan
  Plan to_apply;     // of its plan, what this run applies (unsuspended, owned)
  ApplyReport report;
  std::set<std::string> changed;  // clusters that had changes in some pass ("" for host changes)
  std::optional<std::set<std::string>> owned;  // ownership: the clusters of this instance
  std::map<std::string, WaitTally> waits;      // per cluster, over all passes
};

// Ownership (options.owned) asked for the clusters of this pass, then the secrets generated or
// recovered for them saved. An error applies nothing.
Result<void> claim_clusters(const ApplyRunOptions& options, ApplyPasses& passes);

// Applies the plan's changes of the unsuspended, owned clusters (and the host changes they
// need), then verifies them by observation; passes.report holds the outcome.
void apply_changes(const ApplyRunOptions& options, ApplyPasses& passes, World& world, Sessions& sessions,
                   Progress& progress);

// Why this pass should be followed by another (observe → plan → apply): it acted, did not
// converge, and the plan did not explain why (an unreachable host, a held-back restart). Empty:
// no further pass (converged, the last pass, stopped, nothing applied, or explained).
std::string another_pass_because(const ApplyRunOptions& options, const ApplyPasses& passes, int pass);

// Why a pass that failed is not followed by another although it could have been: an error of it
// that waiting cannot fix ("cluster c: verify: …: not retried: a wrong password does not fix
// itself"), or the apply's --wait-timeout bound was reached. Empty: neither.
std::string no_further_pass_because(const ApplyRunOptions& options, const ApplyPasses& passes);

// Whether the run was asked to stop (SIGTERM, ownership fenced).
bool stop_requested(const ApplyRunOptions& options);

}  // namespace pgc::reconciler

#pragma once
// One whole apply run, as `apply`, `serve` and the git hook run it:
//   fetch the source (the caller reports the revision and may decline the run) → lock the state
//   dir → load → compile → observe → plan (prepare, reconcile.hpp) → save secrets → apply every
//   cluster that is not suspended → verify → (observe → plan → apply again while a pass acted
//   but did not converge) → record the run in the history.
// apply_run() lists these passes; each is implemented in reconciler/passes/. The lock makes
// concurrent runs wait (bounded) instead of interleaving.

#include <chrono>
#include <functional>
#include <optional>
#include <ostream>
#include <set>
#include <string>

#include "reconciler/apply.hpp"
#include "reconciler/history.hpp"
#include "reconciler/passes/fetch_pass.hpp"
#include "reconciler/progress.hpp"
#include "reconciler/reconcile.hpp"
#include "reconciler/world.hpp"

namespace pgc::reconciler {

struct ApplyRunOptions {
  SourceOptions source;  // where the manifests come from: the fetch pass points run.sources there
  FetchHooks fetch;      // what the caller does around the fetch (report, decline, record a failure)
  RunOptions run;
  ApplyOptions apply;
  Revision revision;     // where the manifests came from: set by the fetch pass
  std::string command = "apply";
  std::string trigger = "manual";
  std::chrono::milliseconds lock_wait{60000};
  // A pass that acted but did not converge (a leader lost mid-apply, a member stopped behind
  // pgconverge's back) is followed by a fresh observe → plan → apply, up to this many in all.
  // Not when the plan itself explained the failure (an unreachable host, a held-back restart).
  int max_passes = 3;
  // Ownership (serve with `ownership:`): called after each prepare with the desired clusters;
  // returns the names of the clusters this run may apply, with "" standing for the changes no
  // single cluster owns (hosts of no owned cluster, the managed etcd). The others are neither
  // applied nor recorded. An error applies nothing in that pass. Unset: every cluster.
  std::function<Result<std::set<std::string>>(const DesiredState& desired)> owned;
  // Called with the clusters about to be applied (started) and again once apply returned.
  std::function<void(const std::set<std::string>& clusters, bool started)> acting;
};

struct ApplyRunResult {
  RunRecord record{};
  int exit_code = 0;  // 0 converged or nothing to do, 1 error or not converged
  bool ran = true;    // false: no run — the fetch failed (exit code 1) or the caller declined it
};

// Runs it. The plan and the outcome go to out, diagnostics and progress to err (via progress).
// Every run that got the lock is recorded, failures included (invalid manifests, unreachable
// hosts); a run that could not take the lock is not.
ApplyRunResult apply_run(ApplyRunOptions options, World& world, Progress& progress, std::ostream& out,
                         std::ostream& err);

// A run that failed before it could observe anything (e.g. the source could not be fetched),
// recorded under the lock so that history and status show it.
RunRecord record_failure(const ApplyRunOptions& options, const std::string& error);

}  // namespace pgc::reconciler

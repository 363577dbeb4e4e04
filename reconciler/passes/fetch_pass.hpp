#pragma once
// The fetch pass, a run's first: its source resolved — a git URL fetched (in a child process with
// a hard deadline) and one commit checked out, local directories taken as they are — and the
// run's options pointed at what to load. What a caller does around it (report the revision on
// stderr or as events, decline a run that has nothing new to do) it says through FetchHooks.

#include <functional>
#include <string>

#include "reconciler/passes/run_state.hpp"
#include "reconciler/source.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

struct FetchHooks {
  // Each warning of the fetch (e.g. a damaged cache moved aside), failures included. Unset: dropped.
  std::function<void(const std::string& warning)> warn;
  // The source resolved: the caller reports the revision and says whether to run, and why (it may
  // rename the trigger: serve runs an unchanged revision as "resync" or "ownership"). False
  // declines the run (serve: a poll that found nothing new), which then records nothing. Unset:
  // the run goes on.
  std::function<bool(const ResolvedSource& source, std::string& trigger)> fetched;
  // The fetch failed: the caller reports it; false keeps it out of the history (serve: an error
  // that repeats, or a fetch killed by SIGTERM). Unset: recorded.
  std::function<bool(const Error& error)> failed;
};

// What the fetch pass decided.
struct Fetched {
  bool run = true;       // false: the caller declined (FetchHooks::fetched)
  Revision revision;     // where the manifests came from
  std::string trigger;   // why the run runs, as FetchHooks::fetched left it
};

// Resolves source (its cancel flag, e.g. SIGTERM, kills the fetch at once), points run at what it
// resolved to (run.sources, run.path_aliases) and asks hooks.fetched whether to go on, and why
// (trigger). An error: nothing to load (hooks.failed has not been called; the caller decides).
Result<Fetched> fetch_pass(const SourceOptions& source, const FetchHooks& hooks, RunOptions& run,
                           std::string trigger = "");

}  // namespace pgc::reconciler

#pragma once
// The fetch pass: a run's source resolved — a git URL fetched (in a child process with a hard
// deadline) and one commit checked out, local directories taken as they are — and the run's
// options pointed at what to load. The CLI and serve each report the revision in their own way.

#include <atomic>
#include <functional>
#include <string>

#include "reconciler/passes/run_state.hpp"
#include "reconciler/source.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

// Resolves options' locations; cancel (e.g. SIGTERM) kills the fetch at once. Each warning (e.g.
// a damaged cache moved aside) goes to warn, failures included.
Result<ResolvedSource> fetch_source(SourceOptions options, const std::atomic<bool>* cancel,
                                    const std::function<void(const std::string& warning)>& warn);

// The run loads what the source resolved to, and names a checkout's files by their aliases.
void load_from(const ResolvedSource& source, RunOptions& run);

}  // namespace pgc::reconciler

#pragma once
// The git sync in a child process with a hard deadline. libgit2 1.5 has no socket timeouts and
// cannot be interrupted, and fork() of a multi-threaded daemon is not safe, so pgconverge
// re-executes itself ("pgconverge __git-sync", hidden) with the request on the child's stdin
// (never argv: the URL may carry a password) and reads the answer, as JSON, on its stdout. The
// child is killed (its whole process group) at the deadline or when cancel becomes true, and dies
// with its parent (PR_SET_PDEATHSIG). A fetch killed at its deadline falls back, like any failed
// fetch, to the last good revision (a second, offline child reads it from the cache).

#include <atomic>
#include <chrono>
#include <iosfwd>
#include <string>

#include "providers/git/git_source.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

// The hidden subcommand the child runs.
inline constexpr const char* k_git_sync_command = "__git-sync";

// The program to re-execute: this very binary, as the kernel knows it (works after an upgrade
// replaced the file on disk).
inline constexpr const char* k_self_executable = "/proc/self/exe";

// sync_git_source(options) in a child `executable __git-sync`, killed after options.timeout
// (+ 250 ms for the child's own start and exit) or when cancel becomes true; after a kill at the
// deadline, when the cache has a last good revision, an offline child (at most 10 s) returns it. Host keys the
// child recorded are reported to options.on_host_key_recorded here. Errors name the URL without
// its credentials.
Result<providers::GitSync> sync_in_child(const providers::GitSourceOptions& options, const std::string& executable,
                                         const std::atomic<bool>* cancel);

// The child's side (`__git-sync --parent PID`): dies with PID (exits at once when PID is no longer
// its parent), reads one request from in, syncs, writes one answer to out; returns the exit code
// (0 when an answer was written, the sync's own failure included).
int run_git_sync_child(std::istream& in, std::ostream& out, long parent_pid);

}  // namespace pgc::reconciler

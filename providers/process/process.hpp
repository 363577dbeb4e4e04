#pragma once
// Runs a local program and collects its output (Boost.Process; no Boost header here).

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "util/expected.hpp"

namespace pgc::providers {

struct ProcessResult {
  int exit_code = -1;  // the program's exit status, or 128 + the signal number that killed it
  std::string out;
  std::string err;
};

// Runs argv directly (no shell: argv[0] is a path or a name looked up in PATH), feeds stdin_data
// on its standard input and collects stdout and stderr. A non-zero exit code is a result; it
// fails only when the program cannot be started or does not finish within timeout, in which
// case it and every process it started in its process group are killed (SIGKILL) and reaped
// before returning. When cancel is given and becomes true, the same happens within about 50 ms
// (error "interrupted"). Thread-safe; SIGPIPE from a child that does not read its input is absorbed.
Result<ProcessResult> run_process(const std::vector<std::string>& argv, const std::string& stdin_data,
                                  std::chrono::milliseconds timeout, const std::atomic<bool>* cancel = nullptr);

// For a child this process is about to become: killed (SIGKILL) when its parent dies, so that a
// child started by a process that was killed cannot outlive it. Exits at once (code 1) when the
// parent is already gone (parent_pid is not our parent any more). Linux only.
void die_with_parent(long parent_pid);

// This process's pid and, for die_with_parent in a child it starts, the same.
long current_pid();

}  // namespace pgc::providers

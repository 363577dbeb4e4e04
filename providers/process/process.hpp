#pragma once
// Runs a local program and collects its output (Boost.Process; no Boost header here).

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
// before returning. Thread-safe; SIGPIPE from a child that does not read its input is absorbed.
Result<ProcessResult> run_process(const std::vector<std::string>& argv, const std::string& stdin_data,
                                  std::chrono::milliseconds timeout);

}  // namespace pgc::providers

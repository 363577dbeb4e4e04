#pragma once
// The pgconverge command line: one CLI11 app, one file per command (see command.hpp).

#include <ostream>
#include <string>
#include <vector>

namespace pgc::cli {

// The version `pgconverge --version` prints (keep in step with project() in CMakeLists.txt).
inline constexpr const char* k_version = "0.1.0";

// Exit codes, as documented in every --help.
enum ExitCode : int {
  exit_ok = 0,               // success, nothing to do
  exit_error = 1,            // invalid manifests, operational error, not converged
  exit_changes_pending = 2,  // plan: there are changes to apply
  exit_usage = 64,           // bad command line (sysexits EX_USAGE)
};

// The exit-code table printed at the end of every --help.
inline constexpr const char* k_exit_codes =
    "Exit codes:\n"
    "  0   success (nothing to do)\n"
    "  1   error: invalid manifests, or an operational error\n"
    "  2   changes pending (plan)\n"
    "  64  usage error";

// Runs pgconverge with args (without the program name), writing results to out and diagnostics,
// errors and progress to err. Returns the exit code; never throws. Keeps no global state, so
// tests may call it repeatedly.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// main(): run() with the process arguments, std::cout and std::cerr.
int run(int argc, char** argv);

}  // namespace pgc::cli

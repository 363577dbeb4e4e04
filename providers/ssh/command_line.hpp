#pragma once
// The remote command lines pgconverge sends over SSH, built as pure functions so the quoting
// can be tested without a server. No libssh here.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.hpp"

namespace pgc::providers {

// The exec string for argv: every word shell-quoted, joined by spaces, prefixed with
// `sudo -n --` when user is not root. Fails on an empty argv or a word containing a NUL byte
// (a C string cannot carry it: the shell would see a truncated, differently quoted line).
Result<std::string> build_command_line(const std::vector<std::string>& argv, std::string_view user);

// argv run under coreutils timeout(1) on the host: SIGTERM to the command's whole process group
// once `after` has passed, SIGKILL 5 s later. sshd does not deliver a client's signal request
// to a root session, so this is what stops a command pgconverge has given up waiting for.
// argv[0] must be a program (not a shell builtin), as it must be under sudo anyway.
std::vector<std::string> with_remote_timeout(const std::vector<std::string>& argv,
                                             std::chrono::milliseconds after);

// What run_script writes to `sh -s`'s stdin: the script inside `{ … } </dev/null`, so the shell
// has parsed all of it before running any of it and no command in it can swallow the rest of
// the script (or wait on our stdin) by reading stdin. Fails on a NUL byte.
Result<std::string> script_stdin(std::string_view script);

}  // namespace pgc::providers

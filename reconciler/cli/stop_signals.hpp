#pragma once
// SIGTERM and SIGINT for the commands that act (apply, serve): the first sets a flag that the run
// checks between steps (and that kills a fetch in progress); a second one aborts at once (the
// default action, re-raised). SIGPIPE is ignored: a closed pipe is a write error, not a death.

#include <atomic>

namespace pgc::cli {

// Installs the handlers (idempotent) and returns the flag they set.
const std::atomic<bool>& stop_on_signals();

// The signal that set the flag (0 when none).
int stop_signal();

}  // namespace pgc::cli

#pragma once
// Terminal facts for progress output.

namespace pgc {

// True when standard error is a terminal (live progress lines), false for logs and pipes.
bool stderr_is_terminal();

}  // namespace pgc

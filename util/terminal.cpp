#include "util/terminal.hpp"

#include <unistd.h>

namespace pgc {

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

}  // namespace pgc

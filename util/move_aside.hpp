#pragma once
// A damaged state file (or directory) is never trusted and never silently reset: it is renamed to
// "<name>.damaged-<UTC time>" next to itself, where an operator can look at it, and the caller
// warns with the new name.

#include <filesystem>

#include "util/expected.hpp"

namespace pgc {

// Renames path to "<path>.damaged-YYYYMMDDTHHMMSSZ" (with "-2", "-3"… when that exists already)
// and returns the new path; an error (with the path) when it cannot be renamed.
Result<std::filesystem::path> move_aside(const std::filesystem::path& path);

}  // namespace pgc

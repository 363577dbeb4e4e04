#pragma once
// Whether a local file's permission bits let every user read it: the check a secret read from
// its own file must pass (std::filesystem, so no system header here or in the .cpp).

#include <string>

#include "util/expected.hpp"

namespace pgc {

// True when path (its target, if it is a symbolic link, as stat(2) sees it) is readable by
// others (mode bit 0004); an error naming the path when its status cannot be read (missing,
// or a directory on the way not searchable).
Result<bool> readable_by_everyone(const std::string& path);

}  // namespace pgc

#pragma once
// Local files written so that a crash never leaves a half-written file behind.

#include <filesystem>
#include <string>

#include "util/expected.hpp"

namespace pgc {

// Writes content to path: temp file in the same directory, fsync, chmod(mode), rename over path,
// fsync the directory. Creates missing parent directories with mode 0700.
Result<void> write_file_atomically(const std::filesystem::path& path, const std::string& content,
                                   std::filesystem::perms mode);

// Reads a whole file; an error when it cannot be read, nullopt-like empty Result when absent is
// signalled by the error message "not found".
Result<std::string> read_whole_file(const std::filesystem::path& path);

}  // namespace pgc

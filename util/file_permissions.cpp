#include "util/file_permissions.hpp"

#include <filesystem>
#include <system_error>

namespace pgc {

Result<bool> readable_by_everyone(const std::string& path) {
  // status() follows links and fails exactly where stat(2) does, which the callers relied on.
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec) return fail(path + ": " + ec.message());
  return (status.permissions() & std::filesystem::perms::others_read) != std::filesystem::perms::none;
}

}  // namespace pgc

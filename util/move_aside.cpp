#include "util/move_aside.hpp"

#include <ctime>
#include <system_error>

namespace pgc {

Result<std::filesystem::path> move_aside(const std::filesystem::path& path) {
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", std::gmtime(&now));
  const std::string base = path.string() + ".damaged-" + stamp;
  std::error_code ec;
  for (int n = 1; n <= 100; ++n) {
    std::filesystem::path target = n == 1 ? base : base + "-" + std::to_string(n);
    if (std::filesystem::exists(std::filesystem::symlink_status(target, ec))) continue;
    std::filesystem::rename(path, target, ec);
    if (ec) return fail("moving " + path.string() + " aside to " + target.string() + ": " + ec.message());
    return target;
  }
  return fail("moving " + path.string() + " aside: 100 damaged copies exist already; remove some");
}

}  // namespace pgc

#include "util/atomic_file.hpp"
#include "util/strings.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace pgc {
namespace {

Result<void> fsync_path(const std::filesystem::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return fail("open " + path.string() + ": " + errno_text());
  int rc = ::fsync(fd);
  std::string err = rc == 0 ? std::string() : errno_text();
  ::close(fd);
  if (rc != 0) return fail("fsync " + path.string() + ": " + err);
  return {};
}

}  // namespace

Result<void> write_file_atomically(const std::filesystem::path& path, const std::string& content,
                                   std::filesystem::perms mode) {
  std::error_code ec;
  auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  if (!std::filesystem::exists(dir)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return fail("create " + dir.string() + ": " + ec.message());
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  }
  std::random_device rd;
  auto tmp = dir / ("." + path.filename().string() + ".tmp." + std::to_string(rd()));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  static_cast<mode_t>(mode));
  if (fd < 0) return fail("create " + tmp.string() + ": " + errno_text());
  std::size_t written = 0;
  while (written < content.size()) {
    auto n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string err = errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      return fail("write " + tmp.string() + ": " + err);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0 || ::fsync(fd) != 0) {
    std::string err = errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    return fail("fsync " + tmp.string() + ": " + err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = errno_text();
    ::unlink(tmp.c_str());
    return fail("rename " + tmp.string() + " to " + path.string() + ": " + err);
  }
  return fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

Result<std::string> read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path)) return fail("not found");
    return fail("cannot read " + path.string());
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace pgc

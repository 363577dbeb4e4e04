#include "util/known_hosts.hpp"
#include "util/strings.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>

namespace pgc {
namespace {

namespace fs = std::filesystem;

// A file descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int descriptor) : fd(descriptor) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Result<void> write_all(int fd, const std::string& content) {
  std::size_t written = 0;
  while (written < content.size()) {
    auto n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno_text());
    written += static_cast<std::size_t>(n);
  }
  return {};
}

// The file's content, or nullopt when it does not exist; its status in st.
Result<std::optional<std::string>> read_existing(const fs::path& file, struct stat& st) {
  Fd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0 && errno == ENOENT) return std::optional<std::string>();
  if (in.fd < 0 || ::fstat(in.fd, &st) != 0) return fail("cannot read " + file.string() + ": " + errno_text());
  if (!S_ISREG(st.st_mode)) return fail(file.string() + " is not a regular file");
  std::string content;
  char buffer[8192];
  while (true) {
    auto n = ::read(in.fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot read " + file.string() + ": " + errno_text());
    if (n == 0) break;
    content.append(buffer, static_cast<std::size_t>(n));
  }
  return std::optional<std::string>(std::move(content));
}

// The file to replace: a symlink's target, so that the link itself stays.
Result<fs::path> resolve_target(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(file, ec))) return file;
  auto target = fs::canonical(file, ec);
  if (ec) return fail(file.string() + " is a symlink to nothing that can be written (" + ec.message() + ")");
  return target;
}

}  // namespace

std::string describe(const RecordedHostKey& key) {
  return key.who + ": ssh: recorded the new host key " + key.type + " " + key.fingerprint + " for " + key.name +
         " in " + key.file + " (accept-new)";
}

Result<bool> append_known_hosts_entry(const fs::path& file, const std::string& entry,
                                      const StillUnknown& still_unknown) {
  auto resolved = resolve_target(file);
  PGC_TRY(resolved);
  const fs::path target = *resolved;
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return fail("cannot create the directory " + dir.string() + ": " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  Fd lock(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (lock.fd < 0) return fail("cannot open the directory " + dir.string() + ": " + errno_text());
  int locked = 0;
  while ((locked = ::flock(lock.fd, LOCK_EX)) != 0 && errno == EINTR) {
  }
  if (locked != 0) return fail("cannot lock the directory " + dir.string() + ": " + errno_text());

  struct stat st {};
  auto current = read_existing(target, st);
  PGC_TRY(current);
  if (*current && ::access(target.c_str(), W_OK) != 0)
    return fail(target.string() + " is not writable: " + errno_text());
  auto wanted = still_unknown(current->value_or(""));
  PGC_TRY(wanted);
  if (!*wanted) return false;

  std::string content = current->value_or("");
  if (!content.empty() && content.back() != '\n') content += '\n';
  content += entry;
  if (content.back() != '\n') content += '\n';

  std::string tmp = (dir / ("." + target.filename().string() + ".pgc-tmp.XXXXXX")).string();
  Fd out(::mkstemp(tmp.data()));
  if (out.fd < 0) return fail("cannot create a temp file in " + dir.string() + ": " + errno_text());
  auto give_up = [&](const std::string& what) {
    std::string why = what + ": " + errno_text();
    ::unlink(tmp.c_str());
    return fail(why);
  };
  if (auto written = write_all(out.fd, content); !written) {
    ::unlink(tmp.c_str());
    return fail("writing " + tmp + ": " + written.error().message);
  }
  const mode_t mode = *current ? (st.st_mode & 07777) : 0644;
  if (::fchmod(out.fd, mode) != 0) return give_up("chmod " + tmp);
  struct stat made {};
  if (::fstat(out.fd, &made) != 0) return give_up("stat " + tmp);
  if (*current && (made.st_uid != st.st_uid || made.st_gid != st.st_gid) && ::fchown(out.fd, st.st_uid, st.st_gid) != 0)
    return give_up("keeping the owner of " + target.string());
  if (::fsync(out.fd) != 0) return give_up("fsync " + tmp);
  if (::rename(tmp.c_str(), target.c_str()) != 0) return give_up("rename " + tmp + " to " + target.string());
  if (::fsync(lock.fd) != 0) return fail("fsync " + dir.string() + ": " + errno_text());
  return true;
}

}  // namespace pgc

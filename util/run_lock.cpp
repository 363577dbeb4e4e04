#include "util/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>

namespace pgc {
namespace {

std::string holder_of(int fd) {
  char buf[512];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "another pgconverge run";
  std::string text(buf, static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text.empty() ? "another pgconverge run" : text;
}

}  // namespace

Result<RunLock> RunLock::acquire(const std::filesystem::path& state_dir, const std::string& what,
                                 std::chrono::milliseconds wait) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return fail("lock: create " + state_dir.string() + ": " + ec.message());
  auto path = state_dir / "lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail("lock: open " + path.string() + ": " + std::strerror(errno));
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      std::string err = std::strerror(errno);
      ::close(fd);
      return fail("lock: " + path.string() + ": " + err);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string holder = holder_of(fd);
      ::close(fd);
      return fail("another run holds " + path.string() + " (" + holder + "); waited " +
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(wait).count()) +
                  "s — try again later or raise --lock-timeout");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Who holds it, for the next waiter's message. Best effort: the lock is what matters.
  std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string text = "pid " + std::to_string(::getpid()) + ", " + what + ", since " + when + "\n";
  if (::ftruncate(fd, 0) == 0) {
    [[maybe_unused]] auto n = ::pwrite(fd, text.data(), text.size(), 0);
  }
  return RunLock(fd, path);
}

RunLock::RunLock(RunLock&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)) { other.fd_ = -1; }

RunLock& RunLock::operator=(RunLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

}  // namespace pgc

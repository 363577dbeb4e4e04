#pragma once
// One reconcile at a time per state dir: an exclusive flock(2) on <state dir>/lock, held for the
// whole run and released by the kernel if the process dies (no stale lock after SIGKILL).

#include <chrono>
#include <filesystem>
#include <string>

#include "util/expected.hpp"

namespace pgc {

class RunLock {
 public:
  // Takes the lock, waiting up to `wait` (0: try once). On timeout the error names the holder
  // (pid, command and start time it wrote into the file). `what` is recorded for the next waiter.
  // Not thread-safe; one RunLock per run.
  static Result<RunLock> acquire(const std::filesystem::path& state_dir, const std::string& what,
                                 std::chrono::milliseconds wait);

  RunLock(RunLock&& other) noexcept;
  RunLock& operator=(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  ~RunLock();

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  RunLock(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::filesystem::path path_;
};

}  // namespace pgc

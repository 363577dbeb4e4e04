#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>

#include "tests/support/temp_dir.hpp"
#include "util/run_lock.hpp"

using pgc::RunLock;
using pgc::test::TempDir;
using namespace std::chrono_literals;

TEST_CASE("run lock: a second holder waits, then fails naming the first (pid, what, since)") {
  TempDir dir;
  auto first = RunLock::acquire(dir.path(), "apply (manual)", 0ms);
  REQUIRE(first);
  // flock is per open file description: a second acquire in this process contends like another run.
  auto started = std::chrono::steady_clock::now();
  auto second = RunLock::acquire(dir.path(), "serve (poll)", 300ms);
  auto waited = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(second);
  CHECK(waited >= 300ms);
  const auto& message = second.error().message;
  CHECK(message.find("another run holds " + (dir.path() / "lock").string()) == 0);
  CHECK(message.find("pid " + std::to_string(::getpid()) + ", apply (manual), since 20") != std::string::npos);
  CHECK(message.find("raise --lock-timeout") != std::string::npos);
}

TEST_CASE("run lock: released when the holder goes away, so a waiter gets it") {
  TempDir dir;
  std::optional<RunLock> first(*RunLock::acquire(dir.path(), "apply", 0ms));
  std::thread release([&] {
    std::this_thread::sleep_for(200ms);
    first.reset();
  });
  auto second = RunLock::acquire(dir.path(), "apply", 5s);
  release.join();
  CHECK(second);
}

TEST_CASE("run lock: a holder killed with SIGKILL leaves no stale lock") {
  TempDir dir;
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    auto held = RunLock::acquire(dir.path(), "child", 0ms);
    char c = held ? 'y' : 'n';
    [[maybe_unused]] auto n = ::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  CHECK_FALSE(RunLock::acquire(dir.path(), "parent", 0ms));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  CHECK(RunLock::acquire(dir.path(), "parent", 0ms));
  ::close(ready[0]);
  ::close(ready[1]);
}

// run_process with real programs: output, exit codes, stdin, a missing program, the timeout.

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "providers/process/process.hpp"
#include "tests/integration/git/test_support.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pgc::providers::run_process;
using pgc::test::process_gone;
using Clock = std::chrono::steady_clock;

TEST_CASE("process: run_process keeps stdout and stderr apart and returns the exit code", "[process]") {
  auto r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"}, "", 5s);
  REQUIRE(r);
  CHECK(r->exit_code == 3);
  CHECK(r->out == "out\n");
  CHECK(r->err == "err\n");

  // argv words are literal: no shell sees them.
  auto literal = run_process({"/bin/echo", "$(id)", "a b", "'"}, "", 5s);
  REQUIRE(literal);
  CHECK(literal->exit_code == 0);
  CHECK(literal->out == "$(id) a b '\n");

  auto killed = run_process({"sh", "-c", "kill -TERM $$"}, "", 5s);
  REQUIRE(killed);
  CHECK(killed->exit_code == 128 + 15);
}

TEST_CASE("process: stdin is fed to the program, even when it does not read it", "[process]") {
  auto cat = run_process({"cat"}, "line 1\nline 2\n", 5s);
  REQUIRE(cat);
  CHECK(cat->out == "line 1\nline 2\n");

  auto empty = run_process({"cat"}, "", 5s);
  REQUIRE(empty);
  CHECK(empty->out.empty());

  // More than a pipe holds, to a program that exits at once: EPIPE, not SIGPIPE for us.
  auto ignored = run_process({"true"}, std::string(4 << 20, 'x'), 5s);
  REQUIRE(ignored);
  CHECK(ignored->exit_code == 0);
}

TEST_CASE("process: a missing program is an error", "[process]") {
  auto missing = run_process({"pgc-no-such-program", "x"}, "", 5s);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message == "pgc-no-such-program: not found in PATH");
  auto bad_path = run_process({"/nonexistent/pgc-tool"}, "", 5s);
  REQUIRE_FALSE(bad_path);
  CHECK(pgc::starts_with(bad_path.error().message, "/nonexistent/pgc-tool: cannot start: "));
  auto none = run_process({}, "", 5s);
  REQUIRE_FALSE(none);
  CHECK(none.error().message == "run: no program given");
}

TEST_CASE("process: on timeout the program and its children are killed", "[process]") {
  pgc::test::TempDir temp;
  const fs::path pid_file = temp.path() / "pids";
  const auto started = Clock::now();
  auto r = run_process({"sh", "-c", "sleep 30 & echo $$ $! > \"$0\"; wait", pid_file.string()}, "", 300ms);
  const auto took = Clock::now() - started;
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "sh: timed out after 300 ms (killed)");
  CHECK(took < 3s);
  auto pids = pgc::split(pgc::trim(pgc::test::slurp(pid_file)), ' ');
  REQUIRE(pids.size() == 2);
  for (const auto& pid : pids) {
    bool gone = false;
    for (auto until = Clock::now() + 2s; !gone && Clock::now() < until; std::this_thread::sleep_for(20ms))
      gone = process_gone(std::stoi(pid));
    CHECK(gone);
  }
}

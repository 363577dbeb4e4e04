// run_process over Boost.Process: one io_context per call drives the stdin write, both output
// pipes and the exit notification; the child leads its own process group so a timeout kills
// everything it started.

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <algorithm>
#include <future>
#include <system_error>
#include <utility>  // before Asio 1.74: its awaitable.hpp uses std::exchange without including it

// As in providers/patroni: GCC 12 reports a false "potential null pointer dereference" inside
// Asio 1.74's scheduler; the pragma covers only the Boost headers' own lines.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/process/args.hpp>
#include <boost/process/async.hpp>
#include <boost/process/child.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/group.hpp>
#include <boost/process/io.hpp>
#include <boost/process/search_path.hpp>
#pragma GCC diagnostic pop

#include "providers/process/process.hpp"

namespace pgc::providers {
namespace {

namespace bp = boost::process;

// Blocks SIGPIPE on this thread while a child runs, so writing to a child that closed its
// stdin fails with EPIPE instead of killing us; a SIGPIPE raised meanwhile is consumed.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &previous_);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;
  ~SigpipeBlocked() {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1 && sigismember(&previous_, SIGPIPE) == 0) {
      sigset_t pipe_only;
      sigemptyset(&pipe_only);
      sigaddset(&pipe_only, SIGPIPE);
      timespec zero{};
      sigtimedwait(&pipe_only, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }

 private:
  sigset_t previous_{};
};

int exit_code_of(int native_status) {
  if (WIFEXITED(native_status)) return WEXITSTATUS(native_status);
  if (WIFSIGNALED(native_status)) return 128 + WTERMSIG(native_status);
  return -1;
}

std::string take(std::future<std::string>& output) {
  if (!output.valid() || output.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return {};
  try {
    return output.get();
  } catch (const std::exception&) {
    return {};  // the pipe broke (a timeout): nothing more to read
  }
}

}  // namespace

void die_with_parent(long parent_pid) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (static_cast<long>(::getppid()) != parent_pid) std::_Exit(1);  // it died before prctl took effect
}

long current_pid() { return static_cast<long>(::getpid()); }

Result<ProcessResult> run_process(const std::vector<std::string>& argv, const std::string& stdin_data,
                                  std::chrono::milliseconds timeout, const std::atomic<bool>* cancel) {
  if (argv.empty() || argv[0].empty()) return fail("run: no program given");
  const std::string& program = argv[0];
  boost::filesystem::path exe = program.find('/') != std::string::npos ? boost::filesystem::path(program)
                                                                       : bp::search_path(program);
  if (exe.empty()) return fail(program + ": not found in PATH");
  std::vector<std::string> args(argv.begin() + 1, argv.end());

  SigpipeBlocked sigpipe_blocked;
  boost::asio::io_context io;
  std::future<std::string> out;
  std::future<std::string> err;
  bp::group group;
  std::error_code start_error;
  bp::child child(
      exe, bp::args(args), bp::std_in < boost::asio::buffer(stdin_data), bp::std_out > out, bp::std_err > err, io,
      group, start_error, bp::extend::on_exec_setup = [](auto&) {
        sigset_t none;  // the child starts with the signal mask a program expects
        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, nullptr);
      });
  if (start_error) return fail(program + ": cannot start: " + start_error.message());

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool cancelled = false;
  while (!io.stopped()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    if (cancel && cancel->load()) {
      cancelled = true;
      break;
    }
    // Slices, so that cancel is seen (it is set from a signal handler, which cannot notify).
    io.run_for(std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::milliseconds(50)));
  }
  if (!io.stopped()) {
    std::error_code ignored;
    group.terminate(ignored);  // SIGKILL to the whole process group
    io.run_for(std::chrono::seconds(2));
    child.wait(ignored);
    if (cancelled) return fail(program + ": interrupted (killed)");
    return fail(program + ": timed out after " + std::to_string(timeout.count()) + " ms (killed)");
  }
  std::error_code wait_error;
  child.wait(wait_error);
  ProcessResult result;
  result.exit_code = exit_code_of(child.native_exit_code());
  result.out = take(out);
  result.err = take(err);
  return result;
}

}  // namespace pgc::providers

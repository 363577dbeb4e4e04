#include "reconciler/cli/stop_signals.hpp"

#include <csignal>

namespace pgc::cli {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free);

extern "C" void on_stop_signal(int signal) {
  if (g_stop.exchange(true)) {  // the second one: abort now
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  g_signal.store(signal);
}

}  // namespace

const std::atomic<bool>& stop_on_signals() {
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGPIPE, SIG_IGN);
  return g_stop;
}

int stop_signal() { return g_signal.load(); }

}  // namespace pgc::cli

#pragma once
// `pgconverge serve`: the daemon. Polls the source (with jitter), reconciles when the revision
// changes, when a verified webhook asks, and at least every resync interval to heal drift;
// serves /metrics (Prometheus text) and /healthz; stops cleanly on SIGTERM/SIGINT between steps.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "reconciler/event_log.hpp"
#include "reconciler/ownership.hpp"
#include "reconciler/source.hpp"
#include "reconciler/webhook.hpp"
#include "reconciler/world.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

struct ServeConfig {
  SourceOptions source;                      // locations: the git URL (and local directories)
  SshSettings ssh;
  std::chrono::milliseconds interval{60000};  // poll
  std::chrono::milliseconds resync{600000};   // reconcile at least this often, changed or not
  double jitter = 0.1;                        // ± fraction of interval
  std::chrono::seconds wait_timeout{180};     // bound on each run as a whole (all passes and waits)
  std::chrono::seconds lock_timeout{300};
  std::size_t workers = 8;
  std::string listen = "127.0.0.1:9810";      // empty: no HTTP server
  std::string metrics_listen;                 // empty: /metrics and /healthz on listen only
  std::size_t max_connections_per_address = 8;  // on listen (a reverse proxy in front: raise it)
  std::size_t max_body = 1 << 20;
  std::vector<WebhookReceiver> webhooks;      // secrets read from their files
  LogFormat log_format = LogFormat::text;
  std::optional<OwnershipConfig> ownership;   // several instances sharing clusters through etcd
  // /healthz answers 503 "stuck" once one run has been going for longer than this.
  std::chrono::milliseconds stuck_after{3600000};
};

// Reads the YAML config file. Errors name the file and the field; webhook secrets are read from
// the files the config names (never from the config or argv) and must not be world-readable.
Result<ServeConfig> load_serve_config(const std::filesystem::path& file);

// An event "host-key-recorded" on log for each host key that ssh.acceptNewHostKeys recorded
// (host, type, fingerprint, file); for SshSettings and SourceOptions. Thread-safe.
HostKeyRecorder host_key_logger(EventLog& log);

// Runs until stop becomes true, logging its events to log; returns the exit code (0 after a clean
// stop, 1 when the HTTP server cannot start). Thread-safe to flip stop from a signal handler
// (lock-free atomic); a fetch in progress is killed at once. A run that fails in any way — an
// exception included — is logged, counted and recorded as a failure; the daemon goes on.
int serve(const ServeConfig& config, World& world, EventLog& log, const std::atomic<bool>& stop);

}  // namespace pgc::reconciler

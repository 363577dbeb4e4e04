#pragma once
// Cluster ownership for several `serve` instances sharing clusters through etcd (serve's
// `ownership:` section). Each instance holds one etcd lease, kept alive every ttl/3 on its own
// thread; a cluster is this instance's while the key /pgconverge/owners/<namespace>/<cluster>
// holds its instance id with its lease. Fencing: without a successful keepalive for more than
// ttl/2 the instance counts as fenced (halt() turns true, so that apply stops between steps)
// until a new lease is granted and the keys are taken again. stop() revokes the lease, which
// releases every key at once; a killed instance's keys go when its lease expires.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "providers/etcd/etcd_client.hpp"
#include "reconciler/event_log.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

struct OwnershipConfig {
  std::vector<std::string> etcd;        // host:port of etcd v3 endpoints
  std::string instance;                 // this instance's id (default hostname-pid)
  std::chrono::seconds lease_ttl{10};
  std::optional<providers::EtcdTls> tls{};  // https endpoints: ownership.tls's files, read at start
};

// The key that records a cluster's owner; cluster "" is the shared key (changes of no cluster).
std::string owner_key(const std::string& namespace_, const std::string& cluster);

class Ownership {
 public:
  // Grants the first lease (a failure is logged, and retried by acquire) and starts keepalives.
  // stop (may be null) is the daemon's stop flag, folded into halt().
  Ownership(const OwnershipConfig& config, std::unique_ptr<providers::EtcdClient> client, EventLog& log,
            const std::atomic<bool>* stop);
  ~Ownership();
  Ownership(const Ownership&) = delete;
  Ownership& operator=(const Ownership&) = delete;

  // Tries to own each (namespace, cluster); returns the clusters (by name) that are this
  // instance's now. Logs cluster-owned when a cluster becomes this instance's and
  // cluster-owned-elsewhere (with the owner) when another instance holds it. Fenced: first a new
  // lease; an error when none can be granted (nothing may be applied).
  Result<std::set<std::string>> acquire(const std::vector<std::pair<std::string, std::string>>& clusters);
  // True while this instance must not act: fenced, or the daemon is stopping. Updated every 100 ms.
  [[nodiscard]] const std::atomic<bool>& halt() const { return halt_; }
  [[nodiscard]] bool fenced() const;
  [[nodiscard]] const std::string& instance() const { return config_.instance; }
  // Stops keepalives and revokes the lease (others may take the clusters at once). Idempotent.
  void stop();

 private:
  bool grant();
  void keepalive_loop();

  OwnershipConfig config_;
  std::unique_ptr<providers::EtcdClient> client_;
  EventLog& log_;
  const std::atomic<bool>* stop_;
  std::atomic<std::int64_t> lease_{0};
  std::atomic<std::int64_t> last_ok_ms_{0};  // steady clock of the last successful grant/keepalive
  std::atomic<bool> lost_{true};
  std::atomic<bool> halt_{true};
  std::map<std::string, std::string> state_;  // key → "" (mine) or the other owner, for logging changes
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace pgc::reconciler

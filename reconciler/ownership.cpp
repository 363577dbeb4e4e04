#include "reconciler/ownership.hpp"

#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string owner_key(const std::string& namespace_, const std::string& cluster) {
  if (cluster.empty()) return "/pgconverge/owners/-shared";
  return "/pgconverge/owners/" + namespace_ + "/" + cluster;
}

Ownership::Ownership(const OwnershipConfig& config, std::unique_ptr<providers::EtcdClient> client, EventLog& log,
                     const std::atomic<bool>* stop)
    : config_(config), client_(std::move(client)), log_(log), stop_(stop) {
  grant();
  thread_ = std::thread([this] { keepalive_loop(); });
}

Ownership::~Ownership() { stop(); }

bool Ownership::fenced() const {
  auto half = std::chrono::duration_cast<std::chrono::milliseconds>(config_.lease_ttl).count() / 2;
  return lost_ || steady_ms() - last_ok_ms_ > half;
}

bool Ownership::grant() {
  auto started = steady_ms();
  auto lease = client_->grant(config_.lease_ttl);
  if (!lease) {
    log_.event("lease-failed", {{"instance", config_.instance}, {"error", lease.error().message}});
    return false;
  }
  lease_ = *lease;
  last_ok_ms_ = started;  // etcd counts the TTL from before the answer arrived
  lost_ = false;
  {
    std::lock_guard lock(mutex_);
    state_.clear();  // keys of the old lease are not ours any more
  }
  log_.event("lease-granted", {{"instance", config_.instance}, {"lease", std::to_string(*lease)},
                               {"ttl", std::to_string(config_.lease_ttl.count()) + "s"}});
  return true;
}

void Ownership::keepalive_loop() {
  auto ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(config_.lease_ttl).count();
  auto every = std::max<std::int64_t>(ttl_ms / 3, 200);
  std::int64_t next = steady_ms() + every;
  bool was_fenced = false;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (stopping_) break;
    if (steady_ms() >= next && !lost_) {
      std::int64_t lease = lease_;
      lock.unlock();
      auto sent = steady_ms();
      auto ttl = client_->keepalive(lease);
      if (!ttl) {
        log_.event("keepalive-failed", {{"instance", config_.instance}, {"error", ttl.error().message}});
      } else if (*ttl <= 0) {
        if (lease_ == lease) lost_ = true;
        log_.event("lease-lost", {{"instance", config_.instance}, {"lease", std::to_string(lease)}});
      } else if (lease_ == lease) {
        last_ok_ms_ = sent;
      }
      lock.lock();
      next = steady_ms() + every;
    }
    bool f = fenced();
    if (f && !was_fenced)
      log_.event("fenced", {{"instance", config_.instance},
                            {"message", "no successful keepalive for more than ttl/2: applying nothing until a new lease"}});
    was_fenced = f;
    halt_ = f || (stop_ && stop_->load());
  }
}

Result<std::set<std::string>> Ownership::acquire(const std::vector<std::pair<std::string, std::string>>& clusters) {
  if (fenced()) {
    if (!grant()) return fail("ownership: no etcd lease (etcd " + join(config_.etcd, ", ") + "): applying nothing");
  }
  halt_ = fenced() || (stop_ && stop_->load());
  std::int64_t lease = lease_;
  std::set<std::string> mine;
  std::vector<std::string> errors;
  for (const auto& [ns, name] : clusters) {
    std::string key = owner_key(ns, name);
    std::string shown = name.empty() ? "(shared changes)" : ns + "/" + name;
    auto created = client_->create(key, config_.instance, lease);
    if (!created) {
      errors.push_back(created.error().message);
      continue;
    }
    bool owned = created->created;
    std::string owner = config_.instance;
    if (!owned && created->existing) {
      const auto& kv = *created->existing;
      owner = kv.value;
      if (kv.value == config_.instance && kv.lease == lease) owned = true;
      else if (kv.value == config_.instance) {  // ours under an old lease (before a re-grant)
        auto replaced = client_->replace(key, config_.instance, lease, kv.mod_revision);
        if (!replaced) errors.push_back(replaced.error().message);
        owned = replaced && *replaced;
      }
    }
    std::lock_guard lock(mutex_);
    auto previous = state_.find(key);
    std::string now = owned ? std::string() : owner;
    if (previous == state_.end() || previous->second != now) {
      if (owned)
        log_.event("cluster-owned", {{"cluster", shown}, {"instance", config_.instance}, {"key", key}});
      else
        log_.event("cluster-owned-elsewhere", {{"cluster", shown}, {"instance", config_.instance}, {"owner", owner}, {"key", key}});
      state_[key] = now;
    }
    if (owned) mine.insert(name);
  }
  for (const auto& e : errors) log_.event("ownership-error", {{"instance", config_.instance}, {"error", e}});
  // A lease that lapsed while the keys were taken: none of them counts.
  if (fenced()) return fail("ownership: the lease lapsed while taking the keys: applying nothing");
  return mine;
}

void Ownership::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  halt_ = true;
  if (lost_) return;
  auto revoked = client_->revoke(lease_);
  if (!revoked) log_.event("revoke-failed", {{"instance", config_.instance}, {"error", revoked.error().message}});
  else log_.event("lease-revoked", {{"instance", config_.instance}, {"lease", std::to_string(lease_.load())}});
  lost_ = true;
}

}  // namespace pgc::reconciler

// The member steps of a cluster's plan, on its hosts and through Patroni's REST API
// (member_steps.hpp). Every wait is on observation, never on an HTTP status.

#include "reconciler/member_steps.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

#include "util/json_pointer.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

using json = nlohmann::json;

// How long a strict restart waits on replicas that have pending restarts of their own.
constexpr auto k_pending_replica_grace = std::chrono::seconds(15);
// How long a strict restart or stop waits for another replica to stream before the pass gives up.
constexpr std::chrono::seconds k_await_replica{45};
constexpr auto k_slow_call = std::chrono::milliseconds(60000);  // POST /restart, /switchover answer when done

// How long after a reload or a DCS patch of PostgreSQL's settings a PostgreSQL refusing
// pgconverge may still be the old pg_hba: Patroni's next loop and a margin for a busy one, at
// least 5 s (WaitTally::auth_settle_until).
std::chrono::seconds auth_settle_time(std::chrono::seconds loop_wait) {
  return std::max<std::chrono::seconds>(loop_wait + std::chrono::seconds(2), std::chrono::seconds(5));
}

// A call that answers when Patroni is done (POST /restart, /switchover): the step's time, within
// what is left of the apply's bound.
std::chrono::milliseconds slow_call_timeout(const ApplyOptions& options) {
  return options.deadline.left(std::min<std::chrono::milliseconds>(options.wait_timeout, k_slow_call),
                               std::chrono::milliseconds(1000));
}

// An answer the step does not accept: 401/403 are permanent (the credentials will not change by
// asking again), any other status may pass.
Error refused(const std::string& what, const providers::HttpResponse& r) {
  std::string message = what + " answered " + std::to_string(r.status) + ": " + trim(r.body).substr(0, 200);
  return Error{message, r.status == 401 || r.status == 403 ? k_http_forbidden : ""};
}

// PATCH /config and POST /switchover work on any member (Patroni writes them to the DCS). Asks
// the leader first, then every other member, so that a leader lost mid-apply (fault 4) does not
// fail the step: the cluster is observed afresh for each call. Stops at the first answer. The
// leader first although it costs a REST request: the member that takes a PATCH wakes its own HA
// loop, so the leader acts on it at once instead of at its next loop (loop_wait, 10 s by default).
template <typename Call>
auto on_any_member(StepSupport& support, const DesiredCluster& c, Call call, bool slow = false)
    -> decltype(call(std::declval<providers::PatroniClient&>())) {
  auto& world = support.context().world;
  const auto& secrets = support.secrets(c.name);
  auto oc = observe_members(c, member_addresses(c), &secrets, world);
  if (!oc.api_reachable)
    return std::unexpected(Error{"cluster " + c.name + ": Patroni REST API not reachable: " +
                                     (oc.dcs_error.empty() ? oc.error : oc.dcs_error),
                                 oc.permanent});
  std::vector<std::string> order;
  if (const auto* leader = oc.leader(); leader && !leader->host.empty()) order.push_back(leader->host);
  for (const auto& address : member_addresses(c))
    if (std::find(order.begin(), order.end(), address) == order.end()) order.push_back(address);
  decltype(call(std::declval<providers::PatroniClient&>())) result = fail("cluster " + c.name + ": no member to ask");
  for (const auto& address : order) {
    auto endpoint = patroni_endpoint(address, &secrets);
    if (slow) endpoint.timeout = slow_call_timeout(support.options());
    auto client = world.patroni(endpoint);
    result = call(*client);
    if (result) break;
  }
  return result;
}

// The configuration Patroni answers with.
Result<json> patch_config(StepSupport& support, const DesiredCluster& c, const json& body) {
  return on_any_member(support, c, [&](providers::PatroniClient& client) { return client.patch_config(body); });
}

// Every key of patch (flattened to JSON pointers) with its value.
std::map<std::string, json> patched_keys(const json& patch) {
  std::map<std::string, json> keys;
  std::function<void(const json&, const std::string&)> flat = [&](const json& v, const std::string& p) {
    if (v.is_object() && !v.empty()) {
      for (auto it = v.begin(); it != v.end(); ++it) flat(it.value(), pointer_append(p, it.key()));
    } else {
      keys[p] = v;
    }
  };
  flat(patch, "");
  return keys;
}

bool holds(const json& config, const std::map<std::string, json>& keys) {
  for (const auto& [p, v] : keys) {
    json::json_pointer ptr(p);
    if (!config.contains(ptr) || !same_setting(config.at(ptr), v)) return false;
  }
  return true;
}

}  // namespace

Result<void> MemberSteps::run(const steps::WriteConfig&, const Change& change, const Progress::Token&) {
  const auto& m = support_.member(change);
  auto s = support_.session(change.host);
  PGC_TRY(s);
  const std::string& data_dir = m.data_dir;
  std::string parent = std::filesystem::path(data_dir).parent_path().string();
  std::string config_dir = std::filesystem::path(m.config_path).parent_path().string();
  // Directories Patroni needs; the socket dir is what systemd-tmpfiles makes on a real VM. An
  // existing one must already belong to its owner: it is never re-owned.
  using Existing = providers::RemoteHost::ExistingDirectory;
  const std::pair<std::string, providers::FileMode> dirs[] = {
      {config_dir, {"root", "postgres", 0750}},
      {parent, {"postgres", "postgres", 0700}},
      {"/var/run/postgresql", {"postgres", "postgres", 02775}},
  };
  for (const auto& [dir, mode] : dirs)
    if (auto made = (*s)->make_directory(dir, mode, Existing::owned); !made)
      return fail(made.error().message + " (step: preparing Patroni's directories)");
  return (*s)->write_file(m.config_path, config_text(m, support_.secrets(change.cluster)),
                          providers::FileMode{"root", "postgres", 0640});
}

Result<void> MemberSteps::run(const steps::ReloadMember&, const Change& change, const Progress::Token&) {
  PGC_TRY(support_.systemctl(change.host, {"reload", support_.member(change).service}));
  // Patroni reads the reloaded file (pg_hba among it) in its next loop: until then PostgreSQL
  // refusing pgconverge may be the old configuration, not a final answer (waits.hpp). One loop
  // and a margin for a busy one, at least 5 s.
  if (auto* tally = current_tally()) {
    auto loop_wait = std::chrono::seconds(support_.cluster(change).dynamic_config.value("loop_wait", 10));
    tally->auth_settle_until = std::chrono::steady_clock::now() + auth_settle_time(loop_wait);
  }
  return {};
}

Result<void> MemberSteps::run(const steps::StartMember& step, const Change& change, const Progress::Token& token) {
  const auto& m = support_.member(change);
  if (step.enable) PGC_TRY(support_.systemctl(change.host, {"enable", m.service}));
  PGC_TRY(support_.systemctl(change.host, {"start", m.service}));
  using steps::StartWait;
  const StartWait wait = step.wait;
  if (wait == StartWait::none) return {};  // a later start waits for it (replicas joining together)
  std::vector<std::string> names{m.name};
  if (!step.wait_members.empty()) names = step.wait_members;
  auto member_ready = [&](const ObservedCluster& oc, const std::string& name) {
    const auto* om = oc.member(name);
    if (!om) return false;
    if (wait == StartWait::leader) return om->role == "leader" && om->state == "running";
    if (wait == StartWait::streaming)
      return (om->role == "replica" || om->role == "sync_standby") && (om->state == "running" || om->state == "streaming");
    return om->state == "running" || om->state == "streaming";
  };
  auto ready = [&](const ObservedCluster& oc) {
    return std::all_of(names.begin(), names.end(), [&](const std::string& n) { return member_ready(oc, n); });
  };
  PGC_TRY(support_.wait(support_.cluster(change), join(names, ", ") + " " + to_string(wait), token, ready));
  return {};
}

// Patroni 3.0.2 only clears standby names nobody streams ('*' after strict was turned off, or
// stale names: plan.cpp) when synchronous_mode goes off (docs/replication-semantics.md §5.5): off, then wait until they leave.
Result<void> MemberSteps::release_standby_names(const DesiredCluster& c, const steps::PatchDcs& step,
                                                const Progress::Token& token) {
  std::vector<std::string> held = {"*"};
  if (!step.release_stale.empty()) {
    // Stale names are released only while still stale: a named standby that streams again since
    // the plan is Patroni's to handle, and turning synchronous_mode off then would be a gap.
    auto now = support_.wait(c, "the leader's standby names", token, [](const ObservedCluster&) { return true; },
                             std::nullopt, true);
    PGC_TRY(now);
    held = now->stale_standby_names();
    if (held.empty()) return {};
  }
  PGC_TRY(patch_config(support_, c, {{"synchronous_mode", false}, {"synchronous_mode_strict", false}}));
  auto released = support_.wait(
      c, "synchronous_standby_names to leave " + join(held, ", "), token,
      [&](const ObservedCluster& oc) {
        const auto* l = oc.leader();
        if (!l || !oc.postgres.contains(l->name)) return false;
        auto names = standby_names(oc.postgres.at(l->name).synchronous_standby_names);
        return std::none_of(held.begin(), held.end(),
                            [&](const auto& n) { return std::find(names.begin(), names.end(), n) != names.end(); });
      },
      std::nullopt, true);
  PGC_TRY(released);
  return {};
}

// A 200 is not proof (docs/replication-semantics.md §5.6): reads the configuration back until
// every patched key holds. (Patroni 3.0.2 answers a PATCH with the configuration it wrote, but
// the read-back also gives the apply the moment, after the PATCH, at which a leader lost right
// then is seen — converge_faults_ha fault 4b — before the verification starts.)
Result<void> MemberSteps::verify_stored(const DesiredCluster& c, const json& patch, const Progress::Token& token) {
  auto keys = patched_keys(patch);
  auto stored = support_.wait(
      c, "Patroni to store the configuration", token, [&](const ObservedCluster& oc) { return holds(oc.dcs_config, keys); },
      std::min(support_.options().wait_timeout, std::chrono::seconds(30)));
  if (!stored) return fail("Patroni answered the PATCH but did not store it (" + stored.error().message + ")");
  return {};
}

Result<void> MemberSteps::run(const steps::PatchDcs& step, const Change& change, const Progress::Token& token) {
  const auto& c = support_.cluster(change);
  const json& patch = step.patch;
  if (patch.value("synchronous_mode_strict", false)) {
    // Enabling strict with no streaming replica blocks every write (docs/replication-semantics.md §5.4): wait for one.
    PGC_TRY(support_.wait(c, "a streaming replica before enabling strict mode", token,
                          [](const ObservedCluster& oc) { return !oc.streaming_replicas().empty(); }));
  }
  if (step.release_first) PGC_TRY(release_standby_names(c, step, token));
  PGC_TRY(patch_config(support_, c, patch));
  PGC_TRY(verify_stored(c, patch, token));
  // PostgreSQL parameters take effect in Patroni's next loop; only then does a parameter that
  // needs a restart show as a pending restart. The verification waits one loop (+1 s) first.
  if (auto* tally = current_tally(); patch.contains("postgresql") && tally) {
    auto loop_wait = std::chrono::seconds(c.dynamic_config.value("loop_wait", 10));
    tally->settle_until = std::chrono::steady_clock::now() + loop_wait + std::chrono::seconds(1);
    // pg_hba may be among them: PostgreSQL refusing pgconverge is final only after that too.
    tally->auth_settle_until = std::chrono::steady_clock::now() + auth_settle_time(loop_wait);
  }
  return {};
}

// Strict mode: this restart or stop relies on another replica streaming
// (docs/replication-semantics.md §5.1); one is coming back (its host answers, its service runs): wait for it. One that itself
// waits for a restart this plan does not hold (back from an outage with the old settings, it may
// not stream at all: a standby with a lower max_connections than its primary cannot) will not
// come by waiting: after a grace period the step fails, and the next pass plans its restart first.
Result<void> MemberSteps::await_streaming(const steps::AwaitStreamingExcept& await, const Change& change,
                                          const Progress::Token& token) {
  if (!await) return {};
  const auto& except = *await;
  const auto& c = support_.cluster(change);
  auto is_except = [&](const std::string& name) { return std::find(except.begin(), except.end(), name) != except.end(); };
  auto stuck_since = std::chrono::steady_clock::time_point::max();
  bool stuck = false;
  // Bounded well below --wait-timeout: a replica coming back streams within seconds; when
  // none does, a fresh observation (the next pass) sees why sooner than waiting on.
  auto other = support_.wait(
      c, "another replica to stream (strict mode keeps a sync standby)", token,
      [&](const ObservedCluster& oc) {
        for (const auto& name : oc.streaming_replicas())
          if (!is_except(name)) return true;
        bool only_pending = true, any = false;
        for (const auto& m : c.members) {
          if (is_except(m.name)) continue;
          const auto* om = oc.member(m.name);
          if (!om || om->role == "leader") continue;
          any = true;
          only_pending = only_pending && om->pending_restart;
        }
        auto now = std::chrono::steady_clock::now();
        if (!(any && only_pending)) stuck_since = std::chrono::steady_clock::time_point::max();
        else if (stuck_since == std::chrono::steady_clock::time_point::max()) stuck_since = now;
        stuck = any && only_pending && now - stuck_since >= k_pending_replica_grace;
        return stuck;
      },
      std::min(support_.options().wait_timeout, k_await_replica));
  PGC_TRY(other);
  if (stuck)
    return fail("no other replica streams, and the ones there wait for a restart themselves: a new plan restarts "
                "them first");
  return {};
}

Result<void> MemberSteps::run(const steps::RestartMember& step, const Change& change, const Progress::Token& token) {
  PGC_TRY(await_streaming(step.await_streaming_except, change, token));
  const auto& c = support_.cluster(change);
  const auto& m = support_.member(change);
  // POST /restart answers once PostgreSQL is back: allow it the step's time, not a probe's.
  auto endpoint = patroni_endpoint(m.address, &support_.secrets(c.name));
  endpoint.timeout = slow_call_timeout(support_.options());
  auto client = support_.context().world.patroni(endpoint);
  auto r = client->restart(true);
  PGC_TRY(r);
  if (r->status != 200 && r->status != 503) return std::unexpected(refused("POST /restart on " + m.name, *r));
  PGC_TRY(support_.wait(c, m.name + " to restart", token, [&](const ObservedCluster& oc) {
    const auto* om = oc.member(m.name);
    return om && !om->pending_restart && (om->state == "running" || om->state == "streaming");
  }));
  return {};
}

// In sync mode the candidate must be a sync standby (docs/replication-semantics.md §5.8). Which replica Patroni holds as sync
// may have changed since the plan (a restart in between moves it): take the planned one if it is
// sync, else any declared failover-capable sync standby — one without a pending restart first (a
// member back from an outage may have one: leading, it would need another switchover).
Result<std::string> MemberSteps::sync_candidate(const DesiredCluster& c, const steps::Switchover& step,
                                                const Progress::Token& token) {
  std::string chosen;
  auto ok = support_.wait(c, "a sync standby to switch over to", token, [&](const ObservedCluster& oc) {
    auto syncs = oc.sync_standbys();
    auto pending = [&](const std::string& name) {
      const auto* om = oc.member(name);
      return om && om->pending_restart;
    };
    auto eligible = [&](const std::string& name) {
      const auto* m = c.find_member(name);
      return m && !m->tags.nofailover && name != step.leader;
    };
    for (bool allow_pending : {false, true}) {
      if (std::find(syncs.begin(), syncs.end(), step.candidate) != syncs.end() &&
          (allow_pending || !pending(step.candidate))) {
        chosen = step.candidate;
        return true;
      }
      for (const auto& name : syncs)
        if (eligible(name) && (allow_pending || !pending(name))) {
          chosen = name;
          return true;
        }
    }
    return false;
  });
  PGC_TRY(ok);
  return chosen;
}

Result<void> MemberSteps::run(const steps::Switchover& step, const Change& change, const Progress::Token& token) {
  const auto& c = support_.cluster(change);
  const std::string& leader = step.leader;
  std::string candidate = step.candidate;
  if (c.dynamic_config.value("synchronous_mode", false)) {
    auto chosen = sync_candidate(c, step, token);
    PGC_TRY(chosen);
    candidate = *chosen;
  }
  auto r = on_any_member(
      support_, c, [&](providers::PatroniClient& client) { return client.switchover(leader, candidate); }, true);
  PGC_TRY(r);
  if (r->status != 200 && r->status != 202)
    return std::unexpected(refused("POST /switchover " + leader + " → " + candidate, *r));
  PGC_TRY(support_.wait(c, candidate + " to lead", token, [&](const ObservedCluster& oc) {
    const auto* l = oc.leader();
    return l && l->name == candidate && l->state == "running";
  }));
  return {};
}

Result<void> MemberSteps::run(const steps::StopMember& step, const Change& change, const Progress::Token& token) {
  PGC_TRY(await_streaming(step.await_streaming_except, change, token));
  PGC_TRY(support_.systemctl(change.host, {"stop", step.service}));
  return support_.systemctl(change.host, {"disable", step.service});
}

}  // namespace pgc::reconciler

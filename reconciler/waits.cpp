// Waiting on observation: a step's wait, the verification of convergence, the wait tally.

#include "reconciler/waits.hpp"

#include <algorithm>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>

#include "reconciler/converged.hpp"

namespace pgc::reconciler {
namespace {

constexpr auto k_poll = std::chrono::milliseconds(500);
// How long a declared member may be gone (or only wait for a restart no plan holds) before the
// verification stops waiting for it.
constexpr auto k_member_gone_grace = std::chrono::seconds(10);

thread_local WaitTally* t_tally = nullptr;

// One observation of a wait: its time counts as waiting when Patroni had not acted yet.
template <typename Observe>
auto tallied_observation(WaitTally* tally, Observe&& observe) {
  auto start = std::chrono::steady_clock::now();
  auto [observed, done] = observe();
  if (tally) {
    ++tally->observations;
    if (!done) tally->waited += std::chrono::steady_clock::now() - start;
  }
  return std::pair{std::move(observed), done};
}

// Whether a PostgreSQL refusing pgconverge is final now: no reload this apply made is still
// waiting for Patroni's next loop (WaitTally::auth_settle_until).
bool auth_settled(const WaitTally* tally) {
  return !tally || std::chrono::steady_clock::now() >= std::max(tally->settle_until, tally->auth_settle_until);
}

void tallied_pause(WaitTally* tally) {
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(k_poll);
  if (tally) tally->waited += std::chrono::steady_clock::now() - start;
}

}  // namespace

ApplyDeadline ApplyDeadline::starting_now(std::chrono::seconds bound) {
  return ApplyDeadline{std::chrono::steady_clock::now() + bound, bound};
}

bool ApplyDeadline::passed() const { return std::chrono::steady_clock::now() >= at; }

std::chrono::steady_clock::time_point ApplyDeadline::cut(std::chrono::seconds own) const {
  return std::min(std::chrono::steady_clock::now() + own, at);
}

std::chrono::milliseconds ApplyDeadline::left(std::chrono::milliseconds own, std::chrono::milliseconds min) const {
  if (at == std::chrono::steady_clock::time_point::max()) return std::max(own, min);
  auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(at - std::chrono::steady_clock::now());
  return std::max({std::min(own, remaining), min, std::chrono::milliseconds(0)});
}

std::string ApplyDeadline::reached() const {
  return "the apply's --wait-timeout of " + std::to_string(bound.count()) + "s (all passes and waits) was reached";
}

std::optional<Error> permanent_failure(const DesiredCluster& cluster, const ObservedCluster& observed,
                                       bool postgres_settled) {
  if (!observed.api_reachable)
    return observed.permanent.empty()
               ? std::nullopt
               : std::optional<Error>(Error{"Patroni REST API: " + observed.error, observed.permanent});
  const auto* leader = observed.leader();
  if (!postgres_settled || !leader || leader->state != "running") return std::nullopt;
  auto pg = observed.postgres.find(leader->name);
  if (pg == observed.postgres.end() || pg->second.reachable || pg->second.permanent.empty()) return std::nullopt;
  const auto* member = cluster.find_member(leader->name);
  std::string where = "leader " + leader->name + (member ? " on host " + member->host : std::string());
  return Error{"the PostgreSQL of " + where + ": " + pg->second.error, pg->second.permanent};
}

WaitTally* current_tally() { return t_tally; }

ScopedTally::ScopedTally(WaitTally* tally) : previous_(t_tally) { t_tally = tally; }
ScopedTally::~ScopedTally() { t_tally = previous_; }

std::vector<std::string> member_addresses(const DesiredCluster& cluster) {
  std::vector<std::string> out;
  for (const auto& m : cluster.members) out.push_back(m.address);
  return out;
}

Result<ObservedCluster> wait_for(const DesiredCluster& cluster, const ClusterSecrets& secrets, World& world,
                                 const WaitSpec& spec, Progress& progress, const Progress::Token& token,
                                 const std::function<bool(const ObservedCluster&)>& ready) {
  auto own = std::chrono::steady_clock::now() + spec.timeout;
  auto deadline = spec.apply.cut(spec.timeout);
  ObservedCluster last;
  while (true) {
    bool done = false;
    std::tie(last, done) = tallied_observation(t_tally, [&] {
      auto observed = observe_cluster(cluster, member_addresses(cluster), &secrets, world, spec.with_postgres, 4);
      bool is_ready = ready(observed);
      return std::pair{std::move(observed), is_ready};
    });
    if (done) return last;
    if (auto permanent = permanent_failure(cluster, last, auth_settled(t_tally)))
      return std::unexpected(permanent->with_context("waiting for " + spec.what));
    if (std::chrono::steady_clock::now() >= deadline)
      return fail(deadline < own ? spec.apply.reached() + " while waiting for " + spec.what
                                 : "timed out after " + std::to_string(spec.timeout.count()) + "s waiting for " + spec.what);
    if (stopping(spec.stop)) return fail(std::string(k_stopping) + " while waiting for " + spec.what);
    progress.update(token, "waiting for " + spec.what);
    tallied_pause(t_tally);
  }
}

Verification wait_converged(const DesiredCluster& cluster, const ClusterSecrets& secrets, World& world,
                            const WaitSpec& spec, std::size_t workers, Progress* progress, ObservedCluster* last,
                            WaitTally* tally) {
  auto own = std::chrono::steady_clock::now() + spec.timeout;
  auto deadline = spec.apply.cut(spec.timeout);
  std::optional<Progress::Token> token;
  if (progress) token = progress->begin(cluster.name, "verify");
  Verification result;
  auto& diffs = result.differences;
  // A declared member that left Patroni or stopped (its service was stopped, its host lost) will
  // not come back by waiting: after a grace period the wait ends, and the caller may re-plan.
  auto member_gone_since = std::chrono::steady_clock::time_point::max();  // max: none gone
  while (true) {
    auto [oc, done] = tallied_observation(tally, [&] {
      auto observed = observe_cluster(cluster, member_addresses(cluster), &secrets, world, true, workers);
      diffs = differences(cluster, observed);
      bool settled = !tally || std::chrono::steady_clock::now() >= tally->settle_until;
      return std::pair{std::move(observed), diffs.empty() && settled};
    });
    if (last) *last = oc;
    if (done) break;
    if ((result.permanent = permanent_failure(cluster, oc, auth_settled(tally)))) break;
    auto now = std::chrono::steady_clock::now();
    bool gone = oc.api_reachable && std::any_of(cluster.members.begin(), cluster.members.end(), [&](const auto& m) {
      const auto* om = oc.member(m.name);
      return !om || om->state == "stopped" || om->state == "crashed" || om->state == "start failed";
    });
    // Likewise pending restarts that this apply did not plan (a member back from an outage with
    // an old configuration): only a new plan restarts them.
    bool only_pending = !diffs.empty() && std::all_of(diffs.begin(), diffs.end(), [](const std::string& d) {
      return d.ends_with(" has a pending restart");
    });
    if (!gone && !only_pending) member_gone_since = std::chrono::steady_clock::time_point::max();
    else if (member_gone_since == std::chrono::steady_clock::time_point::max()) member_gone_since = now;
    bool stuck = (gone || only_pending) && now - member_gone_since >= k_member_gone_grace;
    if (now >= deadline) {
      result.bound_reached = deadline < own;
      break;
    }
    if (stuck || stopping(spec.stop)) break;
    if (progress) progress->update(*token, diffs.empty() ? "waiting for Patroni's loop to apply the parameters" : diffs.front());
    tallied_pause(tally);
  }
  if (progress)
    progress->finish(*token, diffs.empty()        ? "converged"
                             : result.permanent ? "failed: " + result.permanent->describe()
                                                : "not converged: " + diffs.front());
  return result;
}

}  // namespace pgc::reconciler

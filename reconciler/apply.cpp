// The executor of a plan (apply.hpp): the order of its changes, what runs in parallel, what a
// failure skips, the stop flag, and the verification by observation. A StepRunner
// (step_runner.hpp) carries out each change.

#include "reconciler/apply.hpp"

#include <algorithm>
#include <atomic>
#include <optional>
#include <set>

#include "reconciler/host_prep.hpp"
#include "reconciler/redact.hpp"
#include "reconciler/step_runner.hpp"
#include "util/parallel.hpp"

namespace pgc::reconciler {
namespace {

const steps::InstallPackages* install_step(const Change& change) {
  return std::get_if<steps::InstallPackages>(&change.step);
}

bool is_etcd(const Change& change) { return !etcd_name(change.step).empty(); }

// One apply of one plan, in its phases: the packages' dry run, host preparation, the etcd steps,
// then the clusters, each verified.
class Executor {
 public:
  Executor(const Plan& plan, const DesiredState& desired, const std::map<std::string, ClusterSecrets>& secrets,
           World& world, Progress& progress, const ApplyOptions& options, StepRunner& runner)
      : plan_(plan), desired_(desired), secrets_(secrets), world_(world), progress_(progress), options_(options),
        runner_(runner) {}

  ApplyReport run() {
    report_.host_errors = plan_.host_errors;
    check_packages();
    // Hosts of clusters and etcds no failed host stops.
    scope_ = preparation_scope(desired_, failed_hosts_);
    failed_etcds_ = scope_.blocked_etcds;
    prepare_hosts();
    run_etcd_steps();
    run_clusters();
    for (auto& e : report_.host_errors) e = redact_text(e);
    return std::move(report_);
  }

 private:
  Result<void> check(const Change& change) {
    auto token = progress_.begin(change.host, "check-packages");
    auto result = runner_.check(change, token);
    progress_.finish(token, result ? "ok" : "failed: " + result.error().message);
    return result;
  }

  Result<void> execute(const Change& change) {
    std::string etcd = etcd_name(change.step);
    std::string what = !etcd.empty() ? etcd : change.member.empty() ? change.cluster : change.member;
    auto token = progress_.begin(change.host.empty() ? (etcd.empty() ? change.cluster : "etcd " + etcd) : change.host,
                                 to_string(change.step) + " " + what);
    auto result = runner_.run(change, token);
    progress_.finish(token, result ? "ok" : "failed: " + result.error().describe());
    return result;
  }

  // The hosts of the plan's host changes that pred selects, in plan order.
  template <typename Pred>
  std::vector<std::string> hosts_of(Pred pred) const {
    std::vector<std::string> out;
    for (const auto& change : plan_.host_changes)
      if (pred(change) && std::find(out.begin(), out.end(), change.host) == out.end()) out.push_back(change.host);
    return out;
  }

  // work(host, errors) on every host in parallel; a host with errors has failed.
  template <typename Work>
  void for_hosts(const std::vector<std::string>& hosts, Work work) {
    std::vector<std::vector<std::string>> errors(hosts.size());
    parallel_for(hosts.size(), options_.workers, [&](std::size_t i) { work(hosts[i], errors[i]); });
    for (std::size_t i = 0; i < hosts.size(); ++i) {
      if (!errors[i].empty()) failed_hosts_.insert(hosts[i]);
      report_.host_errors.insert(report_.host_errors.end(), errors[i].begin(), errors[i].end());
    }
  }

  // Before anything is installed, every planned install is resolved by apt without installing; a
  // host where that fails fails, and so does every cluster with a member there — the hosts only
  // such clusters need are then left as they were.
  void check_packages() {
    for_hosts(hosts_of([](const Change& c) { return install_step(c) != nullptr; }),
              [&](const std::string& host, std::vector<std::string>& errors) {
                for (const auto& change : plan_.host_changes)
                  if (change.host == host && install_step(change) && !install_step(change)->after_repository)
                    if (auto r = check(change); !r) errors.push_back(r.error().message);
              });
  }

  // Hosts are prepared in parallel (a package install takes minutes), each host's changes in
  // order. A failed change ends that host's preparation.
  void prepare_hosts() {
    const auto& needed = scope_.needed_hosts;
    std::atomic<std::size_t> applied{0};
    for_hosts(hosts_of([&](const Change& c) { return needed.contains(c.host) && !failed_hosts_.contains(c.host) && !is_etcd(c); }),
              [&](const std::string& host, std::vector<std::string>& errors) {
                for (const auto& change : plan_.host_changes) {
                  if (change.host != host || is_etcd(change)) continue;
                  if (stopping(options_.stop)) {
                    errors.push_back(change.subject + ": " + k_stopping + " (not started)");
                    break;
                  }
                  if (auto r = execute(change); !r) {
                    errors.push_back(r.error().message);
                    break;
                  }
                  ++applied;
                }
              });
    report_.host_changes_applied += applied;
  }

  // Then the etcd pgconverge runs, in plan order (a start spans its members; member add goes
  // through one member before the new one starts). A failed step stops that etcd's later steps,
  // and the clusters using it; so does a host of it whose preparation failed.
  void run_etcd_steps() {
    for (const auto& change : plan_.host_changes) {
      if (!is_etcd(change)) continue;
      if (auto skipped = etcd_skip(change)) {
        report_.host_errors.push_back(change.subject + ": " + *skipped);
        continue;
      }
      if (auto r = execute(change); !r) {
        report_.host_errors.push_back(change.subject + ": " + r.error().message);
        failed_etcds_.insert(etcd_name(change.step));
      } else {
        ++report_.host_changes_applied;
      }
    }
  }

  // Why an etcd change is not run (its etcd then counts as failed), or nothing.
  std::optional<std::string> etcd_skip(const Change& change) {
    std::string etcd = etcd_name(change.step);
    if (scope_.blocked_etcds.contains(etcd)) return "skipped, a host of etcd " + etcd + " could not be prepared";
    if (failed_etcds_.contains(etcd)) return "skipped, an earlier step of etcd " + etcd + " failed";
    std::optional<std::string> why;
    if (failed_hosts_.contains(change.host)) why = "skipped, preparing host " + change.host + " failed";
    else if (stopping(options_.stop)) why = std::string(k_stopping) + " (not started)";
    if (why) failed_etcds_.insert(etcd);
    return why;
  }

  // Clusters are independent: run them in parallel, each in order, each verified.
  void run_clusters() {
    report_.clusters.resize(plan_.clusters.size());
    parallel_for(plan_.clusters.size(), options_.workers, [&](std::size_t i) {
      auto& outcome = report_.clusters[i];
      ScopedTally tally(&outcome.waits);
      run_cluster(plan_.clusters[i], outcome);
    });
  }

  void run_cluster(const ClusterPlan& cp, ClusterOutcome& outcome) {
    outcome.name = cp.name;
    outcome.errors = cp.errors;
    const auto* dc = desired_.find(cp.name);
    if (dc && failed_etcds_.contains(dc->dcs_name) && !cp.changes.empty()) {
      outcome.errors.push_back("cluster " + cp.name + ": skipped, its DCS etcd " + dc->dcs_name + " failed to converge");
      return;
    }
    if (!host_failed(dc, outcome)) run_cluster_steps(cp, outcome);
    if (!dc || !secrets_.contains(cp.name)) return;
    verify(*dc, outcome);
  }

  // A cluster with a member on a host whose preparation failed is left alone: no member of it
  // starts half-prepared elsewhere.
  bool host_failed(const DesiredCluster* dc, ClusterOutcome& outcome) const {
    if (!dc) return false;
    for (const auto& m : dc->members)
      if (failed_hosts_.contains(m.host)) {
        outcome.errors.push_back("cluster " + dc->name + ": not applied: preparing host " + m.host + " failed");
        return true;
      }
    return false;
  }

  void run_cluster_steps(const ClusterPlan& cp, ClusterOutcome& outcome) {
    for (const auto& change : cp.changes) {
      if (stopping(options_.stop)) {
        outcome.errors.push_back(change.subject + ": " + k_stopping + " (not started)");
        break;
      }
      if (auto r = execute(change); !r) {
        outcome.errors.push_back(change.subject + ": " + r.error().describe());
        if (r.error().is_permanent()) outcome.permanent = r.error().with_context(change.subject);
        break;  // later steps depend on this one
      }
      ++outcome.applied;
    }
  }

  // Verification by observation: waits for convergence unless a step failed or the run stops.
  void verify(const DesiredCluster& dc, ClusterOutcome& outcome) {
    const auto& secrets = secrets_.at(dc.name);
    bool wait = outcome.errors.empty() && !stopping(options_.stop);
    WaitSpec spec{.stop = options_.stop,
                  .timeout = wait ? options_.wait_timeout : std::chrono::seconds(0),
                  .what = "convergence",
                  .with_postgres = true,
                  .apply = options_.deadline};
    auto verified = wait_converged(dc, secrets, world_, spec, options_.workers, &progress_,
                                   &outcome.observed.emplace(), &outcome.waits);
    outcome.differences = std::move(verified.differences);
    outcome.converged = outcome.differences.empty();
    if (verified.permanent && !outcome.converged) {
      outcome.errors.push_back("verify: " + verified.permanent->describe());
      if (!outcome.permanent) outcome.permanent = verified.permanent->with_context("verify");
    }
    if (verified.bound_reached && !outcome.converged) outcome.errors.push_back("verify: " + options_.deadline.reached());
    // Errors and differences quote what hosts and Patroni answered: shown, so redacted.
    for (auto* list : {&outcome.errors, &outcome.differences})
      for (auto& text : *list) text = redact_text(text, &secrets);
  }

  const Plan& plan_;
  const DesiredState& desired_;
  const std::map<std::string, ClusterSecrets>& secrets_;
  World& world_;
  Progress& progress_;
  const ApplyOptions& options_;
  StepRunner& runner_;
  ApplyReport report_;
  std::set<std::string> failed_hosts_;
  std::set<std::string> failed_etcds_;  // written before the clusters run in parallel, read only then
  PreparationScope scope_;
};

}  // namespace

bool ApplyReport::ok() const {
  if (!host_errors.empty()) return false;
  return std::all_of(clusters.begin(), clusters.end(),
                     [](const ClusterOutcome& c) { return c.converged && c.errors.empty(); });
}

std::size_t ApplyReport::applied() const {
  std::size_t n = host_changes_applied;
  for (const auto& c : clusters) n += c.applied;
  return n;
}

ApplyReport apply(const Plan& plan, const manifests::ManifestSet& manifests, const DesiredState& desired,
                  const std::map<std::string, ClusterSecrets>& secrets, World& world, Sessions& sessions,
                  Progress& progress, const ApplyOptions& options) {
  StepContext context{manifests, desired, secrets, world, sessions, progress, options};
  auto runner = options.runner ? options.runner(context) : make_host_step_runner(context);
  return Executor(plan, desired, secrets, world, progress, options, *runner).run();
}

}  // namespace pgc::reconciler

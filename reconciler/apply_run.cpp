#include "reconciler/apply_run.hpp"

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>

#include "reconciler/plan_output.hpp"
#include "util/run_lock.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string format_seconds(double s) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(s < 10 ? 2 : 1) << s << " s";
  return out.str();
}

RunRecord new_record(const ApplyRunOptions& options) {
  RunRecord r;
  r.command = options.command;
  r.trigger = options.trigger;
  r.revision = options.revision;
  r.started_at = now_rfc3339();
  return r;
}

// The plan without the suspended clusters, and without host changes only they need. With owned
// (ownership), also without the clusters of other instances; changes tied to no owned cluster's
// host only when owned holds "".
Plan unsuspended(const Plan& plan, const DesiredState& desired, const std::optional<std::set<std::string>>& owned) {
  auto mine = [&](const std::string& name) { return !owned || owned->contains(name); };
  Plan out;
  out.host_errors = plan.host_errors;
  std::set<std::string> active_hosts;
  for (const auto& c : desired.clusters)
    if (!c.suspended && mine(c.name))
      for (const auto& m : c.members) active_hosts.insert(m.host);
  for (const auto& change : plan.host_changes) {
    bool shared = change.host.empty() || !etcd_name(change.step).empty();
    if (shared ? mine("") : active_hosts.contains(change.host)) out.host_changes.push_back(change);
  }
  for (const auto& cp : plan.clusters)
    if (!cp.suspended && mine(cp.name)) out.clusters.push_back(cp);
  return out;
}

void append_history(const ApplyRunOptions& options, const RunRecord& record, std::ostream& err) {
  if (auto r = History(options.run.state_dir).append(record); !r)
    err << "warning: the run was not recorded: " << r.error().message << "\n";
}

bool stop_requested(const ApplyRunOptions& options) { return options.apply.stop && options.apply.stop->load(); }

constexpr const char* k_interrupted = "interrupted by a signal: stopped between steps";

}  // namespace

RunRecord record_failure(const ApplyRunOptions& options, const std::string& error) {
  RunRecord record = new_record(options);
  record.result = stop_requested(options) ? "interrupted" : "failure";
  record.errors.push_back(error);
  if (auto lock = RunLock::acquire(options.run.state_dir, options.command, options.lock_wait)) {
    std::ostringstream ignored;
    append_history(options, record, ignored);
  }
  return record;
}

ApplyRunResult apply_run(const ApplyRunOptions& options, World& world, Progress& progress, std::ostream& out,
                         std::ostream& err) {
  ApplyRunResult result;
  auto started = std::chrono::steady_clock::now();
  result.record = new_record(options);
  auto& record = result.record;

  auto lock = RunLock::acquire(options.run.state_dir, options.command + " (" + options.trigger + ")", options.lock_wait);
  if (!lock) {
    err << "error: " << lock.error().message << "\n";
    record.result = "failure";
    record.errors.push_back(lock.error().message);
    result.exit_code = 1;
    return result;
  }
  // The run starts once it holds the lock: runs recorded in the history never overlap.
  started = std::chrono::steady_clock::now();
  record.started_at = now_rfc3339();
  auto previous = History(options.run.state_dir).last();
  if (!previous) err << "warning: " << previous.error().message << "\n";
  const RunRecord* prev = previous && *previous ? &**previous : nullptr;

  auto finish = [&](int code) {
    record.duration_s = seconds_since(started);
    if (stop_requested(options)) {
      code = 1;
      record.result = "interrupted";
      record.errors.push_back(k_interrupted);
      err << "error: " << k_interrupted << "\n";
    }
    if (record.result.empty()) record.result = code == 0 ? "success" : "failure";
    append_history(options, record, err);
    result.exit_code = code;
    return result;
  };

  Sessions sessions(world);
  Prepared current;
  ApplyReport report;
  std::set<std::string> changed;  // clusters that had changes in some pass ("" for host changes)
  std::optional<std::set<std::string>> owned;  // ownership: the clusters of this instance
  std::map<std::string, WaitTally> waits;      // per cluster, over all passes
  for (int pass = 1;; ++pass) {
    std::ostringstream diagnostics;
    auto prepared = prepare(options.run, world, sessions, diagnostics);
    err << diagnostics.str();
    if (!prepared) {
      err << "error: " << prepared.error().message << "\n";
      record.errors.push_back(prepared.error().message);
      for (const auto& line : split(diagnostics.str(), '\n'))  // the errors among the diagnostics, with file:line
        if (!trim(line).empty() && line.find(": warning: ") == std::string::npos) record.errors.push_back(line);
      return finish(1);
    }
    current = std::move(*prepared);
    print_plan(current.plan, out);
    if (pass == 1) record.changes_planned = current.plan.change_count();
    if (options.owned) {
      auto mine = options.owned(current.desired);
      if (!mine) {
        err << "error: " << mine.error().message << "\n";
        record.errors.push_back(mine.error().message);
        return finish(1);
      }
      owned = std::move(*mine);
    }
    // Another instance's cluster: its secrets are that instance's (recovered from the hosts when
    // this one takes over); new ones generated here are not kept.
    if (owned) std::erase_if(current.new_secrets, [&](const std::string& name) { return !owned->contains(name); });
    if (auto saved = save_secrets(current, options.run.state_dir); !saved) {
      err << "error: " << saved.error().message << "\n";
      record.errors.push_back(saved.error().message);
      return finish(1);
    }
    if (stop_requested(options)) return finish(1);  // signalled while observing: apply nothing
    Plan to_apply = unsuspended(current.plan, current.desired, owned);
    std::set<std::string> acting;
    for (const auto& cp : to_apply.clusters) acting.insert(cp.name);
    if (options.acting) options.acting(acting, true);
    if (!to_apply.host_changes.empty()) changed.insert("");
    for (const auto& cp : to_apply.clusters)
      if (!cp.changes.empty()) changed.insert(cp.name);
    ApplyOptions apply_options = options.apply;
    apply_options.secrets_rotated = [&](const std::string& name) {
      return promote_rotation(current, name, options.run.state_dir);
    };
    report = apply(to_apply, current.loaded.manifests, current.desired, current.secrets, world, sessions, progress,
                   apply_options);
    if (options.acting) options.acting(acting, false);
    record.changes_applied += report.applied();
    for (const auto& outcome : report.clusters) waits[outcome.name] += outcome.waits;
    bool stop_requested = options.apply.stop && options.apply.stop->load();
    if (report.ok() || pass >= options.max_passes || stop_requested || !to_apply.has_changes())
      break;
    // Again only if something changed under this pass that a fresh look can act on.
    std::string why;
    for (const auto& outcome : report.clusters) {
      const ClusterPlan* cp = nullptr;
      for (const auto& p : to_apply.clusters)
        if (p.name == outcome.name) cp = &p;
      if (!cp || !cp->errors.empty() || (outcome.converged && outcome.errors.empty())) continue;
      why = "cluster " + outcome.name + ": " +
            (!outcome.errors.empty() ? outcome.errors.back()
                                     : outcome.differences.empty() ? "not converged" : outcome.differences.front());
      break;
    }
    if (why.empty() || !report.host_errors.empty()) break;
    out << "\npass " << pass << " did not converge (" << why << "); observing again, pass " << pass + 1 << " of "
        << options.max_passes << "\n\n";
  }
  const auto& plan = current.plan;
  out << "\n";
  for (const auto& e : report.host_errors) out << "error: " << e << "\n";
  bool ok = report.ok();
  for (const auto& dc : current.desired.clusters) {
    const ClusterPlan* cp = nullptr;
    for (const auto& p : plan.clusters)
      if (p.name == dc.name) cp = &p;
    const ClusterOutcome* outcome = nullptr;
    for (const auto& c : report.clusters)
      if (c.name == dc.name) outcome = &c;
    const auto& observed = current.observed.clusters.at(dc.name);
    if (owned && !owned->contains(dc.name)) {
      out << "cluster " << dc.name << ": owned by another instance, not applied here\n";
      continue;
    }
    if (dc.suspended) {
      std::size_t pending = cp ? cp->changes.size() : 0;
      out << "cluster " << dc.name << ": suspended (pgconverge.io/suspend), " << pending << " change(s) not applied\n";
      record.clusters.push_back(cluster_record(dc, observed, cp, nullptr, options.revision, prev));
      continue;
    }
    record.clusters.push_back(cluster_record(dc, outcome && outcome->observed ? *outcome->observed : observed, cp,
                                             outcome, options.revision, prev));
    if (!outcome) continue;
    for (const auto& e : outcome->errors) record.errors.push_back(dc.name + ": " + e);
    if (outcome->converged && outcome->errors.empty()) {
      out << "cluster " << dc.name << ": converged" << (changed.contains(dc.name) ? "" : " (no changes were needed)")
          << "\n";
      continue;
    }
    out << "cluster " << dc.name << ": NOT converged\n";
    for (const auto& e : outcome->errors) out << "  error: " << e << "\n";
    for (const auto& d : outcome->differences) out << "  still different: " << d << "\n";
  }
  if (changed.empty() && ok) {
    out << "Nothing to do: everything already matched the manifests.\n";
    record.result = "no-change";
  }
  // Clusters are applied in parallel: the longest wait is the part of the run's time spent
  // only waiting (exact for one cluster).
  WaitTally longest;
  for (const auto& [name, tally] : waits)
    if (tally.waited >= longest.waited) longest = tally;
  record.waited_s = std::chrono::duration<double>(longest.waited).count();
  if (!changed.empty()) {
    double took = seconds_since(started);
    out << "Took " << format_seconds(took) << ": " << format_seconds(std::max(0.0, took - record.waited_s))
        << " pgconverge's own work, " << format_seconds(record.waited_s) << " waiting for Patroni to act ("
        << longest.observations << (longest.observations == 1 ? " observation" : " observations") << ")\n";
  }
  return finish(ok ? 0 : 1);
}

}  // namespace pgc::reconciler

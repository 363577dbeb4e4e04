// The record pass (see record_pass.hpp).
#include "reconciler/passes/record_pass.hpp"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "util/run_lock.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

double elapsed_seconds(std::chrono::steady_clock::time_point start) {
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

constexpr const char* k_interrupted = "interrupted by a signal: stopped between steps";

}  // namespace

void append_history(const ApplyRunOptions& options, const RunRecord& record, std::ostream& err) {
  if (auto r = History(options.run.state_dir).append(record); !r)
    err << "warning: the run was not recorded: " << r.error().message << "\n";
}

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

ApplyRunResult fetch_failed(const ApplyRunOptions& options, const Error& error) {
  ApplyRunResult result{.exit_code = 1, .ran = false};
  if (!options.fetch.failed || options.fetch.failed(error)) result.record = record_failure(options, error.message);
  return result;
}

RunRecorder::RunRecorder(const ApplyRunOptions& options, std::ostream& err)
    : options_(options), err_(err), started_(std::chrono::steady_clock::now()) {
  result_.record = new_record(options);
}

ApplyRunResult RunRecorder::not_started(const std::string& error) {
  err_ << "error: " << error << "\n";
  result_.record.result = "failure";
  result_.record.errors.push_back(error);
  result_.exit_code = 1;
  return result_;
}

void RunRecorder::start() {
  // The run starts once it holds the lock: runs recorded in the history never overlap.
  started_ = std::chrono::steady_clock::now();
  result_.record.started_at = now_rfc3339();
  auto previous = History(options_.run.state_dir).last();
  if (!previous) err_ << "warning: " << previous.error().message << "\n";
  if (previous && *previous) previous_ = std::move(**previous);
}

ApplyRunResult RunRecorder::failed(const std::string& error, const std::string& diagnostics) {
  err_ << "error: " << error << "\n";
  result_.record.errors.push_back(error);
  for (const auto& line : split(diagnostics, '\n'))  // the errors among the diagnostics, with file:line
    if (!trim(line).empty() && line.find(": warning: ") == std::string::npos) result_.record.errors.push_back(line);
  return finish(1);
}

ApplyRunResult RunRecorder::finish(int code) {
  auto& record = result_.record;
  record.duration_s = elapsed_seconds(started_);
  if (stop_requested(options_)) {
    code = 1;
    record.result = "interrupted";
    record.errors.push_back(k_interrupted);
    err_ << "error: " << k_interrupted << "\n";
  }
  if (record.result.empty()) record.result = code == 0 ? "success" : "failure";
  append_history(options_, record, err_);
  result_.exit_code = code;
  return result_;
}

int RunRecorder::record_outcome(const ApplyPasses& passes, std::ostream& out) {
  const auto& report = passes.report;
  out << "\n";
  for (const auto& e : report.host_errors) out << "error: " << e << "\n";
  for (const auto& dc : passes.current.desired.clusters) record_cluster(dc, passes, out);
  bool ok = report.ok();
  if (passes.changed.empty() && ok) {
    out << "Nothing to do: everything already matched the manifests.\n";
    result_.record.result = "no-change";
  }
  record_time(passes, out);
  return ok ? 0 : 1;
}

void RunRecorder::record_cluster(const DesiredCluster& dc, const ApplyPasses& passes, std::ostream& out) {
  auto& record = result_.record;
  const RunRecord* prev = previous_ ? &*previous_ : nullptr;
  const ClusterPlan* cp = nullptr;
  for (const auto& p : passes.current.plan.clusters)
    if (p.name == dc.name) cp = &p;
  const ClusterOutcome* outcome = nullptr;
  for (const auto& c : passes.report.clusters)
    if (c.name == dc.name) outcome = &c;
  const auto& observed = passes.current.observed.clusters.at(dc.name);
  if (passes.owned && !passes.owned->contains(dc.name)) {
    out << "cluster " << dc.name << ": owned by another instance, not applied here\n";
    return;
  }
  if (dc.suspended) {
    std::size_t pending = cp ? cp->changes.size() : 0;
    out << "cluster " << dc.name << ": suspended (" << dc.suspended_by << "), " << pending << " change(s) not applied\n";
    record.clusters.push_back(cluster_record(dc, observed, cp, nullptr, options_.revision, prev));
    return;
  }
  record.clusters.push_back(cluster_record(dc, outcome && outcome->observed ? *outcome->observed : observed, cp,
                                           outcome, options_.revision, prev));
  if (!outcome) return;
  for (const auto& e : outcome->errors) record.errors.push_back(dc.name + ": " + e);
  if (outcome->converged && outcome->errors.empty()) {
    out << "cluster " << dc.name << ": converged"
        << (passes.changed.contains(dc.name) ? "" : " (no changes were needed)") << "\n";
    return;
  }
  out << "cluster " << dc.name << ": NOT converged\n";
  for (const auto& e : outcome->errors) out << "  error: " << e << "\n";
  for (const auto& d : outcome->differences) out << "  still different: " << d << "\n";
}

void RunRecorder::record_time(const ApplyPasses& passes, std::ostream& out) {
  auto& record = result_.record;
  // Clusters are applied in parallel: the longest wait is the part of the run's time spent
  // only waiting (exact for one cluster).
  WaitTally longest;
  for (const auto& [name, tally] : passes.waits)
    if (tally.waited >= longest.waited) longest = tally;
  record.waited_s = std::chrono::duration<double>(longest.waited).count();
  if (passes.changed.empty()) return;
  double took = elapsed_seconds(started_);
  out << "Took " << format_seconds(took) << ": " << format_seconds(std::max(0.0, took - record.waited_s))
      << " pgconverge's own work, " << format_seconds(record.waited_s) << " waiting for Patroni to act ("
      << longest.observations << (longest.observations == 1 ? " observation" : " observations") << ")\n";
}

}  // namespace pgc::reconciler

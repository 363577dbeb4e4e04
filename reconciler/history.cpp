#include "reconciler/history.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <sstream>
#include <stdexcept>

#include "reconciler/converged.hpp"
#include "util/atomic_file.hpp"
#include "util/move_aside.hpp"
#include "util/url_userinfo.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {

using nlohmann::json;

const Condition* ClusterRecord::condition(const std::string& type) const {
  for (const auto& c : conditions)
    if (c.type == type) return &c;
  return nullptr;
}

const ClusterRecord* RunRecord::cluster(const std::string& ns, const std::string& name) const {
  for (const auto& c : clusters)
    if (c.namespace_ == ns && c.name == name) return &c;
  return nullptr;
}

namespace {

json condition_json(const Condition& c) {
  return {{"type", c.type}, {"status", c.status}, {"reason", c.reason}, {"message", c.message}};
}


}  // namespace

json to_json(const Revision& r) {
  return {{"source", r.source},     {"ref", r.ref},     {"sha", r.sha},
          {"shortSha", r.short_sha}, {"subject", r.subject}, {"rewound", r.rewound},
          {"stale", r.stale},       {"fetchError", r.fetch_error}};
}

json to_json(const RunRecord& r) {
  json clusters = json::array();
  for (const auto& c : r.clusters) {
    json conditions = json::array();
    for (const auto& cond : c.conditions) conditions.push_back(condition_json(cond));
    clusters.push_back({{"namespace", c.namespace_},
                        {"name", c.name},
                        {"conditions", conditions},
                        {"lastAppliedRevision", c.last_applied_revision},
                        {"syncStandbys", {{"desired", c.sync_desired}, {"observed", c.sync_observed}}},
                        {"suspended", c.suspended}});
  }
  return {{"command", r.command},
          {"trigger", r.trigger},
          {"revision", to_json(r.revision)},
          {"startedAt", r.started_at},
          {"durationSeconds", r.duration_s},
          {"waitedSeconds", r.waited_s},
          {"changesPlanned", r.changes_planned},
          {"changesApplied", r.changes_applied},
          {"result", r.result},
          {"errors", r.errors},
          {"clusters", clusters}};
}

namespace {

// Reads a history record field by field: an absent field keeps its default (older files), a field
// of the wrong type throws with its path (a damaged file is never half-trusted).
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j_.is_object()) throw std::runtime_error(where_ + " is not an object");
  }
  [[nodiscard]] const json* find(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  void get(const char* key, std::string& out) const {
    if (const json* v = find(key)) out = v->is_string() ? v->get<std::string>() : bad<std::string>(key, "a string");
  }
  void get(const char* key, bool& out) const {
    if (const json* v = find(key)) out = v->is_boolean() ? v->get<bool>() : bad<bool>(key, "true or false");
  }
  void get(const char* key, double& out) const {
    if (const json* v = find(key)) out = v->is_number() ? v->get<double>() : bad<double>(key, "a number");
  }
  void get(const char* key, int& out) const {
    if (const json* v = find(key))
      out = v->is_number_integer() ? v->get<int>() : bad<int>(key, "an integer");
  }
  void get(const char* key, std::size_t& out) const {
    if (const json* v = find(key))
      out = v->is_number_unsigned() ? v->get<std::size_t>() : bad<std::size_t>(key, "a non-negative integer");
  }
  // The array at key (empty when absent); throws when it is something else.
  [[nodiscard]] const json& array(const char* key) const {
    static const json empty = json::array();
    const json* v = find(key);
    if (!v) return empty;
    if (!v->is_array()) bad<int>(key, "a list");
    return *v;
  }
  [[nodiscard]] std::string at(const char* key) const { return where_ + "." + key; }
  [[nodiscard]] std::string at(const char* key, std::size_t i) const { return at(key) + "[" + std::to_string(i) + "]"; }

 private:
  template <typename T>
  [[noreturn]] T bad(const char* key, const char* want) const {
    throw std::runtime_error(at(key) + " must be " + want);
  }
  const json& j_;
  std::string where_;
};

Revision revision_from_json(const json& j, const std::string& where) {
  Reader in(j, where);
  Revision r;
  in.get("source", r.source);
  in.get("ref", r.ref);
  in.get("sha", r.sha);
  in.get("shortSha", r.short_sha);
  in.get("subject", r.subject);
  in.get("rewound", r.rewound);
  in.get("stale", r.stale);
  in.get("fetchError", r.fetch_error);
  // Records of earlier versions may hold a URL with its credentials: never shown again.
  r.source = redact_urls_in(r.source);
  r.fetch_error = redact_urls_in(r.fetch_error);
  return r;
}

ClusterRecord cluster_from_json(const json& j, const std::string& where) {
  Reader in(j, where);
  ClusterRecord c;
  in.get("namespace", c.namespace_);
  in.get("name", c.name);
  in.get("lastAppliedRevision", c.last_applied_revision);
  in.get("suspended", c.suspended);
  if (const json* sync = in.find("syncStandbys")) {
    Reader s(*sync, in.at("syncStandbys"));
    s.get("desired", c.sync_desired);
    s.get("observed", c.sync_observed);
  }
  const json& conditions = in.array("conditions");
  for (std::size_t i = 0; i < conditions.size(); ++i) {
    Reader cond(conditions[i], in.at("conditions", i));
    Condition out;
    cond.get("type", out.type);
    cond.get("status", out.status);
    cond.get("reason", out.reason);
    cond.get("message", out.message);
    c.conditions.push_back(std::move(out));
  }
  return c;
}

RunRecord run_from_json(const json& j, const std::string& where) {
  Reader in(j, where);
  RunRecord r;
  in.get("command", r.command);
  in.get("trigger", r.trigger);
  if (const json* v = in.find("revision")) r.revision = revision_from_json(*v, in.at("revision"));
  in.get("startedAt", r.started_at);
  in.get("durationSeconds", r.duration_s);
  in.get("waitedSeconds", r.waited_s);
  in.get("changesPlanned", r.changes_planned);
  in.get("changesApplied", r.changes_applied);
  in.get("result", r.result);
  const json& errors = in.array("errors");
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (!errors[i].is_string()) throw std::runtime_error(in.at("errors", i) + " must be a string");
    r.errors.push_back(redact_urls_in(errors[i].get<std::string>()));
  }
  const json& clusters = in.array("clusters");
  for (std::size_t i = 0; i < clusters.size(); ++i) r.clusters.push_back(cluster_from_json(clusters[i], in.at("clusters", i)));
  return r;
}

}  // namespace

Result<RunRecord> run_record_from_json(const json& j) {
  try {
    return run_from_json(j, "run");
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

std::vector<Condition> cluster_conditions(const DesiredCluster& desired, const ObservedCluster& observed,
                                          const ClusterPlan* plan, const ClusterOutcome* outcome) {
  std::vector<std::string> errors;
  if (outcome) errors = outcome->errors;
  else if (plan) errors = plan->errors;
  std::vector<std::string> diffs = outcome ? outcome->differences : differences(desired, observed);
  std::size_t pending = plan ? plan->changes.size() : 0;

  std::vector<Condition> out;
  // Ready: the cluster is as declared, verified by observation.
  Condition ready{"Ready", "False", "", ""};
  if (desired.suspended && (pending > 0 || !diffs.empty())) {
    ready = {"Ready", "Unknown", "Suspended",
             "apply is suspended by annotation " + desired.suspended_by + "; " + std::to_string(pending) +
                 " change(s) pending"};
  } else if (!errors.empty()) {
    ready.reason = "StepFailed";
    ready.message = errors.front();
  } else if (outcome ? outcome->converged : (pending == 0 && diffs.empty())) {
    ready = {"Ready", "True", "Converged",
             std::to_string(expected_sync_standbys(desired)) + " sync standby(s), " +
                 std::to_string(desired.members.size()) + " member(s) as declared"};
  } else if (!outcome && pending > 0) {
    ready.reason = "ChangesPending";
    ready.message = std::to_string(pending) + " change(s) pending" + (diffs.empty() ? "" : ": " + diffs.front());
  } else {
    ready.reason = "NotConverged";
    ready.message = diffs.empty() ? "not yet verified" : diffs.front();
  }
  out.push_back(ready);

  // Reconciling: applied, no step failed, but not converged within the wait.
  bool reconciling = outcome && errors.empty() && !outcome->converged;
  out.push_back({"Reconciling", reconciling ? "True" : "False", reconciling ? "Progressing" : "Idle",
                 reconciling && !diffs.empty() ? diffs.front() : ""});

  // Stalled: a step failed or a host could not be reached; a new run is needed.
  out.push_back({"Stalled", errors.empty() ? "False" : "True", errors.empty() ? "" : "StepFailed",
                 errors.empty() ? "" : errors.front()});

  std::vector<std::string> pending_restart, down;
  for (const auto& m : observed.members) {
    if (m.pending_restart) pending_restart.push_back(m.name);
    if (m.state != "running" && m.state != "streaming") down.push_back(m.name + " " + (m.state.empty() ? "unknown" : m.state));
  }
  out.push_back({"PendingRestart", pending_restart.empty() ? "False" : "True",
                 pending_restart.empty() ? "" : "RestartPending",
                 pending_restart.empty() ? "" : join(pending_restart, ", ") + " must restart to apply settings"});

  // Degraded: running below what was declared (a member down, fewer sync standbys).
  int want = expected_sync_standbys(desired);
  int have = static_cast<int>(observed.sync_standbys().size());
  std::vector<std::string> degraded = down;
  if (!observed.api_reachable) degraded.push_back("Patroni REST API not reachable");
  else if (have < want) degraded.push_back(std::to_string(have) + " of " + std::to_string(want) + " sync standby(s)");
  out.push_back({"Degraded", degraded.empty() ? "False" : "True", degraded.empty() ? "" : "BelowDeclared",
                 join(degraded, "; ")});
  if (desired.suspended) out.push_back({"Suspended", "True", "Annotation", desired.suspended_by + ": \"true\""});
  return out;
}

ClusterRecord cluster_record(const DesiredCluster& desired, const ObservedCluster& observed, const ClusterPlan* plan,
                             const ClusterOutcome* outcome, const Revision& revision, const RunRecord* previous) {
  ClusterRecord r;
  r.namespace_ = desired.namespace_;
  r.name = desired.name;
  r.conditions = cluster_conditions(desired, observed, plan, outcome);
  r.suspended = desired.suspended;
  r.sync_desired = expected_sync_standbys(desired);
  r.sync_observed = static_cast<int>(observed.sync_standbys().size());
  const auto* ready = r.condition("Ready");
  if (ready && ready->status == "True" && outcome) r.last_applied_revision = revision.sha.empty() ? revision.source : revision.sha;
  else if (previous)
    if (const auto* p = previous->cluster(desired.namespace_, desired.name)) r.last_applied_revision = p->last_applied_revision;
  return r;
}

History::History(std::filesystem::path state_dir, std::size_t keep)
    : path_(std::move(state_dir) / "history.json"), keep_(keep) {}

Result<std::vector<RunRecord>> History::load() const {
  std::vector<RunRecord> out;
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(path_, ec))) return out;
  auto text = read_whole_file(path_);
  if (!text) return std::unexpected(text.error().with_context("history"));
  auto why = parse(*text, out);
  if (why.empty()) return out;
  // Damaged: never trusted, never silently reset — moved aside for a person to look at.
  auto aside = move_aside(path_);
  if (!aside) return fail("history: " + path_.string() + " is damaged (" + why + ") and " + aside.error().message);
  return fail("history: " + path_.string() + " was damaged (" + why + "); moved aside to " + aside->string() +
              ", a new history starts");
}

// Fills out from the text of a history file; the reason it is not one, or "".
std::string History::parse(const std::string& text, std::vector<RunRecord>& out) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return "not JSON";
  if (!j.is_object() || !j.contains("runs") || !j["runs"].is_array()) return "not a pgconverge history file";
  const auto& runs = j["runs"];
  for (std::size_t i = 0; i < runs.size(); ++i) {
    try {
      out.push_back(run_from_json(runs[i], "runs[" + std::to_string(i) + "]"));
    } catch (const std::exception& e) {
      out.clear();
      return e.what();
    }
  }
  return "";
}

Result<std::optional<RunRecord>> History::last() const {
  auto all = load();
  PGC_TRY(all);
  if (all->empty()) return std::optional<RunRecord>();
  return std::optional<RunRecord>(all->back());
}

Result<void> History::append(const RunRecord& record) const {
  auto all = load();
  // Damaged: load() moved it aside (and said so to whoever loaded it first); without that
  // rename the damaged file stays and nothing is written over it.
  if (!all) {
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::symlink_status(path_, ec))) return std::unexpected(all.error());
    all = std::vector<RunRecord>();
  }
  all->push_back(record);
  if (all->size() > keep_) all->erase(all->begin(), all->begin() + static_cast<long>(all->size() - keep_));
  json runs = json::array();
  for (const auto& r : *all) runs.push_back(to_json(r));
  json doc = {{"kind", "pgconverge-history"}, {"version", 1}, {"runs", runs}};
  return write_file_atomically(path_, doc.dump(1) + "\n",
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

std::string now_rfc3339() {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", std::gmtime(&secs));
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
  return out;
}

void print_history(const std::vector<RunRecord>& records, std::ostream& out) {
  if (records.empty()) {
    out << "No runs recorded yet.\n";
    return;
  }
  out << std::left << std::setw(26) << "STARTED" << std::setw(10) << "RESULT" << std::setw(9) << "CHANGES"
      << std::setw(9) << "SECONDS" << std::setw(14) << "TRIGGER" << "REVISION\n";
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    std::ostringstream secs;
    secs << std::fixed << std::setprecision(1) << it->duration_s;
    out << std::left << std::setw(26) << it->started_at << std::setw(10) << it->result << std::setw(9)
        << (std::to_string(it->changes_applied) + "/" + std::to_string(it->changes_planned)) << std::setw(9)
        << secs.str() << std::setw(14) << (it->trigger.empty() ? it->command : it->trigger) << it->revision.describe()
        << "\n";
    for (const auto& c : it->clusters) {
      const auto* ready = c.condition("Ready");
      out << "    " << c.namespace_ << "/" << c.name << ": Ready=" << (ready ? ready->status : "Unknown");
      if (ready && !ready->reason.empty()) out << " (" << ready->reason << ")";
      for (const auto& cond : c.conditions)
        if (cond.type != "Ready" && cond.status == "True") out << ", " << cond.type;
      if (!c.last_applied_revision.empty())
        out << ", lastAppliedRevision " << c.last_applied_revision.substr(0, 12);
      out << "\n";
    }
    for (const auto& e : it->errors) out << "    error: " << e << "\n";
  }
}

}  // namespace pgc::reconciler

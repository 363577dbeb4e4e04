#include "reconciler/plan_output.hpp"

#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

void print_change(const Change& c, std::ostream& out) {
  out << "  " << action_symbol(c.action) << " " << c.subject << "\n";
  if (!c.fields.empty()) {
    for (const auto& f : c.fields) out << "      " << f.key << ": " << f.before << " → " << f.after << "\n";
  } else if (!c.before.empty() || !c.after.empty()) {
    out << "      " << (c.before.empty() ? "(none)" : c.before) << " → " << (c.after.empty() ? "(none)" : c.after)
        << "\n";
  }
  out << "      reason: " << c.reason << "\n";
}

void print_impact(const Impact& impact, std::ostream& out) {
  out << "  impact:\n";
  out << "      sync standbys: desired " << impact.desired_sync << ", effective " << impact.effective_sync_declared
      << " once every member streams, " << impact.effective_sync_now << " with the live topology ("
      << impact.streaming.size() << " replica(s) streaming now)\n";
  out << "      strict: " << (impact.strict ? "on" : "off") << "\n";
  for (const auto& s : impact.statements) out << "      " << s << "\n";
  for (const auto& w : impact.warnings) out << "      warning: " << w << "\n";
}

}  // namespace

void print_plan(const Plan& plan, std::ostream& out) {
  for (const auto& e : plan.host_errors) out << "error: " << e << "\n";
  if (!plan.host_changes.empty()) {
    out << "hosts\n";
    for (const auto& c : plan.host_changes) print_change(c, out);
    out << "\n";
  }
  std::size_t create = 0, update = 0, remove = 0, restart = 0;
  auto count = [&](const Change& c) {
    switch (c.action) {
      case Action::create: ++create; break;
      case Action::update: ++update; break;
      case Action::remove: ++remove; break;
      case Action::restart: ++restart; break;
    }
  };
  for (const auto& c : plan.host_changes) count(c);
  for (const auto& cp : plan.clusters) {
    out << "cluster " << cp.namespace_ << "/" << cp.name << (cp.bootstrap ? "  (new: bootstrap)" : "")
        << (cp.suspended ? "  (suspended: apply leaves it alone)" : "") << "\n";
    for (const auto& e : cp.errors) out << "  error: " << e << "\n";
    for (const auto& w : cp.warnings) out << "  warning: " << w << "\n";
    if (cp.changes.empty() && cp.errors.empty()) out << "  no changes\n";
    for (const auto& c : cp.changes) {
      print_change(c, out);
      count(c);
    }
    if (cp.impact) print_impact(*cp.impact, out);
    out << "\n";
  }
  if (!plan.has_changes() && plan.has_errors()) {
    out << "No changes can be planned, but errors above stop part of the plan: it is not known to match.\n";
  } else if (!plan.has_changes()) {
    out << "No changes: every host and cluster matches the manifests.\n";
  } else {
    out << "Plan: " << create << " to create, " << update << " to change, " << remove << " to remove, " << restart
        << " to restart.\n";
  }
}

nlohmann::json impact_to_json(const Impact& impact) {
  return {{"mode", impact.mode},
          {"strict", impact.strict},
          {"desiredSyncStandbys", impact.desired_sync},
          {"effectiveSyncStandbys", impact.effective_sync_declared},
          {"liveSyncStandbys", impact.effective_sync_now},
          {"streaming", impact.streaming},
          {"leaderCandidates", impact.leader_candidates},
          {"syncCandidates", impact.sync_candidates},
          {"statements", impact.statements},
          {"warnings", impact.warnings}};
}

nlohmann::json plan_to_json(const Plan& plan) {
  auto change_json = [](const Change& c) {
    nlohmann::json fields = nlohmann::json::array();
    for (const auto& f : c.fields) fields.push_back({{"key", f.key}, {"before", f.before}, {"after", f.after}});
    nlohmann::json j = {{"subject", c.subject}, {"action", to_string(c.action)}, {"before", c.before},
                        {"after", c.after},     {"reason", c.reason},            {"step", to_string(c.step)},
                        {"fields", fields}};
    if (!c.cluster.empty()) j["cluster"] = c.cluster;
    if (!c.member.empty()) j["member"] = c.member;
    if (!c.host.empty()) j["host"] = c.host;
    return j;
  };
  nlohmann::json out = {{"hostErrors", plan.host_errors}, {"hostChanges", nlohmann::json::array()},
                        {"clusters", nlohmann::json::array()}};
  for (const auto& c : plan.host_changes) out["hostChanges"].push_back(change_json(c));
  for (const auto& cp : plan.clusters) {
    nlohmann::json j = {{"name", cp.name}, {"namespace", cp.namespace_}, {"bootstrap", cp.bootstrap}, {"suspended", cp.suspended},
                        {"errors", cp.errors}, {"warnings", cp.warnings}, {"changes", nlohmann::json::array()}};
    for (const auto& c : cp.changes) j["changes"].push_back(change_json(c));
    if (cp.impact) j["impact"] = impact_to_json(*cp.impact);
    out["clusters"].push_back(j);
  }
  out["changeCount"] = plan.change_count();
  return out;
}

}  // namespace pgc::reconciler

#include "reconciler/status.hpp"

#include <algorithm>
#include <sstream>

#include "reconciler/converged.hpp"
#include "reconciler/yaml_json.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

std::string pad(const std::string& s, std::size_t width, bool right) {
  // Width in characters; every cell here is ASCII.
  if (s.size() >= width) return s;
  return right ? std::string(width - s.size(), ' ') + s : s + std::string(width - s.size(), ' ');
}

std::string lag_mb(const ObservedMember& m) {
  if (m.role == "leader" || !m.lag_bytes) return "";
  return std::to_string(*m.lag_bytes / (1024 * 1024));
}

}  // namespace

std::string role_title(const std::string& role) {
  if (role == "leader" || role == "master" || role == "primary") return "Leader";
  if (role == "sync_standby") return "Sync Standby";
  if (role == "standby_leader") return "Standby Leader";
  if (role == "replica") return "Replica";
  return role;
}

std::string patronictl_table(const ObservedCluster& observed) {
  std::vector<std::string> headers{"Member", "Host", "Role", "State", "TL", "Lag in MB"};
  std::vector<bool> right{false, false, false, false, true, true};
  std::vector<std::vector<std::string>> rows;
  auto members = observed.members;
  std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& m : members) {
    std::string host = m.host + (m.port ? ":" + std::to_string(m.port) : "");
    rows.push_back({m.name, host, role_title(m.role), m.state, m.timeline ? std::to_string(*m.timeline) : "",
                    lag_mb(m)});
  }
  std::vector<std::size_t> width(headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i) {
    width[i] = headers[i].size();
    for (const auto& r : rows) width[i] = std::max(width[i], r[i].size());
  }
  std::string border = "+";
  for (auto w : width) border += std::string(w + 2, '-') + "+";
  std::string title = "+ Cluster: " + observed.name +
                      (observed.system_identifier.empty() ? "" : " (" + observed.system_identifier + ")") + " ";
  std::string top = title.size() < border.size() ? title + border.substr(title.size()) : title + "-+";
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string s = "|";
    for (std::size_t i = 0; i < cells.size(); ++i) s += " " + pad(cells[i], width[i], right[i] && !header) + " |";
    return s;
  };
  std::ostringstream out;
  out << top << "\n" << line(headers, true) << "\n" << border << "\n";
  for (const auto& r : rows) out << line(r, false) << "\n";
  out << border << "\n";
  return out.str();
}

void print_status(const DesiredCluster& desired, const ObservedCluster& observed, const ClusterPlan* plan,
                  std::ostream& out) {
  if (!observed.api_reachable) {
    out << "+ Cluster: " << desired.name << " — not running (" << observed.error << ")\n";
  } else {
    out << patronictl_table(observed);
  }
  bool strict_declared = desired.dynamic_config.value("synchronous_mode_strict", false);
  bool strict_observed = json_bool(observed.dcs_config, "synchronous_mode_strict", false);
  bool sync_observed = json_bool(observed.dcs_config, "synchronous_mode", false);
  int desired_count = desired.dynamic_config.value("synchronous_mode", false)
                          ? desired.dynamic_config.value("synchronous_node_count", 1)
                          : 0;
  int effective = expected_sync_standbys(desired);
  auto actual = observed.sync_standbys();
  out << "Replication: declared " << manifests::to_string(desired.mode) << " (sync standbys " << desired_count
      << ", strict " << (strict_declared ? "on" : "off") << "); observed "
      << (sync_observed ? "synchronous" : "asynchronous") << " (strict " << (strict_observed ? "on" : "off") << ")\n";
  out << "Sync standbys: desired " << desired_count << " / effective " << effective << " / actual " << actual.size()
      << (actual.empty() ? "" : " (" + join(actual, ", ") + ")") << "\n";
  std::vector<std::string> pending;
  for (const auto& m : observed.members)
    if (m.pending_restart) pending.push_back(m.name);
  out << "Pending restart: " << (pending.empty() ? "none" : join(pending, ", ")) << "\n";
  auto diffs = observed.api_reachable ? differences(desired, observed) : std::vector<std::string>{};
  std::size_t planned = plan ? plan->changes.size() : 0;
  if (diffs.empty() && planned == 0) {
    out << "Drift: none (converged)\n";
  } else {
    out << "Drift:\n";
    for (const auto& d : diffs) out << "  - " << d << "\n";
    if (plan)
      for (const auto& c : plan->changes) out << "  " << action_symbol(c.action) << " " << c.subject << " (" << c.reason << ")\n";
    if (plan)
      for (const auto& e : plan->errors) out << "  error: " << e << "\n";
  }
}

nlohmann::json status_to_json(const DesiredCluster& desired, const ObservedCluster& observed, const ClusterPlan* plan) {
  nlohmann::json members = nlohmann::json::array();
  for (const auto& m : observed.members) {
    members.push_back({{"name", m.name},
                       {"host", m.host},
                       {"port", m.port},
                       {"role", role_title(m.role)},
                       {"state", m.state},
                       {"timeline", m.timeline ? nlohmann::json(*m.timeline) : nlohmann::json()},
                       {"lagBytes", m.lag_bytes ? nlohmann::json(*m.lag_bytes) : nlohmann::json()},
                       {"tags", m.tags},
                       {"pendingRestart", m.pending_restart}});
  }
  auto diffs = observed.api_reachable ? differences(desired, observed) : std::vector<std::string>{};
  nlohmann::json j = {{"name", desired.name},
                      {"namespace", desired.namespace_},
                      {"systemIdentifier", observed.system_identifier},
                      {"running", observed.api_reachable},
                      {"members", members},
                      {"declared",
                       {{"mode", manifests::to_string(desired.mode)},
                        {"synchronousMode", desired.dynamic_config.value("synchronous_mode", false)},
                        {"strict", desired.dynamic_config.value("synchronous_mode_strict", false)},
                        {"syncStandbys", desired.dynamic_config.value("synchronous_node_count", 0)},
                        {"effectiveSyncStandbys", expected_sync_standbys(desired)}}},
                      {"observed",
                       {{"synchronousMode", json_bool(observed.dcs_config, "synchronous_mode", false)},
                        {"strict", json_bool(observed.dcs_config, "synchronous_mode_strict", false)},
                        {"syncStandbys", observed.sync_standbys()}}},
                      {"differences", diffs}};
  if (!observed.api_reachable) j["error"] = observed.error;
  j["pendingChanges"] = plan ? plan->changes.size() : 0;
  return j;
}

}  // namespace pgc::reconciler

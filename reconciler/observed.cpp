#include "reconciler/observed.hpp"

#include <algorithm>
#include <cctype>

#include "util/strings.hpp"

namespace pgc::reconciler {

const ObservedMember* ObservedCluster::leader() const {
  for (const auto& m : members)
    if (m.role == "leader" || m.role == "master" || m.role == "standby_leader") return &m;
  return nullptr;
}

const ObservedMember* ObservedCluster::member(const std::string& member_name) const {
  for (const auto& m : members)
    if (m.name == member_name) return &m;
  return nullptr;
}

std::vector<std::string> ObservedCluster::sync_standbys() const {
  std::vector<std::string> out;
  for (const auto& m : members)
    if (m.role == "sync_standby") out.push_back(m.name);
  return out;
}

std::vector<std::string> standby_names(const std::string& value) {
  std::string list = trim(value);
  // `[FIRST|ANY] N (a, b)`: the names are inside the parentheses.
  if (auto open = list.find('('); open != std::string::npos && !list.empty() && list.back() == ')')
    list = list.substr(open + 1, list.size() - open - 2);
  std::vector<std::string> out;
  for (const auto& item : split(list, ',')) {
    std::string name = trim(item);
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
      // A quoted identifier: "" stands for one ".
      std::string unquoted;
      for (std::size_t i = 1; i + 1 < name.size(); ++i) {
        unquoted += name[i];
        if (name[i] == '"' && name[i + 1] == '"') ++i;
      }
      name = unquoted;
    } else {
      name = lower(name);
    }
    if (!name.empty()) out.push_back(name);
  }
  return out;
}

std::vector<std::string> ObservedCluster::stale_standby_names() const {
  const auto* lead = leader();
  if (!lead || !sync_standbys().empty()) return {};
  if (!dcs_config.value("synchronous_mode", false) || dcs_config.value("synchronous_mode_strict", false)) return {};
  auto pg = postgres.find(lead->name);
  if (pg == postgres.end() || !pg->second.reachable) return {};
  auto names = standby_names(pg->second.synchronous_standby_names);
  if (names.empty() || std::find(names.begin(), names.end(), "*") != names.end()) return {};
  for (const auto& standby : names)
    if (std::any_of(pg->second.sync_states.begin(), pg->second.sync_states.end(),
                    [&](const auto& row) { return row.first == standby; }))
      return {};
  return names;
}

std::vector<std::string> ObservedCluster::streaming_replicas() const {
  std::vector<std::string> out;
  for (const auto& m : members) {
    bool replica = m.role == "replica" || m.role == "sync_standby";
    if (replica && (m.state == "running" || m.state == "streaming")) out.push_back(m.name);
  }
  return out;
}

}  // namespace pgc::reconciler

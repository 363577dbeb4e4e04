#include "reconciler/write_availability.hpp"

#include <algorithm>

namespace pgc::reconciler {
namespace {

bool named(std::initializer_list<std::string> names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool listed(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

WriteAvailability::WriteAvailability(const DesiredCluster& desired, const ObservedCluster& cluster,
                                     const ObservedState& observed)
    : desired_(desired),
      cluster_(cluster),
      observed_(observed),
      strict_(desired.dynamic_config.value("synchronous_mode_strict", false)) {}

bool WriteAvailability::host_answered(const std::string& host) const {
  auto h = observed_.hosts.find(host);
  return h != observed_.hosts.end() && h->second.reachable;
}

std::vector<std::string> WriteAvailability::streaming_except(std::initializer_list<std::string> names) const {
  std::vector<std::string> out;
  for (const auto& name : cluster_.streaming_replicas()) {
    const auto* m = desired_.find_member(name);
    if (!m || named(names, name)) continue;
    if (host_answered(m->host)) out.push_back(name);
  }
  return out;
}

std::vector<std::string> WriteAvailability::available_except(std::initializer_list<std::string> names) const {
  std::vector<std::string> out = streaming_except(names);
  const auto* leader = cluster_.leader();
  for (const auto& m : desired_.members) {
    if ((leader && leader->name == m.name) || named(names, m.name) || listed(out, m.name)) continue;
    auto h = observed_.hosts.find(m.host);
    if (h == observed_.hosts.end() || !h->second.reachable) continue;
    auto svc = h->second.services.find(m.service);
    if (svc != h->second.services.end() && svc->second == "active") out.push_back(m.name);
  }
  return out;
}

steps::AwaitStreamingExcept WriteAvailability::guard(std::initializer_list<std::string> names) const {
  if (strict_ && streaming_except(names).empty()) return std::vector<std::string>(names);
  return std::nullopt;
}

std::string WriteAvailability::switchover_candidate(const std::string& leader) const {
  auto streaming = streaming_except({});  // declared, streaming, host answered this run
  auto eligible = [&](const std::string& name) {
    const auto* m = desired_.find_member(name);
    return m && !m->tags.nofailover && name != leader && listed(streaming, name);
  };
  for (const auto& name : cluster_.sync_standbys())
    if (eligible(name)) return name;
  for (const auto& name : streaming)
    if (eligible(name)) return name;
  return "";
}

std::string WriteAvailability::strict_gap(const std::string& member) const {
  return "while " + member + " is down, strict cluster " + desired_.name +
         " has no other streaming replica to be its sync standby and every write blocks";
}

}  // namespace pgc::reconciler

#include "reconciler/converged.hpp"

#include <algorithm>

#include "reconciler/plan.hpp"
#include "util/json_pointer.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {

int expected_sync_standbys(const DesiredCluster& desired) {
  if (!desired.dynamic_config.value("synchronous_mode", false)) return 0;
  int count = desired.dynamic_config.value("synchronous_node_count", 1);
  int replicas = std::max(0, static_cast<int>(desired.members.size()) - 1);
  return std::min(count, replicas);
}

std::vector<std::string> differences(const DesiredCluster& desired, const ObservedCluster& observed) {
  std::vector<std::string> out;
  if (!observed.api_reachable) {
    out.push_back("Patroni REST API not reachable" + (observed.error.empty() ? "" : ": " + observed.error));
    return out;
  }
  const auto* leader = observed.leader();
  if (!leader) out.push_back("no leader");
  for (const auto& m : desired.members) {
    const auto* om = observed.member(m.name);
    if (!om) {
      out.push_back(m.name + " is not a member");
      continue;
    }
    if (om->state != "running" && om->state != "streaming")
      out.push_back(m.name + " is " + (om->state.empty() ? "in an unknown state" : om->state));
    auto tag = [&](const char* name) {
      return om->tags.contains(name) && om->tags[name].is_boolean() && om->tags[name].get<bool>();
    };
    if (tag("nofailover") != m.tags.nofailover)
      out.push_back(m.name + " has nofailover " + (tag("nofailover") ? "true" : "false") + ", declared " +
                    (m.tags.nofailover ? "true" : "false"));
    if (tag("noloadbalance") != m.tags.noloadbalance)
      out.push_back(m.name + " has noloadbalance " + (tag("noloadbalance") ? "true" : "false") + ", declared " +
                    (m.tags.noloadbalance ? "true" : "false"));
    if (om->pending_restart) out.push_back(m.name + " has a pending restart");
  }
  for (const auto& om : observed.members)
    if (std::none_of(desired.members.begin(), desired.members.end(), [&](const auto& m) { return m.name == om.name; }))
      out.push_back(om.name + " is a member but not declared");
  for (const auto& [pointer, value] : owned_dcs_keys(desired)) {
    nlohmann::json::json_pointer ptr(pointer);
    nlohmann::json current = observed.dcs_config.contains(ptr) ? observed.dcs_config.at(ptr) : nlohmann::json();
    if (!same_setting(current, value))
      out.push_back("DCS " + pointer_dotted(pointer) + " is " + (current.is_null() ? "unset" : current.dump()) +
                    ", declared " + value.dump());
  }
  int expected = expected_sync_standbys(desired);
  auto syncs = observed.sync_standbys();
  if (static_cast<int>(syncs.size()) != expected)
    out.push_back(std::to_string(syncs.size()) + " sync standby(s) in Patroni (" + join(syncs, ", ") + "), expected " +
                  std::to_string(expected));
  if (leader) {
    auto pg = observed.postgres.find(leader->name);
    if (pg != observed.postgres.end() && !pg->second.reachable)
      out.push_back("the leader's PostgreSQL is not reachable over libpq (" + pg->second.error + ")" +
                    (pg->second.error.find("pg_hba") != std::string::npos
                         ? "; pgconverge connects through the host's SSH, from the host's own address, "
                           "which the pg_hba pgconverge writes admits: was pg_hba changed on the host?"
                         : ""));
    if (pg != observed.postgres.end() && pg->second.reachable) {
      int sync_rows = static_cast<int>(std::count_if(pg->second.sync_states.begin(), pg->second.sync_states.end(),
                                                     [](const auto& r) { return r.second == "sync"; }));
      if (sync_rows != expected)
        out.push_back(std::to_string(sync_rows) + " sync replica(s) in pg_stat_replication, expected " +
                      std::to_string(expected));
      bool names_empty = trim(pg->second.synchronous_standby_names).empty();
      if (expected == 0 && !names_empty && !desired.dynamic_config.value("synchronous_mode", false))
        out.push_back("synchronous_standby_names is '" + pg->second.synchronous_standby_names + "', expected empty");
    }
  }
  return out;
}

}  // namespace pgc::reconciler

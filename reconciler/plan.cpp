#include "reconciler/plan.hpp"

#include <algorithm>
#include <set>

#include "reconciler/cluster_plan.hpp"
#include "reconciler/etcd.hpp"
#include "reconciler/host_prep.hpp"
#include "reconciler/redact.hpp"
#include "reconciler/yaml_json.hpp"
#include "util/booleans.hpp"
#include "util/json_pointer.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

using json = nlohmann::json;

void flatten(const json& value, const std::string& pointer, std::map<std::string, json>& out) {
  if (value.is_object() && !value.empty()) {
    // Each key is one escaped token (RFC 6901): a key holding '/' or '~' stays one key.
    for (auto it = value.begin(); it != value.end(); ++it) flatten(it.value(), pointer_append(pointer, it.key()), out);
    return;
  }
  out[pointer] = value;
}

// "a", "a and b", "a, b and c"
std::string and_list(const std::vector<std::string>& names) {
  if (names.size() <= 1) return names.empty() ? "" : names.front();
  std::vector<std::string> head(names.begin(), names.end() - 1);
  return join(head, ", ") + " and " + names.back();
}

// The member expected to lead after apply: the live leader if it stays, else the first slot that
// may become leader.
std::string expected_leader(const DesiredCluster& desired, const ObservedCluster& observed) {
  if (const auto* leader = observed.leader())
    if (desired.find_member(leader->name)) return leader->name;
  for (const auto& m : desired.members)
    if (!m.tags.nofailover) return m.name;
  return desired.members.empty() ? "" : desired.members.front().name;
}

}  // namespace


std::string to_string(Action action) {
  switch (action) {
    case Action::create: return "create";
    case Action::update: return "update";
    case Action::remove: return "remove";
    case Action::restart: return "restart";
  }
  return "?";
}

std::string action_symbol(Action action) {
  switch (action) {
    case Action::create: return "+";
    case Action::update: return "~";
    case Action::remove: return "-";
    case Action::restart: return "!";
  }
  return "?";
}

bool Plan::has_changes() const {
  if (!host_changes.empty()) return true;
  return std::any_of(clusters.begin(), clusters.end(), [](const ClusterPlan& c) { return !c.changes.empty(); });
}

bool Plan::has_errors() const {
  if (!host_errors.empty()) return true;
  return std::any_of(clusters.begin(), clusters.end(), [](const ClusterPlan& c) { return !c.errors.empty(); });
}

std::size_t Plan::change_count() const {
  std::size_t n = host_changes.size();
  for (const auto& c : clusters) n += c.changes.size();
  return n;
}

std::map<std::string, json> owned_dcs_keys(const DesiredCluster& cluster) {
  std::map<std::string, json> out;
  flatten(cluster.dynamic_config, "", out);
  return out;
}

bool same_setting(const json& a, const json& b) {
  if (a == b) return true;
  if (a.is_null() || b.is_null()) return false;
  auto canon = [](const json& v) -> std::string {
    if (v.is_boolean()) return v.get<bool>() ? "on" : "off";
    if (v.is_string()) {
      std::string s = lower(v.get<std::string>());
      if (auto on = patroni_boolean(s)) return *on ? "on" : "off";
      return s;
    }
    if (v.is_number()) return v.dump();
    return v.dump();
  };
  if (a.is_structured() || b.is_structured()) return false;
  return canon(a) == canon(b);
}

std::string config_text(const DesiredMember& member, const ClusterSecrets& secrets) {
  return "# Managed by pgconverge: local edits are reverted on the next apply.\n" +
         to_yaml(resolve_secrets(member.patroni_config, secrets));
}

std::vector<std::string> changed_pointers(const json& before, const json& after) {
  std::map<std::string, json> a, b;
  flatten(before, "", a);
  flatten(after, "", b);
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    auto ia = a.find(k), ib = b.find(k);
    if (ia == a.end() || ib == b.end() || ia->second != ib->second) out.push_back(k);
  }
  return out;
}

std::vector<std::string> changed_keys(const json& before, const json& after) {
  std::vector<std::string> out;
  for (const auto& pointer : changed_pointers(before, after)) out.push_back(pointer_dotted(pointer));
  return out;
}

Impact analyse_impact(const DesiredCluster& desired, const ObservedCluster& observed) {
  Impact impact;
  impact.mode = manifests::to_string(desired.mode);
  impact.strict = desired.dynamic_config.value("synchronous_mode_strict", false);
  bool sync = desired.dynamic_config.value("synchronous_mode", false);
  impact.desired_sync = sync ? desired.dynamic_config.value("synchronous_node_count", 1) : 0;

  std::string leader = expected_leader(desired, observed);
  std::vector<std::string> replicas, failover_replicas, readonly_replicas;
  for (const auto& m : desired.members) {
    if (m.tags.nofailover) {
      if (m.name != leader) readonly_replicas.push_back(m.name);
    } else {
      impact.leader_candidates.push_back(m.name);
      if (m.name != leader) failover_replicas.push_back(m.name);
    }
    if (m.name != leader) replicas.push_back(m.name);
  }
  // Patroni picks sync standbys among nofailover=false members first.
  impact.sync_candidates = failover_replicas;
  impact.sync_candidates.insert(impact.sync_candidates.end(), readonly_replicas.begin(), readonly_replicas.end());
  for (const auto& name : observed.streaming_replicas())
    if (desired.find_member(name)) impact.streaming.push_back(name);

  int replica_count = static_cast<int>(replicas.size());
  int streaming = static_cast<int>(impact.streaming.size());
  impact.effective_sync_declared = std::min(impact.desired_sync, replica_count);
  impact.effective_sync_now = std::min(impact.desired_sync, streaming);

  // What a failure does to writes.
  if (!sync) {
    impact.statements.push_back(impact.mode + ": commits never wait for a replica; a failover can lose the last "
                                "transactions not yet replicated");
  } else if (replicas.empty()) {
    impact.statements.push_back(impact.mode + ": no replica is declared, so replication stays asynchronous");
  } else {
    std::string lost = replicas.size() == 1 ? replicas.front() + " is lost"
                       : replicas.size() == 2 ? and_list(replicas) + " are both lost"
                                              : and_list(replicas) + " are all lost";
    if (impact.strict) {
      impact.statements.push_back(impact.mode + ": writes block if " + lost +
                                  " (Patroni lowers the sync count to the replicas left and blocks only when none is)");
    } else {
      int ttl = desired.dynamic_config.value("ttl", 30);
      impact.statements.push_back(impact.mode + ": each commit waits for " +
                                  std::to_string(impact.effective_sync_declared) + " sync standby(s); if " + lost +
                                  ", commits stall until Patroni's next HA loop (up to ttl " + std::to_string(ttl) +
                                  "s), then continue without synchronous replication");
    }
  }
  impact.statements.push_back("may become leader: " + and_list(impact.leader_candidates));
  if (!readonly_replicas.empty())
    impact.statements.push_back("never become leader (nofailover): " + and_list(readonly_replicas));

  // The traps of docs/replication-semantics.md §5: counts Patroni lowers (§5.2, §5.1), strict with
  // no streaming replica (docs/replication-semantics.md §5.4), readonly/none members as the only sync standbys (§5.9).
  if (sync && impact.desired_sync > replica_count)
    impact.warnings.push_back("synchronous_node_count " + std::to_string(impact.desired_sync) + " exceeds the " +
                              std::to_string(replica_count) + " replica(s) that can be sync standbys: Patroni keeps " +
                              std::to_string(replica_count));
  if (sync && observed.api_reachable && streaming < impact.effective_sync_declared)
    impact.warnings.push_back("only " + std::to_string(streaming) + " of " + std::to_string(replica_count) +
                              " replica(s) stream now: Patroni keeps " + std::to_string(impact.effective_sync_now) +
                              " sync standby(s) until more catch up");
  if (impact.strict && observed.api_reachable && streaming == 0)
    impact.warnings.push_back("strict mode with no streaming replica: every write blocks until one streams "
                              "(pgconverge enables strict only after a replica streams)");
  if (sync && !replicas.empty()) {
    if (failover_replicas.empty()) {
      impact.warnings.push_back("only readonly/none members (" + and_list(readonly_replicas) +
                                ") can be sync standbys: no automatic failover is possible");
    } else if (impact.effective_sync_declared > static_cast<int>(failover_replicas.size())) {
      std::vector<std::string> used(readonly_replicas.begin(),
                                    readonly_replicas.begin() + (impact.effective_sync_declared -
                                                                 static_cast<int>(failover_replicas.size())));
      impact.warnings.push_back("sync standbys will include readonly/none member(s) " + and_list(used) +
                                ", which can never become leader");
    }
  }
  return impact;
}

Plan diff(const manifests::ManifestSet& manifests, const DesiredState& desired, const ObservedState& observed,
          const std::map<std::string, ClusterSecrets>& secrets, const PlanOptions& options) {
  Plan plan;
  for (const auto& [name, host] : observed.hosts)
    if (!host.reachable) plan.host_errors.push_back(host.error.empty() ? "host " + name + ": not reachable" : host.error);

  // What member hosts need first: a supported OS, repositories, packages, Debian's clusters
  // stopped. The etcd pgconverge runs adds its packages to its hosts; its changes follow, so
  // every etcd step comes before any Patroni member starts.
  EtcdPlan etcd = plan_etcd(manifests, desired, observed);
  HostPreparation prep = plan_host_preparation(manifests, desired, observed, etcd.packages);
  std::set<std::string> unpreparable;
  for (const auto& [host, why] : prep.blockers) unpreparable.insert(host);
  PreparationScope scope = preparation_scope(desired, unpreparable);
  for (const auto& name : scope.blocked_etcds)
    for (const auto& e : desired.etcds)
      if (e.name == name)
        for (const auto& m : e.members)
          if (auto it = prep.blockers.find(m.host); it != prep.blockers.end())
            for (const auto& why : it->second) plan.host_errors.push_back("etcd " + name + ": " + why);
  plan.host_changes = std::move(prep.changes);
  plan.host_changes.insert(plan.host_changes.end(), etcd.changes.begin(), etcd.changes.end());
  plan.host_errors.insert(plan.host_errors.end(), etcd.errors.begin(), etcd.errors.end());

  for (const auto& cluster : desired.clusters) {
    ClusterPlan cp;
    cp.name = cluster.name;
    cp.namespace_ = cluster.namespace_;
    auto s = secrets.find(cluster.name);
    if (s == secrets.end()) {
      cp.errors.push_back("cluster " + cluster.name + ": secrets unavailable");
    } else {
      plan_cluster(manifests, cluster, observed, s->second, options, cp);
    }
    // A member host that cannot be prepared stops the whole cluster (and an etcd with a member
    // there, and the clusters on that etcd): nothing half-applied.
    std::set<std::string> blocked;
    for (const auto& m : cluster.members)
      if (auto it = prep.blockers.find(m.host); it != prep.blockers.end() && blocked.insert(m.host).second)
        cp.errors.insert(cp.errors.end(), it->second.begin(), it->second.end());
    if (auto w = prep.warnings.find(cluster.name); w != prep.warnings.end()) cp.warnings = w->second;
    if (blocked.empty() && scope.blocked_etcds.contains(cluster.dcs_name)) {
      blocked.insert(cluster.dcs_name);
      cp.errors.push_back("cluster " + cluster.name + ": not planned: a host of its etcd " + cluster.dcs_name +
                          " cannot be prepared (see the host errors)");
    }
    if (blocked.empty() && etcd.refused.contains(cluster.dcs_name)) {
      blocked.insert(cluster.dcs_name);
      cp.errors.push_back("cluster " + cluster.name + ": not planned: its etcd " + cluster.dcs_name +
                          " is refused (see the host errors)");
    }
    if (!blocked.empty()) {
      cp.changes.clear();
      cp.impact.reset();
      cp.bootstrap = false;
    }
    plan.clusters.push_back(std::move(cp));
  }
  // Host changes only blocked clusters or etcds need are not made either.
  std::erase_if(plan.host_changes, [&](const Change& c) {
    std::string its_etcd = etcd_name(c.step);
    if (!its_etcd.empty() && scope.blocked_etcds.contains(its_etcd)) return true;
    return !c.host.empty() && !scope.needed_hosts.contains(c.host);
  });
  // Observed values (Patroni's config, GET /config, pg_settings) may hold credentials.
  redact_plan(plan, secrets);
  return plan;
}

}  // namespace pgc::reconciler

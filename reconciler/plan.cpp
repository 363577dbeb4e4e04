#include "reconciler/plan.hpp"

#include <algorithm>
#include <set>

#include "reconciler/etcd.hpp"
#include "reconciler/host_prep.hpp"
#include "reconciler/redact.hpp"
#include "reconciler/sidecars.hpp"
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

std::string dotted(const std::string& pointer) { return pointer_dotted(pointer); }

bool is_secret_path(const std::string& pointer) {
  return pointer.ends_with("/password");
}

std::string show(const json& value) {
  if (value.is_null()) return "(unset)";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

json at_pointer(const json& doc, const std::string& pointer) {
  json::json_pointer ptr(pointer);
  return doc.contains(ptr) ? doc.at(ptr) : json();
}


const manifests::Host* host_by_address(const manifests::ManifestSet& manifests, const std::string& address) {
  for (const auto& h : manifests.hosts)
    if (h.address == address) return &h;
  return nullptr;
}

std::string member_subject(const DesiredMember& m) { return "member " + m.name + " (" + m.host + ")"; }

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

namespace {
// The flattened pointers whose values differ between before and after.
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
}  // namespace

std::vector<std::string> changed_keys(const json& before, const json& after) {
  std::vector<std::string> out;
  for (const auto& pointer : changed_pointers(before, after)) out.push_back(dotted(pointer));
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

namespace {

// The member changes of one cluster, in execution order.
void plan_cluster(const manifests::ManifestSet& manifests, const DesiredCluster& desired,
                  const ObservedState& observed, const ClusterSecrets& secrets, const PlanOptions& options,
                  ClusterPlan& plan) {
  static const ObservedCluster k_unobserved{};
  auto oc_it = observed.clusters.find(desired.name);
  const ObservedCluster& oc = oc_it == observed.clusters.end() ? k_unobserved : oc_it->second;

  // Which members can be acted on (their host answered).
  std::vector<const DesiredMember*> members;
  bool any_data = false;
  for (const auto& m : desired.members) {
    auto h = observed.hosts.find(m.host);
    if (h == observed.hosts.end() || !h->second.reachable) {
      plan.errors.push_back("member " + m.name + " on host " + m.host + ": " +
                            (h == observed.hosts.end() ? std::string("not observed") : h->second.error));
      continue;
    }
    members.push_back(&m);
    std::string data_dir = m.patroni_config["postgresql"].value("data_dir", "");
    auto d = h->second.data_dirs.find(data_dir);
    if (d != h->second.data_dirs.end() && d->second) any_data = true;
  }
  plan.bootstrap = !oc.api_reachable && !any_data;
  // Members run but Patroni cannot be observed (its DCS is down, say): change nothing, since
  // nothing changed there could be verified.
  if (!oc.api_reachable && any_data) {
    for (const auto* m : members) {
      const auto& services = observed.hosts.at(m->host).services;
      auto it = services.find(m->service);
      if (it == services.end() || it->second != "active") continue;
      plan.errors.push_back("cluster " + desired.name + ": " + m->service + " runs on " + m->host +
                            " but Patroni cannot be observed (" + (oc.dcs_error.empty() ? oc.error : oc.dcs_error) +
                            "); nothing is applied to this cluster until it answers");
      return;
    }
  }
  bool replication_changes = false;

  // 1. Local configs (tags first: before any DCS change). 2. Reloads of running members.
  std::vector<Change> reloads;
  std::vector<const DesiredMember*> to_start;
  for (const auto* m : members) {
    const auto& oh = observed.hosts.at(m->host);
    std::string text = config_text(*m, secrets);
    auto f = oh.files.find(m->config_path);
    bool active = oh.services.contains(m->service) && oh.services.at(m->service) == "active";
    bool enabled = oh.service_enabled.contains(m->service) && oh.service_enabled.at(m->service) == "enabled";
    Change write{.subject = member_subject(*m) + ": " + m->config_path,
                 .action = Action::create,
                 .step = steps::WriteConfig{},
                 .cluster = desired.name,
                 .member = m->name,
                 .host = m->host};
    if (f == oh.files.end() || !f->second) {
      write.after = "patroni.yml for " + m->name;
      write.reason = "absent";
      plan.changes.push_back(write);
    } else if (*f->second != text) {
      auto current = yaml_to_json(*f->second);
      auto wanted = resolve_secrets(m->patroni_config, secrets);
      write.action = Action::update;
      if (!current) {
        write.reason = "not valid YAML (" + current.error().message + ")";
      } else {
        auto pointers = changed_pointers(*current, wanted);
        std::vector<std::string> keys;
        for (const auto& p : pointers) keys.push_back(dotted(p));
        // bootstrap.dcs seeds /config once, at creation (docs/replication-semantics.md §6): once the
        // cluster exists, a file that differs only there is left as it is (no write, no reload).
        bool exists = oc.api_reachable || any_data;
        if (exists && !keys.empty() &&
            std::all_of(keys.begin(), keys.end(), [](const std::string& k) { return starts_with(k, "bootstrap."); })) {
          if (!active || !enabled) to_start.push_back(m);
          continue;
        }
        std::vector<std::string> before, after;
        for (std::size_t i = 0; i < keys.size(); ++i) {
          const std::string& k = keys[i];
          const std::string& ptr = pointers[i];
          bool secret = is_secret_path(ptr);
          FieldChange fc{k, secret ? std::string(k_redacted) : show(at_pointer(*current, ptr)),
                         secret ? std::string(k_redacted) : show(at_pointer(wanted, ptr))};
          before.push_back(k + "=" + fc.before);
          after.push_back(k + "=" + fc.after);
          write.fields.push_back(std::move(fc));
        }
        write.before = join(before, ", ");
        write.after = join(after, ", ");
        write.reason = keys.empty() ? "formatting or comments differ (drift)" : "drift in " + join(keys, ", ");
        if (std::any_of(keys.begin(), keys.end(), [](const std::string& k) { return starts_with(k, "tags."); }))
          replication_changes = true;
      }
      plan.changes.push_back(write);
      if (active)
        reloads.push_back(Change{.subject = member_subject(*m) + ": " + m->service,
                                 .action = Action::update,
                                 .reason = "local config changed; Patroni re-reads it on reload",
                                 .step = steps::ReloadMember{},
                                 .cluster = desired.name,
                                 .member = m->name,
                                 .host = m->host});
    }
    if (!active || !enabled) to_start.push_back(m);
  }
  plan.changes.insert(plan.changes.end(), reloads.begin(), reloads.end());

  // 3. Starts: on bootstrap the first member alone, until it leads; then the others.
  for (std::size_t i = 0; i < to_start.size(); ++i) {
    const auto* m = to_start[i];
    const auto& oh = observed.hosts.at(m->host);
    std::string state = oh.services.contains(m->service) ? oh.services.at(m->service) : "unknown";
    steps::StartMember step{.enable = true};
    Change start{.subject = member_subject(*m) + ": " + m->service,
                 .action = Action::create,
                 .before = state,
                 .after = "active",
                 .cluster = desired.name,
                 .member = m->name,
                 .host = m->host};
    if (plan.bootstrap && i == 0) {
      start.reason = "bootstrap the cluster on this member";
      step.wait = steps::StartWait::leader;
    } else if (plan.bootstrap) {
      start.reason = "join as a replica";
      step.wait = steps::StartWait::streaming;
    } else {
      start.action = Action::update;
      start.reason = state == "active" ? "service not enabled at boot" : "service " + state;
      step.wait = oc.leader() ? steps::StartWait::streaming : steps::StartWait::running;
    }
    start.step = step;
    if (!oc.member(m->name)) replication_changes = true;
    plan.changes.push_back(start);
  }
  // Replicas joining a leader start together (each clones from the leader on its own): all but
  // the last return once started, the last waits until every one of them streams.
  std::vector<std::pair<steps::StartMember*, const Change*>> joins;
  for (auto& c : plan.changes)
    if (auto* start = std::get_if<steps::StartMember>(&c.step); start && start->wait == steps::StartWait::streaming)
      joins.emplace_back(start, &c);
  if (joins.size() > 1) {
    std::vector<std::string> names;
    for (auto [start, c] : joins) {
      names.push_back(c->member);
      start->wait = steps::StartWait::none;
    }
    joins.back().first->wait = steps::StartWait::streaming;
    joins.back().first->wait_members = names;
  }

  // 4. The DCS keys pgconverge owns, in one PATCH (never the keys it does not own, e.g. pause).
  json patch = json::object();
  std::vector<std::string> before, after, keys;
  std::vector<FieldChange> dcs_fields;
  for (const auto& [pointer, value] : owned_dcs_keys(desired)) {
    json current = at_pointer(oc.dcs_config, pointer);
    if (same_setting(current, value)) continue;
    patch[json::json_pointer(pointer)] = value;
    keys.push_back(dotted(pointer));
    before.push_back(dotted(pointer) + "=" + show(current));
    after.push_back(dotted(pointer) + "=" + show(value));
    dcs_fields.push_back(FieldChange{dotted(pointer), show(current), show(value)});
    if (pointer.starts_with("/synchronous_")) replication_changes = true;
  }
  // Patroni 3.0.2 leaves commits waiting on standby names nobody streams, in non-strict sync
  // (ObservedCluster::stale_standby_names); synchronous_mode off and on again releases them.
  const bool wants_sync = desired.dynamic_config.value("synchronous_mode", false);
  const bool wants_strict = desired.dynamic_config.value("synchronous_mode_strict", false);
  std::vector<std::string> stale = wants_sync && !wants_strict ? oc.stale_standby_names() : std::vector<std::string>{};
  // The mode keys go together in one PATCH (docs/replication-semantics.md §2), also when only one of them
  // differs: after a release (below) the patch must put synchronous_mode back.
  if (!stale.empty() || (!patch.empty() && (replication_changes || patch.contains("synchronous_mode") ||
                                            patch.contains("synchronous_mode_strict") ||
                                            patch.contains("synchronous_node_count"))))
    for (const char* key : {"synchronous_mode", "synchronous_mode_strict", "synchronous_node_count"})
      if (desired.dynamic_config.contains(key)) patch[key] = desired.dynamic_config[key];
  if (!stale.empty()) {
    std::string names = oc.postgres.at(oc.leader()->name).synchronous_standby_names;
    before.push_back("synchronous_standby_names=" + names);
    after.push_back("synchronous_standby_names=(empty)");
    keys.push_back("synchronous_standby_names");
    dcs_fields.push_back(FieldChange{"synchronous_standby_names (leader)", names, "(empty)"});
  }
  if (!patch.empty()) {
    steps::PatchDcs step{.patch = patch};
    Change change{.subject = "cluster " + desired.name + ": Patroni dynamic configuration",
                  .action = Action::update,
                  .before = join(before, ", "),
                  .after = join(after, ", "),
                  .reason = plan.bootstrap ? "declared settings (applied once replicas stream)" : "drift in " + join(keys, ", "),
                  .cluster = desired.name,
                  .fields = std::move(dcs_fields)};
    // Patroni 3.0.2 keeps '*' after strict is turned off with sync still on; only
    // synchronous_mode: false releases the waiting commits (docs/replication-semantics.md §5.5).
    const auto* leader = oc.leader();
    if (leader && oc.postgres.contains(leader->name) &&
        trim(oc.postgres.at(leader->name).synchronous_standby_names) == "*" && !wants_strict)
      step.release_first = true;
    if (!stale.empty()) {
      step.release_first = true;
      step.release_stale = stale;
      change.reason = "commits wait on " + join(stale, ", ") +
                      ", which no longer stream(s), and Patroni 3.0.2 does not release them (its /sync key names no "
                      "standby): synchronous_mode off, then on again" +
                      (keys.size() > 1 ? "; drift in " + join(std::vector<std::string>(keys.begin(), keys.end() - 1), ", ") : "");
    }
    change.step = std::move(step);
    plan.changes.push_back(change);
  }

  // 4b. PgBouncer and the exporter: their files, roles and services (sidecars.cpp).
  plan_sidecars(desired, observed, members, secrets, plan);

  // Write availability (reliability issue, faults 6 and 7): a restart or stop that would leave the
  // cluster without a writable primary, or a strict cluster without a sync standby, is held back
  // with its reason unless --allow-write-outage says otherwise.
  const bool strict = desired.dynamic_config.value("synchronous_mode_strict", false);
  // Declared replicas streaming now, other than those named.
  // Patroni keeps listing a lost replica as streaming until its key expires (ttl): count only
  // those whose host answered this run.
  auto streaming_except = [&](std::initializer_list<std::string> names) {
    std::vector<std::string> out;
    for (const auto& name : oc.streaming_replicas()) {
      const auto* m = desired.find_member(name);
      if (!m || std::find(names.begin(), names.end(), name) != names.end()) continue;
      auto h = observed.hosts.find(m->host);
      if (h != observed.hosts.end() && h->second.reachable) out.push_back(name);
    }
    return out;
  };
  // ... or that will stream shortly: their host answers and their service runs (just restored,
  // catching up). A change relying on those waits for one to stream (its step's
  // await_streaming_except) rather than being held back.
  auto available_except = [&](std::initializer_list<std::string> names) {
    std::vector<std::string> out = streaming_except(names);
    const auto* leader = oc.leader();
    for (const auto& m : desired.members) {
      if ((leader && leader->name == m.name) || std::find(names.begin(), names.end(), m.name) != names.end() ||
          std::find(out.begin(), out.end(), m.name) != out.end())
        continue;
      auto h = observed.hosts.find(m.host);
      if (h == observed.hosts.end() || !h->second.reachable) continue;
      auto svc = h->second.services.find(m.service);
      if (svc != h->second.services.end() && svc->second == "active") out.push_back(m.name);
    }
    return out;
  };
  auto guard = [&](std::initializer_list<std::string> names) -> steps::AwaitStreamingExcept {
    if (strict && streaming_except(names).empty()) return std::vector<std::string>(names);
    return std::nullopt;
  };
  auto hold_back = [&](const std::string& what, const std::string& why) {
    if (options.allow_write_outage) return false;
    plan.errors.push_back(what + " held back: " + why + "; bring the other members back first, or pass " +
                          k_allow_write_outage_flag + " to do it anyway");
    return true;
  };
  auto strict_gap = [&](const std::string& name) {
    return "while " + name + " is down, strict cluster " + desired.name +
           " has no other streaming replica to be its sync standby and every write blocks";
  };

  // 5. Pending restarts, replicas first, one at a time; the leader after a switchover.
  const ObservedMember* pending_leader = nullptr;
  for (const auto& om : oc.members) {
    const auto* m = desired.find_member(om.name);
    if (!m || !om.pending_restart) continue;
    if (auto h = observed.hosts.find(m->host); h == observed.hosts.end() || !h->second.reachable)
      continue;  // its host is lost this run (already an error): nothing to restart there
    if (om.role == "leader") {
      pending_leader = &om;
      continue;
    }
    if (strict && available_except({om.name}).empty() && hold_back("restart of " + om.name, strict_gap(om.name)))
      continue;
    plan.changes.push_back(Change{.subject = member_subject(*m) + ": PostgreSQL",
                                  .action = Action::restart,
                                  .before = "pending restart",
                                  .after = "restarted",
                                  .reason = "a changed parameter needs a restart",
                                  .step = steps::RestartMember{.await_streaming_except = guard({om.name})},
                                  .cluster = desired.name,
                                  .member = m->name,
                                  .host = m->host});
  }
  // A declared, failover-capable replica that streams and whose host answered: a sync standby
  // first (Patroni may still list a lost one as sync until its key expires).
  auto candidate_for = [&](const std::string& leader_name) -> std::string {
    auto streaming = streaming_except({});  // declared, streaming, host answered this run
    auto eligible = [&](const std::string& name) {
      const auto* m = desired.find_member(name);
      return m && !m->tags.nofailover && name != leader_name &&
             std::find(streaming.begin(), streaming.end(), name) != streaming.end();
    };
    for (const auto& name : oc.sync_standbys())
      if (eligible(name)) return name;
    for (const auto& name : streaming)
      if (eligible(name)) return name;
    return "";
  };
  if (pending_leader) {
    const auto* m = desired.find_member(pending_leader->name);
    std::string candidate = candidate_for(pending_leader->name);
    bool held = false;
    if (candidate.empty() && desired.members.size() > 1) {
      held = hold_back("restart of leader " + m->name,
                       "no replica streams to switch over to, so cluster " + desired.name +
                           " would have no writable primary until it is back");
    } else if (!candidate.empty() && strict && available_except({m->name, candidate}).empty()) {
      held = hold_back("restart of leader " + m->name + " (after a switchover to " + candidate + ")",
                       strict_gap(m->name));
    }
    if (!held) {
      if (!candidate.empty()) {
        plan.changes.push_back(Change{.subject = "cluster " + desired.name + ": leader",
                                      .action = Action::update,
                                      .before = pending_leader->name,
                                      .after = candidate,
                                      .reason = "the leader needs a restart; switch over to a sync standby first",
                                      .step = steps::Switchover{.leader = pending_leader->name, .candidate = candidate},
                                      .cluster = desired.name});
      }
      steps::RestartMember step;
      if (!candidate.empty()) step.await_streaming_except = guard({m->name, candidate});
      plan.changes.push_back(Change{.subject = member_subject(*m) + ": PostgreSQL",
                                    .action = Action::restart,
                                    .before = "pending restart",
                                    .after = "restarted",
                                    .reason = candidate.empty()
                                                  ? "a changed parameter needs a restart (no replica to switch over to)"
                                                  : "a changed parameter needs a restart (as a replica)",
                                    .step = step,
                                    .cluster = desired.name,
                                    .member = m->name,
                                    .host = m->host});
    }
  }

  // 6. Scale down: members Patroni knows that are no longer declared; never the leader.
  for (const auto& om : oc.members) {
    if (desired.find_member(om.name)) continue;
    replication_changes = true;
    const auto* host = host_by_address(manifests, om.host);
    if (!host) {
      plan.errors.push_back("member " + om.name + " at " + om.host + " is not declared and no Host has that address");
      continue;
    }
    std::string candidate;
    if (om.role == "leader") {
      candidate = candidate_for(om.name);
      if (candidate.empty()) {
        plan.errors.push_back("member " + om.name + " leads but is not declared, and no declared replica can take over");
        continue;
      }
    }
    // Stopping a replica that streams, or the leader after its switchover: a strict cluster needs
    // another declared replica streaming to stay writable.
    bool streams = om.role == "leader" || om.state == "running" || om.state == "streaming";
    if (strict && streams && available_except({om.name, candidate}).empty() &&
        hold_back("stop of " + om.name + " (no longer declared)",
                  om.role == "leader" ? "once " + candidate + " leads, strict cluster " + desired.name +
                                            " has no other streaming replica to be its sync standby and every "
                                            "write blocks"
                                      : om.name + " is the last streaming replica of strict cluster " + desired.name +
                                            ": without a sync standby every write blocks"))
      continue;
    if (!candidate.empty()) {
      plan.changes.push_back(Change{.subject = "cluster " + desired.name + ": leader",
                                    .action = Action::update,
                                    .before = om.name,
                                    .after = candidate,
                                    .reason = "the leader is being removed; switch over first",
                                    .step = steps::Switchover{.leader = om.name, .candidate = candidate},
                                    .cluster = desired.name});
    }
    steps::StopMember step{.service = desired.members.empty() ? "" : desired.members.front().service,
                           .config_path = desired.members.empty() ? "" : desired.members.front().config_path};
    if (streams) step.await_streaming_except = guard({om.name, candidate});
    plan.changes.push_back(Change{.subject = "member " + om.name + " (" + host->metadata.name + "): " +
                                             desired.members.front().service,
                                  .action = Action::remove,
                                  .before = "running",
                                  .after = "stopped (data directory kept)",
                                  .reason = "no longer declared (instances " + std::to_string(desired.instances) + ")",
                                  .step = step,
                                  .cluster = desired.name,
                                  .member = om.name,
                                  .host = host->metadata.name});
  }

  if (replication_changes || plan.bootstrap) plan.impact = analyse_impact(desired, oc);
}

}  // namespace

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

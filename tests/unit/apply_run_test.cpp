// apply_run without a lab: bare hosts that answer the probe (run_fakes.hpp), steps recorded by a
// fake runner instead of run on hosts, the history in a temp state dir.
#include <catch2/catch.hpp>

#include <sstream>

#include "reconciler/apply_run.hpp"
#include "reconciler/history.hpp"
#include "reconciler/secrets.hpp"
#include "tests/unit/run_fakes.hpp"

using namespace pgc;
using namespace pgc::reconciler;
using namespace std::chrono_literals;

namespace {

struct ApplyRunCase {
  testing::RunManifests manifests;
  test::TempDir state{"pgc-state"};
  testing::BareWorld world;
  testing::StepLog steps;
  ApplyRunOptions options;
  std::ostringstream out, err, progress_out;

  ApplyRunCase() {
    options.source.locations = {manifests.path().string()};
    options.run.state_dir = state.path();
    options.apply.wait_timeout = 0s;  // the fake Patroni never answers: verify once, do not wait
    // ... and a run bound far away, so that passes follow (apply_run would start one of 0 s).
    options.apply.deadline = ApplyDeadline::starting_now(1h);
    options.apply.workers = 2;
    options.apply.runner = testing::recording_runner(steps);
    options.lock_wait = 5s;
  }
  ApplyRunResult operator()() {
    Progress progress(progress_out, Progress::Style::quiet);
    return apply_run(options, world, progress, out, err);
  }
  RunRecord last_recorded() {
    auto last = History(state.path()).last();
    REQUIRE(last);
    REQUIRE(*last);
    return **last;
  }
  bool ran_on_host(const std::string& host) { return steps.hosts.contains(host); }
};

bool has_part(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("apply_run: a pass that acted but did not converge is observed, planned and applied again, up to max_passes") {
  ApplyRunCase run;
  run.manifests.cluster("c", 1);
  run.options.max_passes = 3;
  auto result = run();
  INFO(run.out.str() << run.err.str());
  CHECK(result.exit_code == 1);
  CHECK(run.steps.plans == 3);       // three apply passes
  CHECK(run.world.probes == 2 * 3);  // each after a fresh probe of both hosts
  CHECK(run.world.connects == 2);    // over the run's sessions, opened once
  CHECK(has_part(run.out.str(), "pass 1 did not converge (cluster c: "));
  CHECK(has_part(run.out.str(), "observing again, pass 3 of 3"));
  CHECK_FALSE(has_part(run.out.str(), "pass 4"));
  CHECK(has_part(run.out.str(), "cluster c: NOT converged"));
  CHECK(run.last_recorded().result == "failure");
  CHECK(run.last_recorded().changes_applied == run.steps.subjects.size());

  ApplyRunCase once;
  once.manifests.cluster("c", 1);
  once.options.max_passes = 1;
  CHECK(once().exit_code == 1);
  CHECK(once.steps.plans == 1);
  CHECK_FALSE(has_part(once.out.str(), "observing again"));
}

TEST_CASE("apply_run: no further pass when the plan explained the failure") {
  SECTION("a member's host did not answer") {
    ApplyRunCase run;
    run.manifests.cluster("c", 1);
    run.world.unreachable = {"h2"};
    auto result = run();
    INFO(run.out.str() << run.err.str());
    CHECK(result.exit_code == 1);
    CHECK(run.steps.plans == 1);
    CHECK(run.world.probes == 1);
    CHECK_FALSE(has_part(run.out.str(), "observing again"));
  }
  SECTION("the cluster's secrets file is damaged: every host answers, its hosts are prepared, it is not applied") {
    ApplyRunCase run;
    run.manifests.cluster("c", 1);
    run.state.write("secrets/default.c.json", "not json");
    auto result = run();
    INFO(run.out.str() << run.err.str());
    CHECK(result.exit_code == 1);
    CHECK(run.steps.plans == 1);
    CHECK(run.world.probes == 2);
    CHECK(run.steps.clusters == std::set<std::string>{""});  // the hosts' packages, nothing of c
    CHECK(has_part(run.out.str(), "not a valid secrets file"));
    CHECK_FALSE(has_part(run.out.str(), "observing again"));
  }
}

TEST_CASE("apply_run: a suspended cluster is planned and recorded, but none of its steps reaches the runner") {
  ApplyRunCase run;
  run.manifests.cluster("c", 1, /*suspended=*/true);
  run.manifests.cluster("d", 3);
  run.options.max_passes = 1;
  auto result = run();
  INFO(run.out.str() << run.err.str());
  CHECK(result.exit_code == 1);  // d does not converge: nothing runs on the fake hosts
  CHECK(has_part(run.out.str(), "cluster c: suspended (pgconverge.io/suspend), "));
  CHECK_FALSE(run.steps.clusters.contains("c"));
  CHECK(run.steps.clusters.contains("d"));
  CHECK_FALSE(run.ran_on_host("h1"));
  CHECK_FALSE(run.ran_on_host("h2"));
  CHECK(run.ran_on_host("h3"));
  auto record = run.last_recorded();
  REQUIRE(record.cluster("default", "c"));
  CHECK(record.cluster("default", "c")->suspended);
  CHECK(record.cluster("default", "d"));
}

TEST_CASE("apply_run: StackGres's reconciliation pause suspends a cluster like pgconverge.io/suspend") {
  ApplyRunCase run;
  // "True": StackGres reads the annotation with Java's Boolean.parseBoolean, any case pauses.
  run.manifests.cluster("c", 1, /*suspended=*/true, "stackgres.io/reconciliation-pause: \"True\"");
  run.manifests.cluster("d", 3, /*suspended=*/true, "stackgres.io/reconciliation-pause: \"no\"");
  run.options.max_passes = 1;
  auto result = run();
  INFO(run.out.str() << run.err.str());
  CHECK(has_part(run.out.str(), "cluster c: suspended (stackgres.io/reconciliation-pause), "));
  CHECK_FALSE(run.steps.clusters.contains("c"));
  CHECK_FALSE(run.ran_on_host("h1"));
  CHECK(run.steps.clusters.contains("d"));  // "no" does not pause, as in StackGres
  CHECK(has_part(run.out.str() + run.err.str(), "metadata.annotations.stackgres.io/reconciliation-pause: \"no\" does not pause"));
  auto record = run.last_recorded();
  REQUIRE(record.cluster("default", "c"));
  CHECK(record.cluster("default", "c")->suspended);
}

TEST_CASE("apply_run: owned limits which clusters are applied and recorded") {
  ApplyRunCase run;
  run.manifests.cluster("c", 1);
  run.manifests.cluster("d", 3);
  run.options.max_passes = 1;
  std::vector<std::string> asked;
  run.options.owned = [&](const DesiredState& desired) -> Result<std::set<std::string>> {
    for (const auto& c : desired.clusters) asked.push_back(c.name);
    return std::set<std::string>{"d"};
  };
  std::vector<std::pair<std::set<std::string>, bool>> acting;
  run.options.acting = [&](const std::set<std::string>& clusters, bool started) { acting.emplace_back(clusters, started); };
  run();
  INFO(run.out.str() << run.err.str());
  CHECK(asked == std::vector<std::string>{"c", "d"});
  CHECK(run.steps.clusters == std::set<std::string>{"", "d"});
  CHECK_FALSE(run.ran_on_host("h1"));
  CHECK(run.ran_on_host("h3"));
  CHECK(has_part(run.out.str(), "cluster c: owned by another instance, not applied here"));
  auto record = run.last_recorded();
  CHECK_FALSE(record.cluster("default", "c"));
  CHECK(record.cluster("default", "d"));
  REQUIRE(acting.size() == 2);
  CHECK(acting[0] == std::pair{std::set<std::string>{"d"}, true});
  CHECK(acting[1] == std::pair{std::set<std::string>{"d"}, false});
  // Another instance's cluster keeps its secrets to that instance: none saved for c here.
  CHECK_FALSE(std::filesystem::exists(SecretStore(run.state.path()).file("default", "c")));
  CHECK(std::filesystem::exists(SecretStore(run.state.path()).file("default", "d")));
}

TEST_CASE("apply_run: an ownership error applies nothing and is recorded") {
  ApplyRunCase run;
  run.manifests.cluster("c", 1);
  run.options.owned = [](const DesiredState&) -> Result<std::set<std::string>> {
    return fail("ownership: etcd at 10.0.0.9:2379 did not answer");
  };
  auto result = run();
  CHECK(result.exit_code == 1);
  CHECK(run.steps.plans == 0);
  CHECK(run.err.str() == "error: ownership: etcd at 10.0.0.9:2379 did not answer\n");
  auto record = run.last_recorded();
  CHECK(record.result == "failure");
  CHECK(record.errors == std::vector<std::string>{"ownership: etcd at 10.0.0.9:2379 did not answer"});
}

TEST_CASE("apply_run: a failed step gives exit code 1 and a history record saying so") {
  ApplyRunCase run;
  run.manifests.cluster("c", 1);
  run.options.max_passes = 1;
  run.steps.fail_on = "c-0";
  auto result = run();
  INFO(run.out.str() << run.err.str());
  CHECK(result.exit_code == 1);
  CHECK(has_part(run.out.str(), "cluster c: NOT converged\n  error: "));
  CHECK(has_part(run.out.str(), "the fake step failed on cue"));
  auto record = run.last_recorded();
  CHECK(record.result == "failure");
  REQUIRE_FALSE(record.errors.empty());
  CHECK(has_part(record.errors.front(), "c: "));
  CHECK(has_part(record.errors.front(), "the fake step failed on cue"));
  const auto* c = record.cluster("default", "c");
  REQUIRE(c);
  REQUIRE(c->condition("Ready"));
  CHECK(c->condition("Ready")->status == "False");
}

TEST_CASE("apply_run: invalid manifests apply nothing, observe nothing, and are recorded with file:line") {
  ApplyRunCase run;
  run.manifests.cluster("c", 1);
  run.manifests.invalid_cluster_c();
  auto result = run();
  CHECK(result.exit_code == 1);
  CHECK(run.world.connects == 0);
  CHECK(run.steps.plans == 0);
  CHECK(run.out.str().empty());
  CHECK(has_part(run.err.str(), "error: invalid manifests; nothing was observed or applied\n"));
  auto record = run.last_recorded();
  CHECK(record.result == "failure");
  REQUIRE(record.errors.size() >= 2);
  CHECK(record.errors[0] == "invalid manifests; nothing was observed or applied");
  CHECK(has_part(record.errors[1], "c.yaml:8:"));
}

TEST_CASE("apply_run: the fetch pass comes first; its hook may decline the run or rename its trigger") {
  SECTION("declined: nothing observed, applied or recorded") {
    ApplyRunCase run;
    run.manifests.cluster("c", 1);
    std::string seen;
    run.options.fetch.fetched = [&](const ResolvedSource& source, std::string& trigger) {
      seen = source.revision.source;
      return trigger != "poll";
    };
    run.options.trigger = "poll";
    auto result = run();
    CHECK_FALSE(result.ran);
    CHECK(result.exit_code == 0);
    CHECK(seen == run.manifests.path().string());
    CHECK(run.world.probes == 0);
    CHECK(run.steps.plans == 0);
    auto history = History(run.state.path()).last();
    REQUIRE(history);
    CHECK_FALSE(*history);
  }
  SECTION("renamed: the run is recorded under the trigger the hook chose") {
    ApplyRunCase run;
    run.manifests.cluster("c", 1);
    run.options.max_passes = 1;
    run.options.fetch.fetched = [](const ResolvedSource&, std::string& trigger) {
      trigger = "resync";
      return true;
    };
    auto result = run();
    CHECK(result.ran);
    CHECK(run.last_recorded().trigger == "resync");
    CHECK(run.last_recorded().revision.source == run.manifests.path().string());
  }
}

TEST_CASE("apply_run: a failed fetch applies nothing, exits 1 and is recorded unless its hook says no") {
  for (bool record : {true, false}) {
    ApplyRunCase run;
    run.manifests.cluster("c", 1);
    run.options.source.ref = "main";  // --ref without a git URL: the fetch pass refuses
    std::string reported;
    run.options.fetch.failed = [&](const Error& error) {
      reported = error.message;
      return record;
    };
    auto result = run();
    INFO("recorded: " << record);
    CHECK_FALSE(result.ran);
    CHECK(result.exit_code == 1);
    CHECK(has_part(reported, "--ref and --path need a git URL"));
    CHECK(run.world.probes == 0);
    CHECK(run.steps.plans == 0);
    auto history = History(run.state.path()).last();
    REQUIRE(history);
    if (record) {
      REQUIRE(*history);
      CHECK((*history)->result == "failure");
      CHECK((*history)->errors == std::vector<std::string>{reported});
    } else {
      CHECK_FALSE(*history);
    }
  }
}

TEST_CASE("apply_run: a step that failed permanently is not applied again; a transient failure is") {
  SECTION("permanent: one pass, and the output says why") {
    ApplyRunCase run;
    run.manifests.cluster("c", 1);
    run.options.max_passes = 3;
    run.steps.fail_on = "c-0";
    run.steps.fail_why = "a wrong password does not fix itself";
    auto result = run();
    INFO(run.out.str() << run.err.str());
    CHECK(result.exit_code == 1);
    CHECK(run.steps.plans == 1);
    CHECK(run.world.probes == 2);  // observed once
    CHECK(has_part(run.out.str(), "the fake step failed on cue: not retried: a wrong password does not fix itself"));
    CHECK(has_part(run.out.str(), "pass 1 failed; not observing again (cluster c: "));
    CHECK_FALSE(has_part(run.out.str(), "observing again, pass 2"));
    CHECK(has_part(run.last_recorded().errors.front(), "not retried: a wrong password does not fix itself"));
  }
  SECTION("transient: observed and applied again") {
    ApplyRunCase run;
    run.manifests.cluster("c", 1);
    run.options.max_passes = 3;
    run.steps.fail_on = "c-0";
    auto result = run();
    INFO(run.out.str() << run.err.str());
    CHECK(result.exit_code == 1);
    CHECK(run.steps.plans == 3);
    CHECK_FALSE(has_part(run.out.str(), "not retried"));
  }
}

TEST_CASE("apply_run: --wait-timeout bounds the whole run: all passes share one deadline") {
  // The fake Patroni never answers: each pass's verification would wait its whole bound, and
  // three passes three times the bound. The run's deadline ends the first pass's verification
  // and starts no other.
  ApplyRunCase run;
  run.manifests.cluster("c", 1);
  run.options.max_passes = 3;
  run.options.apply.wait_timeout = 2s;
  run.options.apply.deadline = {};  // apply_run sets it: from its start
  auto start = std::chrono::steady_clock::now();
  auto result = run();
  auto took = std::chrono::steady_clock::now() - start;
  INFO(run.out.str() << run.err.str());
  CHECK(result.exit_code == 1);
  CHECK(run.steps.plans == 1);
  CHECK(took >= 2s);
  CHECK(took < 2s * 2);  // less than two passes' waits (each pass alone would wait 2 s)
  CHECK(has_part(run.out.str(), "verify: the apply's --wait-timeout of 2s (all passes and waits) was reached"));
  CHECK(has_part(run.out.str(), "pass 1 failed; not observing again (the apply's --wait-timeout of 2s"));
  CHECK(has_part(run.last_recorded().errors.back(), "was reached"));
}

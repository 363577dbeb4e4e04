#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <sstream>

#include "core_fixtures.hpp"
#include "reconciler/history.hpp"
#include "tests/support/read_all.hpp"
#include "tests/support/temp_dir.hpp"

using namespace pgc::reconciler;
using pgc::manifests::ReplicationMode;
using pgc::test::TempDir;

namespace {

using pgc::test::read_all;

// history.json.damaged-* beside the history.
std::vector<std::filesystem::path> damaged_copies(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().starts_with("history.json.damaged-")) out.push_back(e.path());
  return out;
}

std::string status_of(const std::vector<Condition>& conditions, const std::string& type) {
  for (const auto& c : conditions)
    if (c.type == type) return c.status + (c.reason.empty() ? "" : "/" + c.reason);
  return "absent";
}

Revision revision(const std::string& sha) {
  Revision r;
  r.source = "file:///srv/git/pg.git";
  r.sha = sha;
  r.short_sha = sha.substr(0, 7);
  r.subject = "strict-sync-all for prod";
  return r;
}

}  // namespace

TEST_CASE("history: a converged apply is Ready and records the revision it applied") {
  auto c = pgc::testing::make_cluster(3, ReplicationMode::sync, 1);
  auto o = pgc::testing::healthy(c, 1);
  ClusterOutcome outcome{"c", true, 4, {}, {}, {}, {}};
  auto record = cluster_record(c, o, nullptr, &outcome, revision("0123456789abcdef"), nullptr);
  CHECK(status_of(record.conditions, "Ready") == "True/Converged");
  CHECK(record.condition("Ready")->message == "1 sync standby(s), 3 member(s) as declared");
  CHECK(status_of(record.conditions, "Reconciling") == "False/Idle");
  CHECK(status_of(record.conditions, "Stalled") == "False");
  CHECK(status_of(record.conditions, "Degraded") == "False");
  CHECK(status_of(record.conditions, "PendingRestart") == "False");
  CHECK(record.last_applied_revision == "0123456789abcdef");
  CHECK(record.sync_desired == 1);
  CHECK(record.sync_observed == 1);
}

TEST_CASE("history: a failed step is Stalled, and lastAppliedRevision stays at the last Ready run") {
  auto c = pgc::testing::make_cluster(3, ReplicationMode::strict_sync, 2);
  auto o = pgc::testing::healthy(c, 1);
  RunRecord previous;
  previous.clusters.push_back({"default", "c", {}, "aaaaaaaaaaaa", 2, 2, false});
  ClusterOutcome outcome{"c", false, 1, {"1 sync standby(s) in Patroni (c-1), expected 2"}, {"patch-dcs c: 503"}, {}, {}};
  auto record = cluster_record(c, o, nullptr, &outcome, revision("bbbbbbbbbbbb"), &previous);
  CHECK(status_of(record.conditions, "Ready") == "False/StepFailed");
  CHECK(record.condition("Ready")->message == "patch-dcs c: 503");
  CHECK(status_of(record.conditions, "Stalled") == "True/StepFailed");
  CHECK(status_of(record.conditions, "Reconciling") == "False/Idle");
  CHECK(status_of(record.conditions, "Degraded") == "True/BelowDeclared");
  CHECK(record.condition("Degraded")->message == "1 of 2 sync standby(s)");
  CHECK(record.last_applied_revision == "aaaaaaaaaaaa");
}

TEST_CASE("history: not converged within the wait is Reconciling; members down and restarts are named") {
  auto c = pgc::testing::make_cluster(3, ReplicationMode::async);
  auto o = pgc::testing::healthy(c, 0);
  o.members[2].state = "stopped";
  o.members[1].pending_restart = true;
  ClusterOutcome outcome{"c", false, 2, {"c-2 is stopped"}, {}, {}, {}};
  auto conditions = cluster_conditions(c, o, nullptr, &outcome);
  CHECK(status_of(conditions, "Ready") == "False/NotConverged");
  CHECK(status_of(conditions, "Reconciling") == "True/Progressing");
  CHECK(status_of(conditions, "Stalled") == "False");
  CHECK(status_of(conditions, "PendingRestart") == "True/RestartPending");
  for (const auto& cond : conditions) {
    if (cond.type == "PendingRestart") CHECK(cond.message == "c-1 must restart to apply settings");
    if (cond.type == "Degraded") CHECK(cond.message == "c-2 stopped");
  }
}

TEST_CASE("history: status (no apply) reports pending changes; a suspended cluster is Ready Unknown") {
  auto c = pgc::testing::make_cluster(3, ReplicationMode::sync, 1);
  auto o = pgc::testing::healthy(c, 1);
  ClusterPlan plan;
  plan.name = "c";
  plan.changes.resize(2);
  CHECK(status_of(cluster_conditions(c, o, &plan, nullptr), "Ready") == "False/ChangesPending");
  CHECK(status_of(cluster_conditions(c, o, nullptr, nullptr), "Ready") == "True/Converged");
  c.suspended = true;
  c.suspended_by = "stackgres.io/reconciliation-pause";
  auto suspended = cluster_conditions(c, o, &plan, nullptr);
  CHECK(status_of(suspended, "Ready") == "Unknown/Suspended");
  CHECK(status_of(suspended, "Suspended") == "True/Annotation");
}

TEST_CASE("history: records survive a JSON round trip") {
  RunRecord r;
  r.command = "serve";
  r.trigger = "webhook:github";
  r.revision = revision("0123456789abcdef");
  r.revision.rewound = true;
  r.started_at = "2026-12-01T19:28:34Z";
  r.duration_s = 3.25;
  r.changes_planned = 3;
  r.changes_applied = 2;
  r.result = "failure";
  r.errors = {"c: step failed"};
  r.clusters.push_back({"default", "c", {{"Ready", "False", "StepFailed", "x"}}, "abc", 2, 1, true});
  auto parsed = run_record_from_json(to_json(r));
  REQUIRE(parsed);
  const auto& back = *parsed;
  CHECK(to_json(back) == to_json(r));
  CHECK(back.revision.describe() ==
        "0123456 \"strict-sync-all for prod\" (rewound: not a descendant of the previous revision)");
}

TEST_CASE("history: append keeps the newest runs, 0600, and a damaged file is set aside") {
  TempDir dir;
  History history(dir.path(), 3);
  CHECK(history.load()->empty());
  for (int i = 0; i < 5; ++i) {
    RunRecord r;
    r.started_at = "run-" + std::to_string(i);
    REQUIRE(history.append(r));
  }
  auto all = history.load();
  REQUIRE(all);
  REQUIRE(all->size() == 3);
  CHECK(all->front().started_at == "run-2");
  CHECK((*history.last())->started_at == "run-4");
  CHECK(std::filesystem::status(history.path()).permissions() ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));

  std::ofstream(history.path()) << "{not json";
  RunRecord r;
  r.started_at = "after-damage";
  REQUIRE(history.append(r));
  CHECK(history.load()->size() == 1);
  CHECK(damaged_copies(dir.path()).size() == 1);
}

TEST_CASE("history: a field of the wrong type is damage: no exception, moved aside with a warning, kept") {
  // Each would make nlohmann's value()/get() throw type_error, which ended `serve`.
  const std::vector<std::string> damaged_runs = {
      R"({"durationSeconds": "3s"})",
      R"({"revision": {"rewound": "yes"}})",
      R"({"changesPlanned": -1})",
      R"({"clusters": [{"syncStandbys": {"desired": "two"}}]})",
      R"({"clusters": [{"suspended": 1}]})",
      R"({"errors": "one"})",
      R"({"clusters": {"a": 1}})",
      R"("a string, not a run")",
      R"({"clusters": [{"conditions": [7]}]})",
  };
  for (const auto& run : damaged_runs) {
    INFO(run);
    TempDir dir;
    History history(dir.path());
    const std::string text = R"({"kind": "pgconverge-history", "version": 1, "runs": [{"result": "success"}, )" + run + "]}";
    std::ofstream(history.path()) << text;
    pgc::Result<std::vector<RunRecord>> loaded = std::vector<RunRecord>{};
    CHECK_NOTHROW(loaded = history.load());
    REQUIRE_FALSE(loaded);
    CHECK(loaded.error().message.find("damaged") != std::string::npos);
    CHECK(loaded.error().message.find("runs[1]") != std::string::npos);
    auto aside = damaged_copies(dir.path());
    REQUIRE(aside.size() == 1);
    CHECK(loaded.error().message.find(aside.front().string()) != std::string::npos);
    std::ifstream in(aside.front());
    CHECK(read_all(in) == text);  // kept as it was
    CHECK_FALSE(std::filesystem::exists(history.path()));
    CHECK(history.load()->empty());  // the next load starts anew, after the warning
  }
}

TEST_CASE("history: records of earlier versions never show URL credentials again") {
  TempDir dir;
  History history(dir.path());
  std::ofstream(history.path()) << R"({"runs": [{"result": "failure",
      "revision": {"source": "https://deploy:s3cret@git.example/r.git, /etc/pgc", "fetchError": "git https://deploy:***@git.example/r.git: x"},
      "errors": ["git https://TOKEN123@git.example/r.git: fetch: refused"]}]})";
  auto loaded = history.load();
  REQUIRE(loaded);
  REQUIRE(loaded->size() == 1);
  const auto& run = loaded->front();
  CHECK(run.revision.source == "https://git.example/r.git, /etc/pgc");
  CHECK(run.revision.fetch_error == "git https://git.example/r.git: x");
  CHECK(run.errors.front() == "git https://git.example/r.git: fetch: refused");
}

TEST_CASE("history: print_history shows newest first with conditions") {
  RunRecord a;
  a.started_at = "2026-12-01T10:00:00Z";
  a.result = "success";
  a.trigger = "poll";
  a.revision = revision("1111111aaaa");
  a.changes_applied = 2;
  a.changes_planned = 2;
  a.clusters.push_back({"default", "c", {{"Ready", "True", "Converged", ""}, {"Degraded", "False", "", ""}},
                        "1111111aaaa", 1, 1, false});
  RunRecord b = a;
  b.started_at = "2026-12-01T11:00:00Z";
  b.result = "no-change";
  b.changes_applied = 0;
  b.changes_planned = 0;
  std::ostringstream out;
  print_history({a, b}, out);
  auto text = out.str();
  CHECK(text.find("2026-12-01T11:00:00Z") < text.find("2026-12-01T10:00:00Z"));
  CHECK(text.find("no-change") != std::string::npos);
  CHECK(text.find("    default/c: Ready=True (Converged), lastAppliedRevision 1111111aaaa") != std::string::npos);
}

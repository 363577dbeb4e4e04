// The waits (reconciler/waits.cpp) on a fake World: a wait ends at the first error waiting cannot
// fix (counted in observations, not time), retries the ones that may pass, and ends at the
// apply's shared deadline (ApplyDeadline) before its own bound.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "core_fixtures.hpp"
#include "reconciler/waits.hpp"

using namespace pgc;
using namespace pgc::reconciler;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A member's Patroni: GET /cluster shows c-0 leading in leader_state and c-1 streaming; or, when
// refusal is set, every call fails with it (an Error whose kind the test chooses).
class ScriptedPatroni final : public providers::PatroniClient {
 public:
  ScriptedPatroni(std::optional<Error> refusal, std::string leader_state)
      : refusal_(std::move(refusal)), leader_state_(std::move(leader_state)) {}
  Result<nlohmann::json> cluster() override {
    if (refusal_) return std::unexpected(*refusal_);
    return nlohmann::json{{"members",
                           {{{"name", "c-0"}, {"host", "10.0.0.11"}, {"role", "leader"}, {"state", leader_state_}},
                            {{"name", "c-1"}, {"host", "10.0.0.12"}, {"role", "replica"}, {"state", "streaming"}}}}};
  }
  Result<nlohmann::json> patroni() override { return cluster(); }
  Result<nlohmann::json> config() override {
    if (refusal_) return std::unexpected(*refusal_);
    return nlohmann::json::object();
  }
  Result<nlohmann::json> patch_config(const nlohmann::json&) override { return fail("not used"); }
  Result<providers::HttpResponse> reload() override { return fail("not used"); }
  Result<providers::HttpResponse> restart(bool) override { return fail("not used"); }
  Result<providers::HttpResponse> switchover(const std::string&, const std::string&) override {
    return fail("not used");
  }
  Result<providers::HttpResponse> request(const std::string&, const std::string&,
                                          const std::optional<nlohmann::json>&) override {
    return fail("not used");
  }

 private:
  std::optional<Error> refusal_;
  std::string leader_state_;
};

// Patroni as above on every member (or refusing on the addresses in refusals); PostgreSQL
// failing with pg_error on every member. Counts GET /cluster rounds through PostgreSQL calls and
// Patroni clients made.
class ScriptedWorld final : public World {
 public:
  std::map<std::string, Error> refusals;  // address → what its REST API answers
  Error pg_error{"postgres 10.0.0.11:5432: connect: connection refused"};
  std::string leader_state = "running";
  std::atomic<int> pg_calls{0};

  Result<std::unique_ptr<providers::RemoteHost>> connect(const manifests::Host&) override {
    return fail("no SSH in unit tests");
  }
  std::unique_ptr<providers::PatroniClient> patroni(const providers::PatroniEndpoint& endpoint) override {
    auto it = refusals.find(endpoint.address);
    return std::make_unique<ScriptedPatroni>(it == refusals.end() ? std::nullopt : std::optional<Error>(it->second),
                                             leader_state);
  }
  Result<providers::PgObservation> postgres(const providers::PgConnection&) override {
    ++pg_calls;
    return std::unexpected(pg_error);
  }
  Result<bool> dcs_has_any(const std::vector<std::string>&, const std::vector<std::string>&,
                                   const std::optional<pgc::providers::EtcdTls>&) override { return false; }
};

const Error k_wrong_password_error{"postgres 10.0.0.11:5432: connect: FATAL:  password authentication failed",
                                   k_wrong_password};

struct WaitCase {
  DesiredCluster cluster = testing::make_cluster(2, manifests::ReplicationMode::async);
  ClusterSecrets secrets = testing::fixed_secrets();
  ScriptedWorld world;
  std::ostringstream out;
  Progress progress{out, Progress::Style::quiet};
  WaitTally tally;

  // wait_for(never ready) with PostgreSQL observed, bounded by timeout and apply.
  Result<ObservedCluster> wait_never(std::chrono::seconds timeout, ApplyDeadline apply = {}) {
    ScopedTally scoped(&tally);
    auto token = progress.begin("c", "test");
    WaitSpec spec{.timeout = timeout, .what = "the impossible", .with_postgres = true, .apply = apply};
    return wait_for(cluster, secrets, world, spec, progress, token, [](const ObservedCluster&) { return false; });
  }
  Verification verify(std::chrono::seconds timeout, ApplyDeadline apply = {}) {
    WaitSpec spec{.timeout = timeout, .what = "convergence", .with_postgres = true, .apply = apply};
    return wait_converged(cluster, secrets, world, spec, 2, &progress, nullptr, &tally);
  }
};

bool says(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("waits: a permanent error from the leader's PostgreSQL ends a wait at the first observation") {
  WaitCase w;
  w.world.pg_error = k_wrong_password_error;
  auto start = Clock::now();
  auto got = w.wait_never(60s);
  REQUIRE_FALSE(got);
  CHECK(w.tally.observations == 1);
  CHECK(Clock::now() - start < 10s);  // not the 60 s bound (slack for a loaded machine)
  CHECK(got.error().is_permanent());
  CHECK(got.error().permanent == k_wrong_password);
  CHECK(got.error().message ==
        "waiting for the impossible: the PostgreSQL of leader c-0 on host h1: " + k_wrong_password_error.message);
  CHECK(says(got.error().describe(), ": not retried: a wrong password does not fix itself"));
}

TEST_CASE("waits: a transient error is observed again until the wait's bound") {
  WaitCase w;  // PostgreSQL refuses the connection: it may be starting
  auto got = w.wait_never(1s);
  REQUIRE_FALSE(got);
  CHECK_FALSE(got.error().is_permanent());
  CHECK(w.tally.observations >= 2);
  CHECK(got.error().message == "timed out after 1s waiting for the impossible");
}

TEST_CASE("waits: PostgreSQL refusing a leader Patroni does not report running yet is not final") {
  // During a bootstrap PostgreSQL runs before Patroni sets the superuser's password.
  WaitCase w;
  w.world.pg_error = k_wrong_password_error;
  w.world.leader_state = "starting";
  auto got = w.wait_never(1s);
  REQUIRE_FALSE(got);
  CHECK_FALSE(got.error().is_permanent());
  CHECK(w.tally.observations >= 2);
}

TEST_CASE("waits: after a reload, PostgreSQL's refusal is final only once Patroni's loop has passed") {
  WaitCase w;
  w.world.pg_error = Error{"postgres 10.0.0.11:5432: connect: FATAL:  no pg_hba.conf entry for host", k_no_hba_entry};
  w.tally.auth_settle_until = Clock::now() + 1200ms;
  auto got = w.wait_never(60s);
  REQUIRE_FALSE(got);
  CHECK(got.error().permanent == k_no_hba_entry);
  CHECK(w.tally.observations >= 3);  // 500 ms apart: observed again until the settle time
  CHECK(w.tally.observations <= 6);  // and not much longer
}

TEST_CASE("waits: the REST API refusing pgconverge on every member is final; on one member it is not") {
  const Error forbidden{"patroni 10.0.0.11:8008: GET /cluster: HTTP 401", k_http_forbidden};
  SECTION("every member answers 401") {
    WaitCase w;
    w.world.refusals = {{"10.0.0.11", forbidden}, {"10.0.0.12", forbidden}};
    auto got = w.wait_never(60s);
    REQUIRE_FALSE(got);
    CHECK(w.tally.observations == 1);
    CHECK(got.error().permanent == k_http_forbidden);
    CHECK(says(got.error().message, "Patroni REST API: patroni 10.0.0.11:8008: GET /cluster: HTTP 401"));
  }
  SECTION("one member answers 401, the other does not answer yet") {
    WaitCase w;
    w.world.refusals = {{"10.0.0.11", forbidden}, {"10.0.0.12", Error{"connection refused"}}};
    auto got = w.wait_never(1s);
    REQUIRE_FALSE(got);
    CHECK_FALSE(got.error().is_permanent());
    CHECK(w.tally.observations >= 2);
  }
}

TEST_CASE("waits: the verification ends at a permanent error and says so") {
  WaitCase w;
  w.world.pg_error = k_wrong_password_error;
  auto v = w.verify(60s);
  CHECK(w.tally.observations == 1);
  REQUIRE(v.permanent);
  CHECK(v.permanent->permanent == k_wrong_password);
  CHECK_FALSE(v.differences.empty());
  CHECK_FALSE(v.bound_reached);
  CHECK(w.world.pg_calls == 2);  // both members asked once
}

TEST_CASE("waits: the apply's deadline ends a wait before its own bound, and the error says which") {
  WaitCase w;
  auto start = Clock::now();
  auto got = w.wait_never(60s, ApplyDeadline::starting_now(1s));
  auto took = Clock::now() - start;
  REQUIRE_FALSE(got);
  CHECK(got.error().message ==
        "the apply's --wait-timeout of 1s (all passes and waits) was reached while waiting for the impossible");
  CHECK(took >= 1s);
  CHECK(took < 10s);

  auto v = w.verify(60s, ApplyDeadline::starting_now(1s));
  CHECK(v.bound_reached);
  CHECK_FALSE(v.permanent);

  // A deadline already passed: one observation, no pause.
  WaitCase late;
  auto passed = ApplyDeadline{Clock::now() - 1s, 5s};
  auto lv = late.verify(60s, passed);
  CHECK(lv.bound_reached);
  CHECK(late.tally.observations == 1);
}

TEST_CASE("waits: ApplyDeadline cuts each bound to what is left") {
  ApplyDeadline none;
  CHECK_FALSE(none.passed());
  CHECK(none.left(30s) == 30s);
  auto before = Clock::now();
  auto cut = none.cut(5s);
  CHECK(cut >= before + 5s);
  CHECK(cut <= Clock::now() + 5s);

  auto d = ApplyDeadline::starting_now(10s);
  CHECK_FALSE(d.passed());
  CHECK(d.left(5s) == 5s);
  CHECK(d.left(60s) <= 10s);
  CHECK(d.left(60s) > 8s);
  CHECK(d.cut(60s) == d.at);

  ApplyDeadline gone{Clock::now() - 1s, 10s};
  CHECK(gone.passed());
  CHECK(gone.left(60s) == 0ms);
  CHECK(gone.left(60s, 1000ms) == 1000ms);  // a command's floor
  CHECK(gone.reached() == "the apply's --wait-timeout of 10s (all passes and waits) was reached");
}

TEST_CASE("errors: context keeps the kind; describe says why a permanent one was not retried") {
  Error e{"postgres 10.0.0.11:5432: connect: FATAL: no pg_hba.conf entry", k_no_hba_entry};
  auto wrapped = e.with_context("host h1").with_context("verify");
  CHECK(wrapped.message == "verify: host h1: " + e.message);
  CHECK(wrapped.permanent == k_no_hba_entry);
  CHECK(wrapped.describe() == wrapped.message + ": not retried: " + k_no_hba_entry);
  Error transient{"connection refused"};
  CHECK_FALSE(transient.with_context("x").is_permanent());
  CHECK(transient.describe() == "connection refused");
  auto r = [&]() -> Result<int> {
    PGC_TRY(Result<void>(fail_permanent("denied", k_auth_refused)));
    return 1;
  }();
  REQUIRE_FALSE(r);
  CHECK(r.error().permanent == k_auth_refused);
}

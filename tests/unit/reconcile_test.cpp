// prepare() — load → compile → probe → place → secrets → observe → plan — without a lab: bare
// hosts that answer the probe, Patroni that does not answer yet (run_fakes.hpp).
#include <catch2/catch.hpp>

#include <sstream>

#include "reconciler/reconcile.hpp"
#include "tests/unit/run_fakes.hpp"

using namespace pgc;
using namespace pgc::reconciler;

namespace {

struct Prepare {
  testing::RunManifests manifests;
  test::TempDir state{"pgc-state"};
  testing::BareWorld world;
  RunOptions options;
  std::ostringstream err;

  Prepare() {
    options.sources = {manifests.path()};
    options.state_dir = state.path();
  }
  Result<Prepared> operator()() {
    Sessions sessions(world);
    return prepare(options, world, sessions, err);
  }
};

}  // namespace

TEST_CASE("prepare: bare hosts that answer the probe give a bootstrap plan with new secrets") {
  Prepare run;
  run.manifests.cluster("c", 1);
  auto p = run();
  INFO(run.err.str());
  REQUIRE(p);
  CHECK(run.world.probes == 2);
  REQUIRE(p->desired.clusters.size() == 1);
  CHECK(p->observed.hosts.at("h1").reachable);
  CHECK_FALSE(p->observed.clusters.at("c").api_reachable);
  REQUIRE(p->plan.clusters.size() == 1);
  CHECK(p->plan.clusters[0].bootstrap);
  CHECK(p->plan.clusters[0].errors.empty());
  CHECK(p->plan.has_changes());
  CHECK(p->new_secrets == std::set<std::string>{"c"});
  CHECK(p->secrets.contains("c"));
  CHECK_FALSE(p->plan.clusters[0].suspended);
}

TEST_CASE("prepare: a suspended cluster is planned like any other and marked suspended") {
  Prepare run;
  run.manifests.cluster("c", 1, /*suspended=*/true);
  auto p = run();
  REQUIRE(p);
  REQUIRE(p->plan.clusters.size() == 1);
  CHECK(p->plan.clusters[0].suspended);
  CHECK_FALSE(p->plan.clusters[0].changes.empty());
}

TEST_CASE("prepare: --cluster keeps one cluster, after every manifest was checked") {
  Prepare run;
  run.manifests.cluster("c", 1);
  run.manifests.cluster("d", 3);
  run.options.cluster = "d";
  auto p = run();
  REQUIRE(p);
  REQUIRE(p->plan.clusters.size() == 1);
  CHECK(p->plan.clusters[0].name == "d");

  run.options.cluster = "e";
  auto none = run();
  REQUIRE_FALSE(none);
  CHECK(none.error().message == "no SGCluster named \"e\" in the manifests");
}

TEST_CASE("prepare: invalid manifests: the diagnostics on err, nothing observed") {
  Prepare run;
  run.manifests.cluster("c", 1);
  run.manifests.invalid_cluster_c();
  auto p = run();
  REQUIRE_FALSE(p);
  CHECK(p.error().message == "invalid manifests; nothing was observed or applied");
  CHECK(run.err.str().find("c.yaml:8:") != std::string::npos);
  CHECK(run.world.connects == 0);
}

TEST_CASE("prepare: while a host does not answer no secrets are generated, and the reason leads each plan's errors") {
  Prepare run;
  run.manifests.cluster("c", 1);
  run.manifests.cluster("d", 3);
  run.world.unreachable = {"h2"};
  auto p = run();
  REQUIRE(p);
  CHECK_FALSE(p->observed.hosts.at("h2").reachable);
  CHECK(p->observed.hosts.at("h3").reachable);
  CHECK(p->new_secrets.empty());
  CHECK(p->secrets.empty());
  REQUIRE(p->plan.clusters.size() == 2);
  for (const auto& cp : p->plan.clusters) {
    REQUIRE_FALSE(cp.errors.empty());
    CHECK(cp.errors.front().starts_with("cluster " + cp.name + ": no secrets in "));
    CHECK(cp.errors.front().find("host h2: connection refused") != std::string::npos);
  }
  CHECK(p->plan.has_errors());
}

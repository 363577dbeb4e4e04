// Secret rotation as a planned change (reconciler/rotation.hpp) and its state file.
#include <catch2/catch.hpp>

#include "core_fixtures.hpp"
#include "reconciler/rotation.hpp"
#include "reconciler/secrets.hpp"
#include "reconciler/sidecars.hpp"
#include "tests/support/temp_dir.hpp"

using namespace pgc::reconciler;

namespace {

DesiredCluster named_cluster() {
  auto c = pgc::testing::make_cluster(2, pgc::manifests::ReplicationMode::async);
  for (auto& m : c.members) {
    auto& auth = m.patroni_config["postgresql"]["authentication"];
    auth["superuser"]["username"] = "postgres";
    auth["replication"]["username"] = "replicator";
    auth["rewind"]["username"] = "rewind_user";
  }
  c.roles.push_back(ManagedRole{k_pgbouncer_auth_user, SecretKind::pgbouncer, false, {}});
  return c;
}

// A plan of cluster c with one change: member c-0's Patroni config drifted.
ClusterPlan plan_with_config_drift() {
  ClusterPlan cp;
  cp.name = "c";
  cp.changes.push_back(Change{.subject = "member c-0 (h1): /etc/patroni/15-c.yml",
                              .reason = "drift",
                              .step = steps::WriteConfig{},
                              .cluster = "c",
                              .member = "c-0",
                              .host = "h1"});
  return cp;
}

}  // namespace

TEST_CASE("rotation: the roles of each kind, by the names the compiled config gives them") {
  auto c = named_cluster();
  auto roles = rotation_roles(c, {SecretKind::superuser, SecretKind::replication, SecretKind::rewind,
                                  SecretKind::restapi, SecretKind::pgbouncer});
  REQUIRE(roles.size() == 4);
  CHECK(roles[0].name == "postgres");
  CHECK(roles[0].superuser);
  CHECK(roles[1].name == "replicator");
  CHECK_FALSE(roles[1].superuser);
  CHECK(roles[2].name == "rewind_user");
  CHECK(roles[3].name == "authenticator");
  CHECK(roles[3].password == std::optional<SecretKind>(SecretKind::pgbouncer));
  CHECK(rotation_roles(c, {SecretKind::restapi}).empty());
}

TEST_CASE("rotation: the step comes first, before any config gets the new password") {
  auto c = named_cluster();
  auto oc = pgc::testing::healthy(c, 0);
  ClusterPlan cp = plan_with_config_drift();
  plan_rotation(c, oc, {SecretKind::replication}, cp);
  REQUIRE(cp.changes.size() == 2);
  CHECK(is<steps::RotateSecrets>(cp.changes[0].step));
  CHECK(cp.changes[0].subject == "cluster c: secrets replication");
  CHECK(std::get<steps::RotateSecrets>(cp.changes[0].step).roles == std::vector<std::string>{"replicator"});
  CHECK(is<steps::WriteConfig>(cp.changes[1].step));
}

TEST_CASE("rotation: without a running leader nothing of the cluster is applied") {
  auto c = named_cluster();
  ObservedCluster oc;  // Patroni did not answer
  ClusterPlan cp = plan_with_config_drift();
  plan_rotation(c, oc, {SecretKind::superuser}, cp);
  CHECK(cp.changes.empty());
  REQUIRE(cp.errors.size() == 1);
  CHECK(cp.errors[0].find("waits for a running leader") != std::string::npos);
}

TEST_CASE("rotation: a new cluster simply starts with the new values") {
  auto c = named_cluster();
  ClusterPlan cp;
  cp.name = "c";
  cp.bootstrap = true;
  plan_rotation(c, ObservedCluster{}, {SecretKind::superuser}, cp);
  CHECK(cp.changes.empty());
  CHECK(cp.errors.empty());
}

TEST_CASE("rotation: the requested values wait in their own 0600 file until promoted") {
  pgc::test::TempDir dir;
  SecretStore store(dir.path());
  CHECK_FALSE(*store.load_rotation("ns", "c"));
  ClusterSecrets rotated;
  rotated.values[SecretKind::replication] = "NEWreplication";
  REQUIRE(store.save_rotation("ns", "c", rotated));
  auto file = dir.path() / "secrets" / "ns.c.rotate.json";
  CHECK(std::filesystem::status(file).permissions() ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  auto loaded = store.load_rotation("ns", "c");
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->values == rotated.values);
  CHECK_FALSE(*store.load("ns", "c"));  // the cluster's secrets file is a different one
  REQUIRE(store.remove_rotation("ns", "c"));
  CHECK_FALSE(*store.load_rotation("ns", "c"));
}

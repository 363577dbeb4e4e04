#include <catch2/catch.hpp>

#include "core_fixtures.hpp"
#include "reconciler/converged.hpp"

using namespace pgc::reconciler;
using pgc::manifests::ReplicationMode;

TEST_CASE("converged: expected sync standbys follow the mode and are capped by replicas") {
  CHECK(expected_sync_standbys(pgc::testing::make_cluster(4, ReplicationMode::strict_sync, 2)) == 2);
  CHECK(expected_sync_standbys(pgc::testing::make_cluster(4, ReplicationMode::sync_all)) == 3);
  CHECK(expected_sync_standbys(pgc::testing::make_cluster(6, ReplicationMode::strict_sync_all)) == 5);
  CHECK(expected_sync_standbys(pgc::testing::make_cluster(3, ReplicationMode::async)) == 0);
  CHECK(expected_sync_standbys(pgc::testing::make_cluster(2, ReplicationMode::sync, 3)) == 1);
}

TEST_CASE("converged: a healthy cluster has no differences, and each kind of difference is named") {
  auto c = pgc::testing::make_cluster(4, ReplicationMode::strict_sync, 2);
  auto o = pgc::testing::healthy(c, 2);
  CHECK(differences(c, o).empty());

  auto fewer = pgc::testing::healthy(c, 1);
  fewer.postgres["c-0"].sync_states[1].second = "sync";  // PostgreSQL already has 2, Patroni shows 1
  CHECK(differences(c, fewer) == std::vector<std::string>{"1 sync standby(s) in Patroni (c-1), expected 2"});

  auto tagged = pgc::testing::healthy(c, 2);
  tagged.members[3].tags["nofailover"] = true;
  CHECK(differences(c, tagged) == std::vector<std::string>{"c-3 has nofailover true, declared false"});

  auto dcs = pgc::testing::healthy(c, 2);
  dcs.dcs_config["synchronous_mode_strict"] = false;
  CHECK(differences(c, dcs) == std::vector<std::string>{"DCS synchronous_mode_strict is false, declared true"});

  auto extra = pgc::testing::healthy(pgc::testing::make_cluster(5, ReplicationMode::strict_sync, 2), 2);
  CHECK(differences(c, extra) == std::vector<std::string>{"c-4 is a member but not declared"});

  auto down = pgc::testing::healthy(c, 2);
  down.members[2].state = "stopped";
  down.members[2].role = "replica";
  auto d = differences(c, down);
  CHECK(d.front() == "c-2 is stopped");
}

TEST_CASE("converged: a leader pgconverge cannot query over libpq is not converged, with the fix named") {
  auto c = pgc::testing::make_cluster(3, ReplicationMode::sync, 1);
  auto o = pgc::testing::healthy(c, 1);
  o.postgres["c-0"] = {};
  o.postgres["c-0"].error =
      "postgres 10.250.0.11:5432: FATAL:  no pg_hba.conf entry for host \"10.250.0.1\", user \"postgres\"";
  CHECK(differences(c, o) ==
        std::vector<std::string>{"the leader's PostgreSQL is not reachable over libpq (" + o.postgres["c-0"].error +
                                 "); pgconverge connects through the host's SSH, from the host's own address, which the pg_hba "
                                 "pgconverge writes admits: was pg_hba changed on the host?"});
  o.postgres["c-0"].error = "postgres 10.250.0.11:5432: timeout expired";
  CHECK(differences(c, o) == std::vector<std::string>{
                                 "the leader's PostgreSQL is not reachable over libpq (postgres 10.250.0.11:5432: "
                                 "timeout expired)"});
}

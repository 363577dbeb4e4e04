#include <catch2/catch.hpp>

#include "core_fixtures.hpp"
#include "reconciler/status.hpp"

#include <sstream>

using namespace pgc::reconciler;
using pgc::manifests::ReplicationMode;

TEST_CASE("status: the table has the shape of the seed pages' patronictl list") {
  auto c = pgc::testing::make_cluster(4, ReplicationMode::strict_sync, 2);
  c.name = "sync-cluster";
  auto o = pgc::testing::healthy(c, 2);
  o.name = "sync-cluster";
  const char* names[] = {"sync-cluster-0", "sync-cluster-1", "sync-cluster-2", "sync-cluster-3"};
  const char* hosts[] = {"10.244.0.11", "10.244.0.10", "10.244.0.4", "10.244.0.8"};
  for (int i = 0; i < 4; ++i) {
    o.members[static_cast<std::size_t>(i)].name = names[i];
    o.members[static_cast<std::size_t>(i)].host = hosts[i];
    o.members[static_cast<std::size_t>(i)].port = 7433;
    o.members[static_cast<std::size_t>(i)].timeline = 2;
  }
  o.members[0].state = "running";
  // Exactly the table of the strict-sync seed page.
  CHECK(patronictl_table(o) ==
        "+ Cluster: sync-cluster (7373750354182599290) -----+-----------+----+-----------+\n"
        "| Member         | Host             | Role         | State     | TL | Lag in MB |\n"
        "+----------------+------------------+--------------+-----------+----+-----------+\n"
        "| sync-cluster-0 | 10.244.0.11:7433 | Leader       | running   |  2 |           |\n"
        "| sync-cluster-1 | 10.244.0.10:7433 | Sync Standby | streaming |  2 |         0 |\n"
        "| sync-cluster-2 | 10.244.0.4:7433  | Sync Standby | streaming |  2 |         0 |\n"
        "| sync-cluster-3 | 10.244.0.8:7433  | Replica      | streaming |  2 |         0 |\n"
        "+----------------+------------------+--------------+-----------+----+-----------+\n");
}

TEST_CASE("status: declared vs observed replication, pending restarts and drift") {
  auto c = pgc::testing::make_cluster(3, ReplicationMode::sync_all);
  auto o = pgc::testing::healthy(c, 2);
  std::ostringstream out;
  print_status(c, o, nullptr, out);
  CHECK(out.str().find("Replication: declared sync-all (sync standbys 2, strict off); observed synchronous (strict off)\n"
                       "Sync standbys: desired 2 / effective 2 / actual 2 (c-1, c-2)\n"
                       "Pending restart: none\n"
                       "Drift: none (converged)\n") != std::string::npos);
  o.members[2].pending_restart = true;
  std::ostringstream again;
  print_status(c, o, nullptr, again);
  CHECK(again.str().find("Pending restart: c-2\nDrift:\n  - c-2 has a pending restart\n") != std::string::npos);
  auto j = status_to_json(c, o, nullptr);
  CHECK(j["declared"]["effectiveSyncStandbys"] == 2);
  CHECK(j["members"][0]["role"] == "Leader");
}

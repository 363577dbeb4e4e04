// Pool entries that name pgconverge's own roles (manifests/pool_roles.hpp).
#include <catch2/catch.hpp>

#include "core_fixtures.hpp"
#include "manifests/pool_roles.hpp"
#include "reconciler/sidecars.hpp"

using namespace pgc::manifests;

TEST_CASE("pool roles: user= and auth_user= naming a pgconverge role, in any spelling", "[manifests][security]") {
  CHECK(pool_entry_problem("host=/var/run/postgresql dbname=postgres user=authenticator"));
  CHECK(pool_entry_problem("dbname=postgres user='Postgres'"));
  CHECK(pool_entry_problem("dbname=app   user =  replicator"));
  CHECK(pool_entry_problem("dbname=app auth_user=authenticator"));
  CHECK(pool_entry_problem("USER=prometheus"));
  CHECK(pool_entry_problem("user=\"rewind_user\""));
  CHECK(pool_entry_problem("dbname=app user='authenticator"));  // unreadable: refused too
  CHECK_FALSE(pool_entry_problem("dbname=app user=app"));
  CHECK_FALSE(pool_entry_problem("dbname=authenticator"));  // a database of that name is no role
  CHECK_FALSE(pool_entry_problem(""));
  auto pairs = pgbouncer_connstring("host=h  user = 'a b''c' port=6432");
  REQUIRE(pairs);
  CHECK(*pairs == std::vector<std::pair<std::string, std::string>>{{"host", "h"}, {"user", "a b'c"}, {"port", "6432"}});
}

TEST_CASE("pool roles: the list covers every role the compiler gives pgconverge", "[manifests][security]") {
  CHECK(is_pgconverge_role(pgc::reconciler::k_pgbouncer_auth_user));
  CHECK(is_pgconverge_role(pgc::reconciler::k_exporter_role));
  for (const auto* name : {"postgres", "replicator", "rewind_user", "pgbouncer_admin", "pgbouncer_stats"})
    CHECK(is_pgconverge_role(name));
  CHECK_FALSE(is_pgconverge_role("app"));
}

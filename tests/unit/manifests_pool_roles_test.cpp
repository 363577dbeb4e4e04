// Pool entries that name pgconverge's own roles (manifests/pool_roles.hpp).
#include <catch2/catch.hpp>

#include "core_fixtures.hpp"
#include "manifests/pgbouncer_grammar.hpp"
#include "manifests/pool_roles.hpp"
#include "reconciler/sidecars.hpp"

using namespace pgc::manifests;

TEST_CASE("pool roles: a database entry cannot log in as, or look passwords up through, a pgconverge role",
          "[manifests][security]") {
  // The PgBouncer grammar refuses user= and auth_user= in every entry, whatever they name.
  for (const auto* entry : {"host=/var/run/postgresql dbname=postgres user=authenticator", "dbname=postgres user='Postgres'",
                            "dbname=app   user =  replicator", "dbname=app auth_user=authenticator", "USER=prometheus",
                            "user=\"rewind_user\"", "dbname=app user='authenticator"})
    CHECK(entry_problem(EntrySection::databases, entry));
  CHECK_FALSE(entry_problem(EntrySection::databases, "dbname=authenticator"));  // a database of that name is no role
  CHECK(is_pgconverge_role(" 'Postgres' "));
}

TEST_CASE("pool roles: the list covers every role the compiler gives pgconverge", "[manifests][security]") {
  CHECK(is_pgconverge_role(pgc::reconciler::k_pgbouncer_auth_user));
  CHECK(is_pgconverge_role(pgc::reconciler::k_exporter_role));
  for (const auto* name : {"postgres", "replicator", "rewind_user", "pgbouncer_admin", "pgbouncer_stats"})
    CHECK(is_pgconverge_role(name));
  CHECK_FALSE(is_pgconverge_role("app"));
}

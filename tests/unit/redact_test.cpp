// What is shown of values observed on hosts (reconciler/redact.hpp).
#include <catch2/catch.hpp>

#include "core_fixtures.hpp"
#include "reconciler/plan_output.hpp"
#include "reconciler/redact.hpp"

#include <sstream>

using namespace pgc::reconciler;

TEST_CASE("redact: credentials in conninfo, JSON and URLs, and the cluster's own secrets") {
  auto s = pgc::testing::fixed_secrets();
  CHECK(redact_text("host=10.0.0.11 port=5432 user=replicator password=REPLsecret2 sslmode=prefer", &s) ==
        "host=10.0.0.11 port=5432 user=replicator password=<redacted> sslmode=prefer");
  // A quoted value ends at its closing quote; a doubled quote inside it does not end it early
  // enough to show the rest as a value.
  CHECK(redact_text("user=x password='it\\'s a secret' application_name=y") ==
        "user=x password=<redacted> application_name=y");
  CHECK(redact_text("user=x password = 'with space' dbname=y") == "user=x password = <redacted> dbname=y");
  CHECK(redact_text("sslpassword=abc host=h") == "sslpassword=<redacted> host=h");
  CHECK(redact_text(R"({"password":"hunter2","user":"u"})") == R"({"password":<redacted>,"user":"u"})");
  CHECK(redact_text("postgresql://app:hunter2@10.0.0.1/db") == "postgresql://app:<redacted>@10.0.0.1/db");
  CHECK(redact_text("PASSWORD=Hunter2") == "PASSWORD=<redacted>");
  // A secret pgconverge keeps, wherever it appears, in any spelling around it.
  CHECK(redact_text("application_name=xSUPERsecret1y", &s) == "application_name=x<redacted>y");
  // Words that only look alike stay.
  CHECK(redact_text("authenticator: password differs from the one pgconverge keeps") ==
        "authenticator: password differs from the one pgconverge keeps");
  CHECK(redact_text("max_connections=100") == "max_connections=100");
}

TEST_CASE("redact: a plan shows no credential observed on a host (GET /config, pg_settings, patroni.yml)") {
  auto s = pgc::testing::fixed_secrets();
  Plan plan;
  ClusterPlan cp;
  cp.name = "c";
  Change c{.subject = "cluster c: Patroni dynamic configuration",
           .before = "postgresql.parameters.primary_conninfo=host=h password=REPLsecret2",
           .after = "postgresql.parameters.primary_conninfo=(unset)",
           .reason = "drift",
           .step = steps::PatchDcs{},
           .cluster = "c"};
  c.fields.push_back(FieldChange{"postgresql.parameters.primary_conninfo", "user=r password=Foreign9", "(unset)"});
  cp.changes.push_back(c);
  cp.errors.push_back("member c-1: Patroni said: FATAL password authentication failed, password=Foreign9");
  plan.clusters.push_back(cp);
  plan.host_errors.push_back("host h1: probe: RESTsecret4 in the output");
  redact_plan(plan, {{"c", s}});
  std::ostringstream text;
  print_plan(plan, text);
  auto shown = text.str() + plan_to_json(plan).dump();
  for (const auto* secret : {"REPLsecret2", "Foreign9", "RESTsecret4"}) CHECK(shown.find(secret) == std::string::npos);
  CHECK(shown.find("primary_conninfo") != std::string::npos);
}

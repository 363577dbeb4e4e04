// Manifest text that reads as a secret reference is refused wherever it is (manifests/secret_text.hpp).
#include <catch2/catch.hpp>

#include "manifests/loader.hpp"
#include "manifests/secret_text.hpp"

using namespace pgc::manifests;

TEST_CASE("secret text: the placeholder form in any case, after white space; not inside other text",
          "[manifests][security]") {
  CHECK(looks_like_secret_reference("secret:superuser"));
  CHECK(looks_like_secret_reference("SECRET:replication"));
  CHECK(looks_like_secret_reference("  Secret:x"));
  CHECK(looks_like_secret_reference("secret:"));
  CHECK_FALSE(looks_like_secret_reference("%m secret:restapi"));
  CHECK_FALSE(looks_like_secret_reference("secret"));
  CHECK_FALSE(looks_like_secret_reference("secrets: 3"));
}

TEST_CASE("secret text: every key and value of a document, with its file:line:col and field",
          "[manifests][security]") {
  auto docs = parse_yaml("kind: SGPostgresConfig\n"
                         "spec:\n"
                         "  postgresql.conf:\n"
                         "    application_name: secret:superuser\n"
                         "    list: [ok, 'SECRET:rewind']\n"
                         "  'secret:key': 1\n",
                         "f.yaml");
  REQUIRE(docs);
  REQUIRE(docs->size() == 1);
  pgc::Diagnostics d;
  check_secret_text(docs->front(), d);
  REQUIRE(d.size() == 3);
  CHECK(d[0].str().find("f.yaml:4:23: spec.postgresql.conf.application_name: must not start with \"secret:\"") == 0);
  CHECK(d[1].str().find("f.yaml:5:16: spec.postgresql.conf.list[1]: must not start") == 0);
  CHECK(d[2].str().find("f.yaml:6:3: spec.secret:key: key must not start") == 0);
}

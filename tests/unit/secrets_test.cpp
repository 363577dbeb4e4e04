#include <catch2/catch.hpp>

#include "core_fixtures.hpp"
#include "reconciler/secrets.hpp"

#include <filesystem>

#include "tests/support/temp_dir.hpp"

using namespace pgc::reconciler;
using pgc::test::TempDir;

TEST_CASE("secrets: generated secrets are complete, long and distinct") {
  auto a = generate_secrets();
  auto b = generate_secrets();
  REQUIRE(a.complete());
  for (const auto& [kind, value] : a.values) {
    CHECK(value.size() == 32);
    CHECK(value != b.get(kind));
  }
}

TEST_CASE("secrets: the store writes 0600 files and reads them back") {
  TempDir dir;
  SecretStore store(dir.path());
  CHECK_FALSE(*store.load("ns", "c"));
  auto s = pgc::testing::fixed_secrets();
  REQUIRE(store.save("ns", "c", s));
  auto file = dir.path() / "secrets" / "ns.c.json";
  auto perms = std::filesystem::status(file).permissions();
  CHECK(perms == (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  auto loaded = store.load("ns", "c");
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->values == s.values);
}

TEST_CASE("secrets: references resolve, values recover from a config and redact everywhere") {
  auto c = pgc::testing::make_cluster(1, pgc::manifests::ReplicationMode::async);
  auto s = pgc::testing::fixed_secrets();
  auto resolved = resolve_secrets(c.members[0].patroni_config, s);
  CHECK(resolved["postgresql"]["authentication"]["superuser"]["password"] == "SUPERsecret1");
  CHECK(resolved["restapi"]["authentication"]["password"] == "RESTsecret4");
  auto recovered = recover_secrets(resolved);
  REQUIRE(recovered);
  CHECK(recovered->values == s.values);
  auto redacted = redact_secrets(resolved, s);
  CHECK(redacted.dump().find("secret") == std::string::npos);
  CHECK_FALSE(recover_secrets(c.members[0].patroni_config.at("tags")));
}

TEST_CASE("secrets: passwords go only to the credential fields, never to a look-alike string elsewhere",
          "[secrets][security]") {
  auto c = pgc::testing::make_cluster(1, pgc::manifests::ReplicationMode::async);
  auto s = pgc::testing::fixed_secrets();
  auto config = c.members[0].patroni_config;
  // What a manifest could have put anywhere (validation refuses it too): the strings stay as written.
  config["postgresql"]["parameters"]["application_name"] = "secret:superuser";
  config["postgresql"]["parameters"]["cluster_name"] = "secret:replication";
  config["bootstrap"]["dcs"]["postgresql"]["parameters"]["log_line_prefix"] = "secret:restapi";
  config["tags"]["note"] = nlohmann::json::array({"secret:rewind"});
  // A credential field holding another kind's reference is not filled with that kind either.
  config["restapi"]["authentication"]["password"] = "secret:superuser";
  auto resolved = resolve_secrets(config, s);
  CHECK(resolved["postgresql"]["parameters"]["application_name"] == "secret:superuser");
  CHECK(resolved["postgresql"]["parameters"]["cluster_name"] == "secret:replication");
  CHECK(resolved["bootstrap"]["dcs"]["postgresql"]["parameters"]["log_line_prefix"] == "secret:restapi");
  CHECK(resolved["tags"]["note"][0] == "secret:rewind");
  CHECK(resolved["restapi"]["authentication"]["password"] == "secret:superuser");
  CHECK(resolved["postgresql"]["authentication"]["superuser"]["password"] == "SUPERsecret1");
  CHECK(resolved["postgresql"]["authentication"]["replication"]["password"] == "REPLsecret2");
  for (const auto* secret : {"SUPERsecret1", "REPLsecret2", "REWINDsecret3", "RESTsecret4"}) {
    auto text = resolved.dump();
    auto first = text.find(secret);
    // Each value at most once: at its own field.
    CHECK((first == std::string::npos || text.find(secret, first + 1) == std::string::npos));
  }
}

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

// pgbouncer.ini read back as PgBouncer reads it, and the renderer refusing any text whose reading
// differs from what it meant (reconciler/pgbouncer_ini.cpp, render_pgbouncer_ini).
#include <catch2/catch.hpp>

#include "manifests/loader.hpp"
#include "reconciler/pgbouncer_ini.hpp"
#include "reconciler/sidecars.hpp"

using namespace pgc;
using namespace pgc::reconciler;

namespace {

manifests::SGPoolingConfig pool_with(std::map<std::string, std::string> pgbouncer,
                                     std::map<std::string, std::string> databases = {},
                                     std::map<std::string, std::string> users = {}) {
  manifests::SGPoolingConfig pool;
  pool.metadata.name = "pool";
  pool.metadata.namespace_ = "default";
  pool.pgbouncer = std::move(pgbouncer);
  pool.databases = std::move(databases);
  pool.users = std::move(users);
  return pool;
}

}  // namespace

TEST_CASE("pgbouncer.ini: read as PgBouncer reads it", "[pgbouncer_ini]") {
  auto parsed = parse_pgbouncer_ini("# c\n; c\n[databases]\napp = dbname=app\n\n[PGBouncer]\n  pool_mode=session  \n");
  REQUIRE(parsed);
  CHECK(*parsed == std::vector<IniEntry>{{"databases", "app", "dbname=app"}, {"pgbouncer", "pool_mode", "session"}});
  CHECK_FALSE(parse_pgbouncer_ini("%include /etc/passwd\n"));
  CHECK_FALSE(parse_pgbouncer_ini("[pgbouncer\n"));
  CHECK_FALSE(parse_pgbouncer_ini("log file = x\n"));
  CHECK_FALSE(parse_pgbouncer_ini("\"q\" = x\n"));
}

TEST_CASE("regression: the renderer refuses a key that opens a section, whatever validation let through",
          "[pgbouncer_ini][sidecars]") {
  // Before: "[pgbouncer]logfile = /tmp/x" went into pgbouncer.ini as written, and PgBouncer read
  // it as a new [pgbouncer] section (the rest of the line dropped, later lines overriding ours).
  auto pool = pool_with({{"[pgbouncer]logfile", "/tmp/x"}});
  auto rendered = render_pgbouncer_ini(&pool, "10.0.0.11");
  REQUIRE_FALSE(rendered);
  CHECK(rendered.error().message.starts_with("refusing to write pgbouncer.ini: "));
}

TEST_CASE("pgbouncer.ini: generated, no key or value a manifest holds adds a line, a section or a directive",
          "[pgbouncer_ini][sidecars]") {
  const std::vector<std::string> breaks{"\n", "\r\n", "\n[pgbouncer]\n", "\nauth_type = trust", "\n%include /x\n",
                                        "\nlogfile = /tmp/x"};
  int refused = 0;
  for (const auto& b : breaks) {
    for (const std::string section : {"pgbouncer", "databases", "users"}) {
      for (const bool in_key : {false, true}) {
        std::map<std::string, std::string> entries;
        if (in_key) entries["x" + b] = "1";
        else entries["pool_mode"] = "session" + b;
        auto pool = section == "pgbouncer" ? pool_with(entries)
                    : section == "databases" ? pool_with({}, entries)
                                             : pool_with({}, {}, entries);
        auto rendered = render_pgbouncer_ini(&pool, "10.0.0.11");
        INFO(section << (in_key ? " key" : " value") << " with " << b);
        CHECK_FALSE(rendered);
        ++refused;
      }
    }
  }
  CHECK(refused == 36);
}

TEST_CASE("pgbouncer.ini: the forbidden keys hold after parsing the rendered text back", "[pgbouncer_ini][sidecars]") {
  // A blocklisted key in another case is PgBouncer's same key: the renderer drops it, and the
  // check refuses any text in which one is set to anything but pgconverge's value.
  auto pool = pool_with({{"LOGFILE", "/tmp/x"}, {"Auth_Type", "trust"}, {"pool_mode", "transaction"}});
  auto rendered = render_pgbouncer_ini(&pool, "10.0.0.11");
  REQUIRE(rendered);
  auto entries = parse_pgbouncer_ini(*rendered);
  REQUIRE(entries);
  for (const auto& e : *entries) {
    CHECK(e.key != "LOGFILE");
    CHECK(e.key != "Auth_Type");
  }
  const std::vector<std::pair<std::string, std::string>> owned{{"auth_type", "md5"}};
  const std::vector<std::string> forbidden{"auth_type", "logfile"};
  const std::string text = "[pgbouncer]\nauth_type = md5\nLogFile = /tmp/x\n";
  std::vector<IniEntry> meant{{"pgbouncer", "auth_type", "md5"}, {"pgbouncer", "LogFile", "/tmp/x"}};
  auto checked = check_pgbouncer_ini(text, meant, owned, forbidden);
  REQUIRE_FALSE(checked);
  CHECK(checked.error().message == "pgbouncer.ini sets logfile, which only pgconverge may set");
  const std::string twice = "[pgbouncer]\nauth_type = md5\nAUTH_TYPE = trust\n";
  std::vector<IniEntry> meant_twice{{"pgbouncer", "auth_type", "md5"}, {"pgbouncer", "AUTH_TYPE", "trust"}};
  CHECK_FALSE(check_pgbouncer_ini(twice, meant_twice, owned, forbidden));
}

TEST_CASE("pgbouncer.ini: StackGres-style entries render and read back as written", "[pgbouncer_ini][sidecars]") {
  auto loaded = manifests::parse_text(
      "apiVersion: stackgres.io/v1\nkind: SGPoolingConfig\nmetadata: {name: pool}\nspec:\n  pgBouncer:\n"
      "    pgbouncer.ini:\n      pgbouncer: {pool_mode: transaction}\n"
      "      databases:\n        app: {dbname: app, connect_query: \"SET search_path = 'x'\"}\n"
      "      users:\n        alice: {pool_mode: session}\n",
      "b.yaml");
  REQUIRE(loaded.manifests.pooling_configs.size() == 1);
  auto rendered = render_pgbouncer_ini(&loaded.manifests.pooling_configs[0], "10.0.0.11");
  REQUIRE(rendered);
  auto entries = ini_entries(*rendered);
  CHECK(entries.at("databases.app") == "dbname=app connect_query='SET search_path = ''x'''");
  CHECK(entries.at("users.alice") == "pool_mode=session");
}

// SGPoolingConfig: keys follow PgBouncer's grammar, values stay on their line, database and user
// entries are connection strings of known options (manifests/pgbouncer_grammar.cpp), through the
// loader and validate().
#include <catch2/catch.hpp>

#include "manifests/loader.hpp"
#include "manifests/pgbouncer_grammar.hpp"

using namespace pgc;
using namespace pgc::manifests;
using Lines = std::vector<std::string>;

namespace {

// An SGPoolingConfig whose pgbouncer.ini (line 8 on) is the given block, validated alone.
Lines pooling(const std::string& block) {
  const std::string text = "apiVersion: stackgres.io/v1\nkind: SGPoolingConfig\nmetadata:\n  name: pool\nspec:\n"
                           "  pgBouncer:\n    pgbouncer.ini:\n" + block;
  auto loaded = parse_text(text, "b.yaml");
  validate(loaded.manifests, loaded.diagnostics);
  Lines out;
  for (const auto& d : loaded.diagnostics) out.push_back(d.str());
  return out;
}

std::string yaml_quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

TEST_CASE("regression: a pooling key cannot open a section ([pgbouncer]logfile)", "[manifests][pooling]") {
  CHECK(pooling("      pgbouncer:\n        \"[pgbouncer]logfile\": /tmp/x\n") ==
        Lines{"b.yaml:8:7: spec.pgBouncer.pgbouncer.ini.pgbouncer: invalid key \"[pgbouncer]logfile\" (must match "
              "^[A-Za-z0-9_.*-]+$: a PgBouncer key, which cannot open a section or end the line)"});
}

TEST_CASE("pooling: generated, keys outside PgBouncer's grammar are refused in every section", "[manifests][pooling]") {
  // Every character that opens a section, a comment or a directive, ends the key or quotes it.
  const std::vector<std::string> keys{"[pgbouncer]logfile", "[users]", "logfile ", " logfile", "log file",
                                      "logfile=", "a=b",     "%include",   "%include /etc/passwd", ";c", "#c",
                                      "\"q\"",    "'q'",     "k]",         "",  "caf\xc3\xa9", "a\tb", "a$b", "a/b"};
  for (const char* section : {"pgbouncer", "databases", "users"}) {
    for (const auto& key : keys) {
      INFO(section << " key " << key);
      auto lines = pooling(std::string("      ") + section + ":\n        " + yaml_quoted(key) + ": \"1\"\n");
      REQUIRE(lines.size() == 1);
      CHECK(lines[0].find("key") != std::string::npos);
    }
    for (const char* key : {"pool_size", "app-db", "a.b", "\"*x\"", "Mixed_1"}) {
      if (std::string(section) == "pgbouncer") continue;
      INFO(section << " key " << key);
      CHECK(pooling(std::string("      ") + section + ":\n        " + key + ": \"" +
                    (std::string(section) == "users" ? "pool_mode=session" : "dbname=x") + "\"\n")
                .empty());
    }
  }
}

TEST_CASE("pooling: the blocklist holds in any case", "[manifests][pooling]") {
  for (const char* key : {"logfile", "LOGFILE", "LogFile", "auth_type", "Auth_Type", "listen_addr", "resolv_conf"}) {
    INFO(key);
    CHECK(pooling(std::string("      pgbouncer:\n        ") + key + ": x\n") ==
          Lines{"b.yaml:9:9: spec.pgBouncer.pgbouncer.ini.pgbouncer." + std::string(key) +
                ": is managed by pgconverge and may not be set (StackGres' PgBouncer blocklist)"});
  }
}

TEST_CASE("pooling: database and user entries are connection strings of known options", "[manifests][pooling]") {
  CHECK(pooling("      databases:\n        app: {dbname: app, pool_size: '10', connect_query: \"SET x = 'y'\"}\n"
                "        other: \"dbname=other host=db.example port=5433\"\n"
                "      users:\n        alice: {pool_mode: session, max_user_connections: '5'}\n")
            .empty());
  CHECK(pooling("      databases:\n        app: \"dbname=app auth_user=postgres\"\n") ==
        Lines{"b.yaml:9:9: spec.pgBouncer.pgbouncer.ini.databases.app: option auth_user is refused: PgBouncer logs in "
              "as each client's own role, authenticated by pgconverge's auth_user and auth_query"});
  for (const char* entry : {"{dbname: app, user: authenticator}", "{dbname: app, password: x}", "\"dbname=a user=postgres\"",
                            "{dbname: app, evil: x}", "\"dbname=app host=/tmp\"", "\"dbname='unterminated\"",
                            "\"dbname=a\\\"b\"", "\"=x\""}) {
    INFO(entry);
    CHECK(pooling(std::string("      databases:\n        app: ") + entry + "\n").size() == 1);
  }
  CHECK(pooling("      users:\n        alice: {pool_mode: session, max_db_connections: 1}\n").size() == 1);
  CHECK(pooling("      databases:\n        \"*\": \"host=evil\"\n") ==
        Lines{"b.yaml:9:9: spec.pgBouncer.pgbouncer.ini.databases.*: the fallback database * is pgconverge's (the "
              "local PostgreSQL over its socket)"});
}

TEST_CASE("pgbouncer grammar: connection values are quoted as PgBouncer reads them back", "[manifests][pooling]") {
  CHECK(quote_connection_value("app") == "app");
  CHECK(quote_connection_value("SET x = 'y'") == "'SET x = ''y'''");
  CHECK(quote_connection_value("") == "''");
  for (const std::string value : {"app", "SET x = 'y'", "", "a'b", "a\\b", "x=y", "\"q\""}) {
    auto parsed = parse_connection_options("k=" + quote_connection_value(value) + " n=1");
    INFO(value);
    REQUIRE(parsed);
    CHECK(*parsed == std::vector<std::pair<std::string, std::string>>{{"k", value}, {"n", "1"}});
  }
}

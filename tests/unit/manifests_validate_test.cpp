#include <catch2/catch.hpp>

#include "manifests/loader.hpp"
#include "manifests_fixtures.hpp"

using namespace pgc::manifests;
using pgc::testing::ManifestDir;
using Lines = std::vector<std::string>;

namespace {

// Writes the valid lab (lab.yaml) and the given files to a fresh directory, loads it, and
// returns every diagnostic as printed, file names relative to the directory.
Lines check(const std::vector<std::pair<std::string, std::string>>& files, const char* lab = pgc::testing::k_valid_lab) {
  ManifestDir dir;
  if (lab) dir.write("lab.yaml", lab);
  for (const auto& [name, text] : files) dir.write(name, text);
  return dir.printed(dir.load());
}

Lines check_cluster(const std::string& text) { return check({{"c.yaml", text}}); }

// An SGCluster referencing the lab's configs; tests append spec fields from line 12 on.
const std::string k_head =
    "apiVersion: stackgres.io/v1\n"      // 1
    "kind: SGCluster\n"                  // 2
    "metadata:\n"                        // 3
    "  name: c\n"                        // 4
    "spec:\n"                            // 5
    "  postgres:\n"                      // 6
    "    version: '15'\n"                // 7
    "  sgInstanceProfile: size-s\n"      // 8
    "  configurations:\n"                // 9
    "    sgPostgresConfig: pgconfig\n"   // 10
    "    sgPoolingConfig: poolconfig\n"; // 11

// k_head with instances (line 12) and replication (line 13) whose fields start at line 14.
std::string cluster(int instances, const std::string& replication) {
  return k_head + "  instances: " + std::to_string(instances) + "\n  replication:\n" + replication;
}

}  // namespace

TEST_CASE("a valid set has no findings", "[manifests][validate]") {
  CHECK(check_cluster(cluster(3, "    mode: sync\n    syncInstances: 2\n")).empty());
  CHECK(check_cluster(cluster(3, "    mode: strict-sync\n")).empty());
  CHECK(check_cluster(cluster(2, "    mode: strict-sync-all\n")).empty());
  CHECK(check_cluster(cluster(4, "    groups:\n    - {instances: 2, role: readonly}\n    - {instances: 1, role: none}\n"))
            .empty());
}

TEST_CASE("validate: replication mode must be one of the five", "[manifests][validate]") {
  CHECK(check_cluster(cluster(3, "    mode: strict\n")) ==
        Lines{"c.yaml:14:5: spec.replication.mode: must be async, sync, strict-sync, sync-all or strict-sync-all "
              "(got \"strict\")"});
}

TEST_CASE("validate: the main role must be ha-read or ha", "[manifests][validate]") {
  CHECK(check_cluster(cluster(3, "    role: readonly\n")) ==
        Lines{"c.yaml:14:5: spec.replication.role: must be ha-read or ha (got \"readonly\")"});
}

TEST_CASE("validate: a group role must be one of four", "[manifests][validate]") {
  CHECK(check_cluster(cluster(3,
                              "    groups:\n"            // 14
                              "    - instances: 1\n"     // 15
                              "      role: replica\n")) ==  // 16
        Lines{"c.yaml:16:7: spec.replication.groups[0].role: must be ha-read, ha, readonly or none (got \"replica\")"});
}

TEST_CASE("validate: syncInstances must be at least 1", "[manifests][validate]") {
  CHECK(check_cluster(cluster(3, "    mode: sync\n    syncInstances: 0\n")) ==
        Lines{"c.yaml:15:5: spec.replication.syncInstances: must be at least 1, got 0"});
}

TEST_CASE("validate: sync and strict-sync need more instances than syncInstances", "[manifests][validate]") {
  CHECK(check_cluster(cluster(3, "    mode: sync\n    syncInstances: 3\n")) ==
        Lines{"c.yaml:15:5: spec.replication.syncInstances: must be less than spec.instances (3), got 3"});
  // syncInstances defaults to 1: the error points at spec.replication.
  CHECK(check_cluster(cluster(1, "    mode: strict-sync\n")) ==
        Lines{"c.yaml:13:3: spec.replication.syncInstances: must be less than spec.instances (1), got 1 "
              "(the default for strict-sync)"});
}

TEST_CASE("validate: syncInstances is ignored, with a warning, by the other modes", "[manifests][validate]") {
  CHECK(check_cluster(cluster(4, "    mode: sync-all\n    syncInstances: 1\n")) ==
        Lines{"c.yaml:15:5: warning: spec.replication.syncInstances: ignored in sync-all mode (every replica is "
              "synchronous)"});
  CHECK(check_cluster(cluster(1, "    syncInstances: 1\n")) ==
        Lines{"c.yaml:14:5: warning: spec.replication.syncInstances: ignored in async mode (no replica is "
              "synchronous)"});
  // *-all modes with one instance are valid (Patroni gets synchronous_mode off).
  CHECK(check_cluster(cluster(1, "    mode: strict-sync-all\n")).empty());
}

TEST_CASE("validate: instances must exceed the sum of group instances", "[manifests][validate]") {
  CHECK(check_cluster(cluster(3, "    groups:\n    - instances: 2\n    - instances: 1\n")) ==
        Lines{"c.yaml:12:3: spec.instances: must be greater than the sum of spec.replication.groups[].instances "
              "(3), got 3"});
  // Zero instances: refused on its own (scaling to zero is not supported yet), the groups rule
  // does not apply to it (StackGres skips it at 0 too).
  const Lines zero{"c.yaml:12:3: spec.instances: 0 (scaling to zero) is not supported by pgconverge yet: the members "
                   "would keep running; to stop applying changes, annotate pgconverge.io/suspend: \"true\""};
  CHECK(check_cluster(cluster(0, "    groups:\n    - instances: 1\n")) == zero);
  CHECK(check_cluster(cluster(0, "    role: ha\n")) == zero);
}

TEST_CASE("validate: each group has at least one instance, and instances is required", "[manifests][validate]") {
  CHECK(check_cluster(cluster(3,
                              "    groups:\n"              // 14
                              "    - instances: 0\n")) ==  // 15
        Lines{"c.yaml:15:7: spec.replication.groups[0].instances: must be at least 1, got 0"});
  CHECK(check_cluster(cluster(3,
                              "    groups:\n"            // 14
                              "    - name: a\n"          // 15
                              "      role: ha\n")) ==    // 16
        Lines{"c.yaml:15:7: spec.replication.groups[0].instances: is required"});
}

TEST_CASE("validate: instances must not be negative", "[manifests][validate]") {
  CHECK(check_cluster(cluster(-1, "    role: ha\n")) == Lines{"c.yaml:12:3: spec.instances: must be at least 0, got -1"});
}

TEST_CASE("validate: instances are at most 64 (found by fuzzing: members x hosts grew quadratically)",
          "[manifests][validate]") {
  CHECK(check_cluster(cluster(64, "    role: ha\n")).empty());
  CHECK(check_cluster(cluster(65, "    role: ha\n")) ==
        Lines{"c.yaml:12:3: spec.instances: must be at most 64 (members of one cluster), got 65"});
}

TEST_CASE("validate: group names, given or defaulted to group-<i+1>, are unique", "[manifests][validate]") {
  CHECK(check_cluster(cluster(4,
                              "    groups:\n"                 // 14
                              "    - instances: 1\n"          // 15
                              "      name: a\n"               // 16
                              "    - instances: 1\n"          // 17
                              "      name: a\n")) ==          // 18
        Lines{"c.yaml:18:7: spec.replication.groups[1].name: duplicate group name \"a\" (first declared at "
              "c.yaml:16:7)"});
  // A default name collides with a given one; the first group has no name key, so its item is named.
  auto lines = check_cluster(cluster(4,
                                     "    groups:\n"              // 14
                                     "    - instances: 1\n"       // 15
                                     "    - instances: 1\n"       // 16
                                     "      name: group-1\n"));   // 17
  CHECK(lines == Lines{"c.yaml:17:7: spec.replication.groups[1].name: duplicate group name \"group-1\" (first "
                       "declared at c.yaml:15:7)"});
}

TEST_CASE("validate: SGCluster names follow StackGres' pattern and length", "[manifests][validate]") {
  auto named = [](const std::string& name) {
    return "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: " + name +
           "\nspec:\n  postgres: {version: '15'}\n";
  };
  CHECK(check_cluster(named("Sync_Cluster")) ==
        Lines{"c.yaml:4:3: metadata.name: must match ^[a-z]([-a-z0-9]*[a-z0-9])?$ (got \"Sync_Cluster\")"});
  CHECK(check_cluster(named("1cluster")) ==
        Lines{"c.yaml:4:3: metadata.name: must match ^[a-z]([-a-z0-9]*[a-z0-9])?$ (got \"1cluster\")"});
  CHECK(check_cluster(named(std::string(45, 'a'))) ==
        Lines{"c.yaml:4:3: metadata.name: must be at most 44 characters, got 45"});
  CHECK(check_cluster(named(std::string(44, 'a'))).empty());
  CHECK(check_cluster("apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata: {}\nspec:\n  postgres: {version: '15'}\n") ==
        Lines{"c.yaml:3:1: metadata.name: is required"});
}

TEST_CASE("validate: other kinds use DNS-1123 names and namespaces", "[manifests][validate]") {
  CHECK(check({{"p.yaml",
                "apiVersion: stackgres.io/v1\nkind: SGInstanceProfile\nmetadata:\n  name: Size_S\n"
                "  namespace: Fail_over\n"}}) ==
        Lines{"p.yaml:4:3: metadata.name: must match "
              "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ (got \"Size_S\")",
              "p.yaml:5:3: metadata.namespace: must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (got \"Fail_over\")"});
  CHECK(check({{"p.yaml", "apiVersion: stackgres.io/v1\nkind: SGInstanceProfile\nmetadata:\n  name: size.s-2\n"}})
            .empty());
}

TEST_CASE("validate: postgres.version is required, MAJOR or MAJOR.MINOR, with a known major",
          "[manifests][validate]") {
  auto versioned = [](const std::string& postgres) {
    return "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\nspec:\n" + postgres;
  };
  CHECK(check_cluster(versioned("  instances: 1\n")) == Lines{"c.yaml:5:1: spec.postgres.version: is required"});
  CHECK(check_cluster(versioned("  postgres:\n    flavor: vanilla\n")) ==
        Lines{"c.yaml:6:3: spec.postgres.version: is required"});
  CHECK(check_cluster(versioned("  postgres:\n    version: newest\n")) ==
        Lines{"c.yaml:7:5: spec.postgres.version: must be MAJOR or MAJOR.MINOR, e.g. 15 or 16.1 (got \"newest\")"});
  // StackGres's latest: the newest major pgconverge knows, with a warning to pin it.
  CHECK(check_cluster(versioned("  postgres:\n    version: latest\n")) ==
        Lines{"c.yaml:7:5: warning: spec.postgres.version: latest is read as 17, the newest major this pgconverge "
              "knows; write 17 to keep the cluster on it (a later pgconverge may read latest as a newer major, "
              "and pgconverge does not upgrade a cluster's major)"});
  CHECK(parse_text(versioned("  postgres:\n    version: latest\n"), "c.yaml").manifests.clusters.at(0).postgres_version ==
        "17");
  CHECK(check_cluster(versioned("  postgres:\n    version: '11.2'\n")) ==
        Lines{"c.yaml:7:5: spec.postgres.version: major must be 12, 13, 14, 15, 16 or 17 (got \"11.2\")"});
  CHECK(check_cluster(versioned("  postgres:\n    version: 16.1\n")).empty());
  CHECK(check_cluster(versioned("  postgres:\n    version: 15\n    flavor: babelfish\n")) ==
        Lines{"c.yaml:8:5: spec.postgres.flavor: must be vanilla (got \"babelfish\")"});
}

TEST_CASE("validate: referenced configs must exist in the cluster's namespace", "[manifests][validate]") {
  CHECK(check_cluster("apiVersion: stackgres.io/v1\n"    // 1
                      "kind: SGCluster\n"                // 2
                      "metadata:\n"                      // 3
                      "  name: c\n"                      // 4
                      "spec:\n"                          // 5
                      "  postgres: {version: '15'}\n"    // 6
                      "  sgInstanceProfile: size-m\n"    // 7
                      "  configurations:\n"              // 8
                      "    sgPostgresConfig: pgconfg\n"  // 9
                      "    sgPoolingConfig: other\n") == // 10
        Lines{"c.yaml:7:3: spec.sgInstanceProfile: SGInstanceProfile \"size-m\" not found in namespace \"default\" "
              "(did you mean 'size-s'?)",
              "c.yaml:9:5: spec.configurations.sgPostgresConfig: SGPostgresConfig \"pgconfg\" not found in namespace "
              "\"default\" (did you mean 'pgconfig'?)",
              "c.yaml:10:5: spec.configurations.sgPoolingConfig: SGPoolingConfig \"other\" not found in namespace "
              "\"default\""});
  // The lab's configs live in "default"; a cluster in "failover" does not see them.
  CHECK(check_cluster("apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\n  namespace: failover\n"
                      "spec:\n  postgres: {version: '15'}\n  configurations:\n    sgPostgresConfig: pgconfig\n") ==
        Lines{"c.yaml:9:5: spec.configurations.sgPostgresConfig: SGPostgresConfig \"pgconfig\" not found in "
              "namespace \"failover\""});
}

TEST_CASE("validate: the SGPostgresConfig major must equal the cluster's", "[manifests][validate]") {
  CHECK(check_cluster("apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\nspec:\n"
                      "  postgres: {version: '16.1'}\n"          // 6
                      "  configurations:\n"                      // 7
                      "    sgPostgresConfig: pgconfig\n") ==     // 8
        Lines{"c.yaml:8:5: spec.configurations.sgPostgresConfig: SGPostgresConfig \"pgconfig\" has postgresVersion "
              "15, which does not match the cluster's major 16"});
}

TEST_CASE("validate: SGPostgresConfig postgresVersion and blocklisted parameters", "[manifests][validate]") {
  CHECK(check({{"p.yaml",
                "apiVersion: stackgres.io/v1\n"    // 1
                "kind: SGPostgresConfig\n"         // 2
                "metadata: {name: p}\n"            // 3
                "spec:\n"                          // 4
                "  postgresVersion: '15.2'\n"      // 5
                "  postgresql.conf:\n"             // 6
                "    port: '5433'\n"               // 7
                "    work_mem: 4MB\n"              // 8
                "    archive_mode: 'on'\n"         // 9
                "    listen_addresses: '*'\n"}}) ==  // 10
        Lines{"p.yaml:5:3: spec.postgresVersion: must be 12, 13, 14, 15, 16 or 17 (got \"15.2\")",
              "p.yaml:7:5: spec.postgresql.conf.port: is managed by pgconverge and may not be set",
              "p.yaml:9:5: spec.postgresql.conf.archive_mode: is managed by pgconverge and may not be set",
              "p.yaml:10:5: spec.postgresql.conf.listen_addresses: is managed by pgconverge and may not be set"});
  CHECK(check({{"p.yaml", "apiVersion: stackgres.io/v1\nkind: SGPostgresConfig\nmetadata: {name: p}\nspec: {}\n"}}) ==
        Lines{"p.yaml:4:1: spec.postgresVersion: is required"});
  // Every name of StackGres' blocklist is refused.
  for (const char* name : {"archive_command", "archive_mode", "dynamic_library_path", "lc_messages",
                           "listen_addresses", "logging_collector", "log_destination", "log_directory",
                           "log_filename", "log_rotation_age", "log_rotation_size", "log_truncate_on_rotation",
                           "port", "wal_log_hints"}) {
    auto lines = check({{"p.yaml", std::string("apiVersion: stackgres.io/v1\nkind: SGPostgresConfig\nmetadata: {name: p}\n"
                                               "spec:\n  postgresVersion: '15'\n  postgresql.conf:\n    ") +
                                       name + ": x\n"}});
    // archive_command and dynamic_library_path are refused with their own reason since
    // manifests/postgres_parameters.cpp; the others keep StackGres' wording.
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].starts_with("p.yaml:7:5: spec.postgresql.conf." + std::string(name) + ": "));
    if (std::string(name) != "archive_command" && std::string(name) != "dynamic_library_path")
      CHECK(lines[0].ends_with(": is managed by pgconverge and may not be set"));
  }
}

TEST_CASE("validate: duplicate names per kind and namespace name both places", "[manifests][validate]") {
  ManifestDir dir;
  dir.write("lab.yaml", pgc::testing::k_valid_lab);
  const std::string c = "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\nspec:\n  postgres: {version: '15'}\n";
  dir.write("a.yaml", c);
  dir.write("b.yaml", c);
  dir.write("other-ns.yaml",
            "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\n  namespace: failover\n"
            "spec:\n  postgres: {version: '15'}\n");
  dir.write("hosts.yaml", "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata:\n  name: pg-1\nspec: {address: 10.0.0.99}\n");
  CHECK(dir.printed(dir.load()) ==
        Lines{"b.yaml:4:3: metadata.name: duplicate SGCluster \"c\" in namespace \"default\" (first declared at "
              "a.yaml:4:3)",
              // Files load in name order: hosts.yaml declares pg-1 before lab.yaml does.
              "lab.yaml:11:3: metadata.name: duplicate Host \"pg-1\" (first declared at hosts.yaml:4:3)"});
}

TEST_CASE("validate: Host address, uniqueness and ssh settings", "[manifests][validate]") {
  ManifestDir dir;
  dir.write("hosts.yaml",
            "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata: {name: a}\nspec: {}\n"          // 1-4
            "---\n"                                                                               // 5
            "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata: {name: b}\n"                    // 6-8
            "spec:\n  address: 10.0.0.11\n  ssh:\n    port: 70000\n    user: ''\n");              // 9-13
  dir.write("lab.yaml", pgc::testing::k_valid_lab);
  CHECK(dir.printed(dir.load()) ==
        Lines{"hosts.yaml:4:1: spec.address: is required",
              "hosts.yaml:12:5: spec.ssh.port: must be between 1 and 65535, got 70000",
              "hosts.yaml:13:5: spec.ssh.user: must not be empty",
              "lab.yaml:15:3: spec.address: duplicate address \"10.0.0.11\" (first declared by Host \"b\" at "
              "hosts.yaml:10:3)"});
}

TEST_CASE("validate: Host packageRepositories knows pgdg only", "[manifests][validate]") {
  ManifestDir dir;
  dir.write("hosts.yaml",
            "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata: {name: a}\n"  // 1-3
            "spec:\n  address: 10.0.0.21\n  packageRepositories:\n    - pgdg\n    - epel\n");  // 4-8
  dir.write("lab.yaml", pgc::testing::k_valid_lab);
  auto loaded = dir.load();
  CHECK(dir.printed(loaded) ==
        Lines{"hosts.yaml:8:7: spec.packageRepositories[1]: unknown package repository \"epel\" (known: pgdg, the "
              "PostgreSQL project's apt repository apt.postgresql.org)"});
}

TEST_CASE("validate: EtcdCluster endpoints are a non-empty list of host:port", "[manifests][validate]") {
  const char* etcd =
      "apiVersion: pgconverge.io/v1\nkind: EtcdCluster\nmetadata: {name: etcd}\n"  // 1-3
      "spec:\n"                                                                     // 4
      "  endpoints:\n"                                                              // 5
      "  - 10.0.0.2:2379\n"                                                         // 6
      "  - http://10.0.0.3:2379\n"                                                  // 7
      "  - 10.0.0.4\n"                                                              // 8
      "  - '[fd00::5]:2379'\n"                                                      // 9
      "  - etcd-6.example:0\n"                                                      // 10
      "  - ftp://10.0.0.7:2379\n";                                                  // 11
  const std::string form = "must be host:port, http://host:port or https://host:port, e.g. https://10.0.0.2:2379";
  CHECK(check({{"etcd.yaml", etcd}}, nullptr) ==
        Lines{"etcd.yaml:8:5: spec.endpoints[2]: " + form + " (got \"10.0.0.4\")",
              "etcd.yaml:10:5: spec.endpoints[4]: " + form + " (got \"etcd-6.example:0\")",
              "etcd.yaml:11:5: spec.endpoints[5]: " + form + " (got \"ftp://10.0.0.7:2379\")"});
  CHECK(check({{"etcd.yaml", "apiVersion: pgconverge.io/v1\nkind: EtcdCluster\nmetadata: {name: etcd}\nspec:\n"
                             "  endpoints: []\n"}},
              nullptr) == Lines{"etcd.yaml:5:3: spec.endpoints: must list at least one host:port"});
}

TEST_CASE("validate: the DCS is the only EtcdCluster or the one the annotation names", "[manifests][validate]") {
  const std::string cluster_text = "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\n"
                                   "spec:\n  postgres: {version: '15'}\n";
  const std::string second_etcd =
      "apiVersion: pgconverge.io/v1\nkind: EtcdCluster\nmetadata: {name: etcd-b}\nspec: {endpoints: ['10.0.0.3:2379']}\n";
  // None declared.
  CHECK(check({{"c.yaml", cluster_text}}, nullptr) ==
        Lines{"c.yaml:1:1: SGCluster \"c\" needs an EtcdCluster as Patroni's DCS, but none is declared"});
  // Several declared and no annotation.
  CHECK(check({{"c.yaml", cluster_text}, {"etcd-b.yaml", second_etcd}}) ==
        Lines{"c.yaml:3:1: metadata.annotations: several EtcdClusters are declared (etcd, etcd-b); set annotation "
              "pgconverge.io/dcs to choose one"});
  // The annotation chooses one; it must exist.
  const std::string annotated = "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\n"
                                "  annotations:\n    pgconverge.io/dcs: ";
  CHECK(check({{"c.yaml", annotated + "etcd-b\nspec:\n  postgres: {version: '15'}\n"}, {"etcd-b.yaml", second_etcd}})
            .empty());
  CHECK(check({{"c.yaml", annotated + "etcd-c\nspec:\n  postgres: {version: '15'}\n"}, {"etcd-b.yaml", second_etcd}}) ==
        Lines{"c.yaml:6:5: metadata.annotations.pgconverge.io/dcs: EtcdCluster \"etcd-c\" not found (did you mean "
              "'etcd-b'?)"});
}

TEST_CASE("validate: instances 0 (StackGres's scale to zero) is refused, alone", "[manifests][validate]") {
  const std::string zero = "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\nspec:\n"
                           "  postgres: {version: '15'}\n  instances: 0\n  replication: {mode: sync, syncInstances: 2}\n";
  CHECK(check({{"c.yaml", zero}}) ==
        Lines{"c.yaml:7:3: spec.instances: 0 (scaling to zero) is not supported by pgconverge yet: the members would "
              "keep running; to stop applying changes, annotate pgconverge.io/suspend: \"true\""});
}

TEST_CASE("validate: the suspend annotation is \"true\" or \"false\"", "[manifests][validate]") {
  const std::string annotated = "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\n"
                                "  annotations:\n    pgconverge.io/suspend: ";
  const std::string rest = "\nspec:\n  postgres: {version: '15'}\n";
  CHECK(check({{"c.yaml", annotated + "'true'" + rest}}).empty());
  CHECK(check({{"c.yaml", annotated + "'false'" + rest}}).empty());
  CHECK(check({{"c.yaml", annotated + "'yes'" + rest}}) ==
        Lines{"c.yaml:6:5: metadata.annotations.pgconverge.io/suspend: must be \"true\" or \"false\" (got \"yes\")"});
}

TEST_CASE("validate: StackGres's reconciliation pause takes any value; one that does not pause is warned",
          "[manifests][validate]") {
  const std::string annotated = "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\n"
                                "  annotations:\n    stackgres.io/reconciliation-pause: ";
  const std::string rest = "\nspec:\n  postgres: {version: '15'}\n";
  CHECK(check({{"c.yaml", annotated + "'true'" + rest}}).empty());
  CHECK(check({{"c.yaml", annotated + "'TRUE'" + rest}}).empty());
  CHECK(check({{"c.yaml", annotated + "'False'" + rest}}).empty());
  CHECK(check({{"c.yaml", annotated + "'yes'" + rest}}) ==
        Lines{"c.yaml:6:5: warning: metadata.annotations.stackgres.io/reconciliation-pause: \"yes\" does not pause "
              "(only \"true\" does, as in StackGres): the cluster is reconciled"});
}

TEST_CASE("validate: dynamicConfig values Patroni would silently drop, and keys pgconverge owns",
          "[manifests][validate]") {
  const std::string text = "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\nspec:\n"  // 1-5
                           "  postgres: {version: '15'}\n"          // 6
                           "  configurations:\n"                    // 7
                           "    patroni:\n"                         // 8
                           "      dynamicConfig:\n"                 // 9
                           "        ttl: thirty\n"                  // 10
                           "        loop_wait: '10'\n"              // 11
                           "        retry_timeout: 1.5\n"           // 12
                           "        maximum_lag_on_failover: 1048576\n"  // 13
                           "        synchronous_mode: true\n"       // 14
                           "        synchronous_node_count: 2\n"    // 15
                           "        check_timeline: yes\n"          // 16
                           "        master_start_timeout: -1\n"     // 17
                           "        slots: [a]\n"                   // 18
                           "        ignore_slots: {a: b}\n"         // 19
                           "        failsafe_mode: false\n"         // 20
                           "        synchronous_mode_strict: false\n"; // 21
  CHECK(check_cluster(text) ==
        Lines{"c.yaml:10:9: spec.configurations.patroni.dynamicConfig.ttl: must be an integer (got the string "
              "\"thirty\")",
              "c.yaml:11:9: spec.configurations.patroni.dynamicConfig.loop_wait: must be an integer (got the string "
              "\"10\")",
              "c.yaml:12:9: spec.configurations.patroni.dynamicConfig.retry_timeout: must be an integer (got 1.5)",
              "c.yaml:14:9: spec.configurations.patroni.dynamicConfig.synchronous_mode: owned by pgconverge; set "
              "spec.replication.mode instead",
              "c.yaml:15:9: spec.configurations.patroni.dynamicConfig.synchronous_node_count: owned by pgconverge; "
              "set spec.replication.syncInstances instead",
              "c.yaml:16:9: spec.configurations.patroni.dynamicConfig.check_timeline: must be a boolean (true or "
              "false) (got the string \"yes\")",
              "c.yaml:17:9: spec.configurations.patroni.dynamicConfig.master_start_timeout: must be at least 0, got -1",
              "c.yaml:18:9: spec.configurations.patroni.dynamicConfig.slots: must be a mapping of slot names to "
              "{type, database, plugin} (got a list)",
              "c.yaml:19:9: spec.configurations.patroni.dynamicConfig.ignore_slots: must be a list of {name, type, "
              "database, plugin} (got a mapping)",
              "c.yaml:21:9: spec.configurations.patroni.dynamicConfig.synchronous_mode_strict: owned by pgconverge; "
              "set spec.replication.mode instead"});
}

TEST_CASE("validate: SGInstanceProfile cpu and memory follow StackGres' patterns", "[manifests][validate]") {
  CHECK(check({{"p.yaml", "apiVersion: stackgres.io/v1\nkind: SGInstanceProfile\nmetadata: {name: p}\nspec:\n"
                          "  cpu: '1.5'\n  memory: 2G\n"}}) ==
        Lines{"p.yaml:5:3: spec.cpu: must be a whole number of cores or millicores, e.g. 2 or 500m (got \"1.5\")",
              "p.yaml:6:3: spec.memory: must be a size in Mi or Gi, e.g. 512Mi or 2Gi (got \"2G\")"});
  CHECK(check({{"p.yaml", "apiVersion: stackgres.io/v1\nkind: SGInstanceProfile\nmetadata: {name: p}\nspec:\n"
                          "  cpu: 500m\n  memory: 1.5Gi\n"}})
            .empty());
}

TEST_CASE("validate: pods.persistentVolume.size takes whole quantities and StackGres's decimal ones",
          "[manifests][validate]") {
  auto with_size = [](const std::string& size) {
    return check_cluster(k_head + "  pods:\n    persistentVolume:\n      size: '" + size + "'\n");
  };
  for (const char* size : {"10Gi", "500Mi", "1Ti", "1073741824", "5G", "1.8Ti", "0.5Gi", "2.25Mi"}) {
    INFO(size);
    CHECK(with_size(size).empty());
  }
  for (const char* size : {"ten", "1.8TB", "1.5", "1.8Ki", "1.Gi", ".5Gi", "1.8T", "1234567.5Ti"}) {
    INFO(size);
    CHECK(with_size(size) == Lines{"c.yaml:14:7: spec.pods.persistentVolume.size: must be a size such as 10Gi, "
                                   "500Mi, 1Ti or 1.8Ti (got \"" + std::string(size) + "\")"});
  }
}

TEST_CASE("validate: a field with the wrong type does not cascade into rule errors", "[manifests][validate]") {
  CHECK(check_cluster(k_head +
                      "  instances: two\n"        // 12
                      "  replication:\n"          // 13
                      "    mode: sync\n"          // 14
                      "    groups:\n"             // 15
                      "    - instances: 1\n") ==  // 16
        Lines{"c.yaml:12:3: spec.instances: must be an integer (got \"two\")"});
  CHECK(check_cluster(k_head +
                      "  instances: 2\n"           // 12
                      "  replication:\n"           // 13
                      "    mode: fast\n"           // 14
                      "    syncInstances: 5\n") == // 15
        Lines{"c.yaml:14:5: spec.replication.mode: must be async, sync, strict-sync, sync-all or strict-sync-all "
              "(got \"fast\")"});
}

TEST_CASE("validate: every error of a run is reported, not just the first", "[manifests][validate]") {
  auto lines = check_cluster("apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: Bad_Name\nspec:\n"
                             "  postgres: {version: '9'}\n  instances: 2\n  replication:\n    mode: sync\n"
                             "    syncInstances: 2\n    role: none\n");
  CHECK(lines == Lines{"c.yaml:4:3: metadata.name: must match ^[a-z]([-a-z0-9]*[a-z0-9])?$ (got \"Bad_Name\")",
                       "c.yaml:6:14: spec.postgres.version: major must be 12, 13, 14, 15, 16 or 17 (got \"9\")",
                       "c.yaml:10:5: spec.replication.syncInstances: must be less than spec.instances (2), got 2",
                       "c.yaml:11:5: spec.replication.role: must be ha-read or ha (got \"none\")"});
}

namespace {

// A Host document (no lab) with the given spec lines; the address is line 6, ssh fields line 8.
Lines check_host(const std::string& address, const std::string& user = "root") {
  return check({{"h.yaml", "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata:\n  name: pg-9\nspec:\n"
                           "  address: " + address + "\n  ssh:\n    user: " + user + "\n"}},
               nullptr);
}

}  // namespace

TEST_CASE("regression: a Host address with shell metacharacters or a newline is refused",
          "[manifests][validate]") {
  CHECK(check_host("10.0.0.9").empty());
  CHECK(check_host("fd00::9").empty());
  CHECK(check_host("pg-9.example.com").empty());
  const std::string rule = "h.yaml:6:3: spec.address: must be an IPv4 address, an IPv6 address or a DNS name (got ";
  CHECK(check_host("\"10.0.0.9; reboot\"") == Lines{rule + "\"10.0.0.9; reboot\")"});
  CHECK(check_host("$(reboot)") == Lines{rule + "\"$(reboot)\")"});
  CHECK(check_host("\"`reboot`\"") == Lines{rule + "\"`reboot`\")"});
  CHECK(check_host("\"10.0.0.9\\n  listen: 0.0.0.0:8008\"") == Lines{rule + "\"10.0.0.9\\n  listen: 0.0.0.0:8008\")"});
  CHECK(check_host("-oProxyCommand=reboot") == Lines{rule + "\"-oProxyCommand=reboot\")"});
  CHECK(check_host("10.0.0.256") == Lines{rule + "\"10.0.0.256\")"});
  CHECK(check_host("fd00::1::2") == Lines{rule + "\"fd00::1::2\")"});
}

TEST_CASE("regression: an ssh user with shell metacharacters is refused", "[manifests][validate]") {
  CHECK(check_host("10.0.0.9", "postgres_admin-2").empty());
  const std::string rule =
      "h.yaml:8:5: spec.ssh.user: must be a user name matching ^[A-Za-z_][A-Za-z0-9_.-]*$, at most 32 characters (got ";
  CHECK(check_host("10.0.0.9", "\"root; reboot\"") == Lines{rule + "\"root; reboot\")"});
  CHECK(check_host("10.0.0.9", "$(reboot)") == Lines{rule + "\"$(reboot)\")"});
  CHECK(check_host("10.0.0.9", "-oProxyCommand=x") == Lines{rule + "\"-oProxyCommand=x\")"});
  CHECK(check_host("10.0.0.9", "\"a\\nb\"") == Lines{rule + "\"a\\nb\")"});
  CHECK(check_host("10.0.0.9", std::string(33, 'a')) == Lines{rule + "\"" + std::string(33, 'a') + "\")"});
}

TEST_CASE("regression: a postgresql.conf value with a newline cannot inject a setting into patroni.yml",
          "[manifests][validate]") {
  const std::string head =
      "apiVersion: stackgres.io/v1\nkind: SGPostgresConfig\nmetadata:\n  name: pgconfig\nspec:\n"
      "  postgresVersion: \"15\"\n  postgresql.conf:\n";
  CHECK(check({{"p.yaml", head + "    search_path: \"'$user', public\"\n    work_mem: 8MB\n"}}, nullptr).empty());
  CHECK(check({{"p.yaml", head + "    shared_buffers: \"1GB'\\n  listen_addresses: '*'\"\n"}}, nullptr) ==
        Lines{"p.yaml:8:5: spec.postgresql.conf.shared_buffers: must not contain line breaks or control characters "
              "(found a newline (LF) at byte 4) (got \"1GB'\\n  listen_addresses: '*'\")"});
  CHECK(check({{"p.yaml", head + "    \"max_connections = 1\\nssl\": \"on\"\n    \"x;reboot\": 1\n"}}, nullptr) ==
        Lines{"p.yaml:7:3: spec.postgresql.conf: invalid parameter name \"x;reboot\" (must match ^[A-Za-z_][A-Za-z0-9_.]*$)",
              "p.yaml:8:5: spec.postgresql.conf: key \"max_connections = 1\\nssl\" must not contain line breaks or "
              "control characters (found a newline (LF) at byte 19)"});
}

TEST_CASE("regression: a pgbouncer.ini key or value cannot add a line to pgbouncer.ini", "[manifests][validate]") {
  const std::string head =
      "apiVersion: stackgres.io/v1\nkind: SGPoolingConfig\nmetadata:\n  name: pool\nspec:\n  pgBouncer:\n"
      "    pgbouncer.ini:\n";
  CHECK(check({{"b.yaml", head + "      pgbouncer:\n        pool_mode: \"session\\nauth_type = trust\"\n"}}, nullptr) ==
        Lines{"b.yaml:9:9: spec.pgBouncer.pgbouncer.ini.pgbouncer.pool_mode: must not contain line breaks or control "
              "characters (found a newline (LF) at byte 7) (got \"session\\nauth_type = trust\")"});
  CHECK(check({{"b.yaml", head + "      databases:\n        \"a=b\": dbname=x\n        \"*\": host=db\n"}}, nullptr) ==
        Lines{"b.yaml:8:7: spec.pgBouncer.pgbouncer.ini.databases: invalid key \"a=b\" (must match "
              "^[A-Za-z0-9_.*-]+$: a PgBouncer key, which cannot open a section or end the line)",
              "b.yaml:10:9: spec.pgBouncer.pgbouncer.ini.databases.*: the fallback database * is pgconverge's (the "
              "local PostgreSQL over its socket)"});
}

TEST_CASE("validate: labels, nodeSelector and annotation keys follow Kubernetes' syntax", "[manifests][validate]") {
  const std::string host =
      "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata:\n  name: pg-9\n  labels:\n    LABELS\n"
      "spec:\n  address: 10.0.0.9\n";
  auto with = [&](const std::string& labels) {
    std::string text = host;
    text.replace(text.find("LABELS"), 6, labels);
    return check({{"h.yaml", text}}, nullptr);
  };
  CHECK(with("pgconverge.io/cluster: c\n    empty: \"\"\n    Zone_A.x: eu-1").empty());
  const std::string key_rule =
      " (must be [prefix/]name, name ^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$, at most 63 characters, prefix a DNS "
      "subdomain)";
  CHECK(with("\"pool; reboot\": a") == Lines{"h.yaml:5:3: metadata.labels: invalid label key \"pool; reboot\"" + key_rule});
  CHECK(with("\"$(x)/name\": a") == Lines{"h.yaml:5:3: metadata.labels: invalid label key \"$(x)/name\"" + key_rule});
  CHECK(with("app: \"`id`\"") ==
        Lines{"h.yaml:6:5: metadata.labels.app: invalid label value \"`id`\" (must match "
              "^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$, at most 63 characters, or be empty)"});
  CHECK(check_cluster(k_head + "  pods:\n    scheduling:\n      nodeSelector:\n        pool: \"x' || reboot\"\n") ==
        Lines{"c.yaml:15:9: spec.pods.scheduling.nodeSelector.pool: invalid label value \"x' || reboot\" (must match "
              "^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$, at most 63 characters, or be empty)"});
  const std::string annotated = "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: c\n  annotations:\n";
  CHECK(check_cluster(annotated + "    \"note; reboot\": x\n    description: \"free $(text) `is` fine\"\n" +
                      k_head.substr(k_head.find("spec:"))) ==
        Lines{"c.yaml:5:3: metadata.annotations: invalid annotation key \"note; reboot\"" + key_rule});
}

TEST_CASE("regression: huge replication groups do not overflow the sum of group instances", "[manifests][validate]") {
  // Found by tests/fuzz: the int sum wrapped to -2, the set passed, and compile() tried to lay out
  // 2^32 member slots.
  CHECK(check_cluster(cluster(1, "    groups:\n    - instances: 2147483647\n    - instances: 2147483647\n")) ==
        Lines{"c.yaml:12:3: spec.instances: must be greater than the sum of spec.replication.groups[].instances "
              "(4294967294), got 1"});
}

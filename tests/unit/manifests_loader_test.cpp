#include <catch2/catch.hpp>

#include <algorithm>

#include "manifests/loader.hpp"
#include "manifests/yaml_value.hpp"
#include "manifests_fixtures.hpp"

using namespace pgc::manifests;
using pgc::testing::ManifestDir;
using pgc::testing::k_valid_lab;

namespace {

const char* k_cluster = R"(apiVersion: stackgres.io/v1
kind: SGCluster
metadata:
  name: c
  namespace: default
  labels:
    team: db
spec:
  postgres:
    version: 15
  instances: 3
  sgInstanceProfile: size-s
  configurations:
    sgPostgresConfig: pgconfig
    sgPoolingConfig: poolconfig
    patroni:
      dynamicConfig:
        ttl: 20
        loop_wait: 2
        pause: false
        postgresql:
          parameters:
            wal_sender_timeout: 5s
  pods:
    disableConnectionPooling: true
    scheduling:
      nodeSelector:
        pgconverge.io/cluster: c
  replication:
    mode: strict-sync
    role: ha
    syncInstances: 1
    groups:
    - instances: 1
      role: readonly
    - name: analytics
      instances: 1
      role: none
      minInstances: 1
    initialization:
      mode: FromPrimary
)";

std::vector<std::string> relative_files(const LoadResult& result, const ManifestDir& dir) {
  std::vector<std::string> out;
  const std::string prefix = dir.path().generic_string() + "/";
  for (auto f : result.files) out.push_back(f.rfind(prefix, 0) == 0 ? f.substr(prefix.size()) : f);
  return out;
}

}  // namespace

TEST_CASE("load_directory reads every *.yaml and *.yml recursively, sorted, skipping hidden entries",
          "[manifests][loader]") {
  ManifestDir dir;
  dir.write("lab.yaml", k_valid_lab);
  dir.write("clusters/b/c.yml", k_cluster);
  dir.write("clusters/a.yaml", "");
  dir.write("README.md", "not yaml: [");
  dir.write("notes.txt", "not yaml: [");
  dir.write(".hidden.yaml", "not yaml: [");
  dir.write(".git/config.yaml", "not yaml: [");
  auto result = dir.load();
  CHECK(relative_files(result, dir) ==
        std::vector<std::string>{"clusters/a.yaml", "clusters/b/c.yml", "lab.yaml"});
  CHECK(dir.printed(result) ==
        std::vector<std::string>{"clusters/b/c.yml:39:7: warning: spec.replication.groups[1].minInstances: ignored "
                                 "on VMs (only used by autoscaling)"});
  CHECK(result.manifests.clusters.size() == 1);
  CHECK(result.manifests.hosts.size() == 2);
  CHECK(result.manifests.etcd_clusters.size() == 1);
  CHECK(result.manifests.postgres_configs.size() == 1);
  CHECK(result.manifests.instance_profiles.size() == 1);
  CHECK(result.manifests.pooling_configs.size() == 1);
}

TEST_CASE("an SGCluster's fields reach the model", "[manifests][loader]") {
  auto result = parse_text(k_cluster, "c.yaml");
  REQUIRE(result.diagnostics.size() == 1);  // the minInstances warning
  REQUIRE(result.manifests.clusters.size() == 1);
  const SGCluster& c = result.manifests.clusters.front();
  CHECK(c.api_version == "stackgres.io/v1");
  CHECK(c.kind == "SGCluster");
  CHECK(c.metadata.name == "c");
  CHECK(c.metadata.namespace_ == "default");
  CHECK(c.metadata.labels == std::map<std::string, std::string>{{"team", "db"}});
  CHECK(c.postgres_version == "15");
  CHECK(c.postgres_flavor == "vanilla");
  CHECK(c.instances == 3);
  CHECK(c.sg_instance_profile == "size-s");
  CHECK(c.sg_postgres_config == "pgconfig");
  CHECK(c.sg_pooling_config == "poolconfig");
  CHECK(c.disable_connection_pooling);
  CHECK(c.node_selector == std::map<std::string, std::string>{{"pgconverge.io/cluster", "c"}});
  CHECK(c.replication.mode == ReplicationMode::strict_sync);
  CHECK(c.replication.role == Role::ha);
  CHECK(c.replication.sync_instances == 1);
  CHECK(c.replication.initialization_mode == "FromPrimary");
  REQUIRE(c.replication.groups.size() == 2);
  CHECK(c.replication.groups[0].name == "group-1");
  CHECK(c.replication.groups[0].role == Role::readonly);
  CHECK(c.replication.groups[0].instances == 1);
  CHECK_FALSE(c.replication.groups[0].min_instances.has_value());
  CHECK(c.replication.groups[1].name == "analytics");
  CHECK(c.replication.groups[1].role == Role::none);
  CHECK(c.replication.groups[1].min_instances == 1);
  CHECK(c.patroni_dynamic_config ==
        nlohmann::json{{"ttl", 20},
                       {"loop_wait", 2},
                       {"pause", false},
                       {"postgresql", {{"parameters", {{"wal_sender_timeout", "5s"}}}}}});
  CHECK(c.locations.at("spec.replication.groups[1].role").str() == "c.yaml:38:7");
  CHECK(c.locations.at("spec.replication.groups[1]").str() == "c.yaml:36:7");
  CHECK(c.locations.at("spec.replication.mode").str() == "c.yaml:30:5");
  // An undeclared path resolves to its closest declared ancestor.
  CHECK(c.locations.at("spec.replication.groups[0].name").str() == "c.yaml:34:7");
  CHECK(c.locations.at("").str() == "c.yaml:1:1");
}

TEST_CASE("defaults apply when fields are absent", "[manifests][loader]") {
  auto result = parse_text("apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata: {name: c}\n"
                           "spec: {postgres: {version: '15'}}\n"
                           "---\n"
                           "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata: {name: h}\nspec: {address: h.example}\n",
                           "c.yaml");
  CHECK(result.diagnostics.empty());
  const SGCluster& c = result.manifests.clusters.at(0);
  CHECK(c.metadata.namespace_ == "default");
  CHECK(c.instances == 1);
  CHECK(c.replication.mode == ReplicationMode::async);
  CHECK(c.replication.role == Role::ha_read);
  CHECK_FALSE(c.replication.sync_instances.has_value());
  CHECK(c.replication.initialization_mode == "FromExistingBackup");
  CHECK(c.patroni_dynamic_config.is_null());
  const Host& h = result.manifests.hosts.at(0);
  CHECK(h.ssh_port == 22);
  CHECK(h.ssh_user == "root");
}

TEST_CASE("postgres.version is accepted as a number or a string, as written", "[manifests][loader]") {
  auto version = [](const std::string& written) {
    auto result = parse_text("apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata: {name: c}\n"
                             "spec:\n  postgres:\n    version: " + written + "\n",
                             "c.yaml");
    REQUIRE(result.diagnostics.empty());
    return result.manifests.clusters.at(0).postgres_version;
  };
  CHECK(version("15") == "15");
  CHECK(version("'16.1'") == "16.1");
  CHECK(version("16.1") == "16.1");
  CHECK(version("16.10") == "16.10");  // not the float 16.1
  CHECK(version("\"15\"") == "15");
}

TEST_CASE("the other kinds' fields reach the model", "[manifests][loader]") {
  auto result = parse_text(std::string(k_valid_lab) + R"(---
apiVersion: stackgres.io/v1
kind: SGPoolingConfig
metadata:
  name: pool2
  namespace: failover
spec:
  pgBouncer:
    pgbouncer.ini:
      databases:
        app:
          dbname: app_db
          pool_size: 5
        raw: "host=10.0.0.5 dbname=raw"
      users:
        alice:
          pool_mode: session
)",
                           "lab.yaml");
  CHECK(result.diagnostics.empty());
  const auto& m = result.manifests;
  REQUIRE(m.hosts.size() == 2);
  CHECK(m.hosts[0].metadata.name == "pg-1");
  CHECK(m.hosts[0].address == "10.0.0.11");
  CHECK(m.hosts[0].metadata.labels.at("pgconverge.io/cluster") == "c");
  CHECK(m.hosts[1].ssh_port == 2222);
  CHECK(m.hosts[1].ssh_user == "admin");
  REQUIRE(m.etcd_clusters.size() == 1);
  CHECK(m.etcd_clusters[0].endpoints == std::vector<std::string>{"10.0.0.2:2379"});
  REQUIRE(m.postgres_configs.size() == 1);
  CHECK(m.postgres_configs[0].postgres_version == "15");
  CHECK(m.postgres_configs[0].parameters ==
        std::map<std::string, std::string>{{"max_connections", "100"}, {"shared_buffers", "256MB"}});
  REQUIRE(m.instance_profiles.size() == 1);
  CHECK(m.instance_profiles[0].cpu == "1");
  CHECK(m.instance_profiles[0].memory == "2Gi");
  REQUIRE(m.pooling_configs.size() == 2);
  CHECK(m.pooling_configs[0].pgbouncer == std::map<std::string, std::string>{{"max_client_conn", "200"}});
  CHECK(m.pooling_configs[1].metadata.namespace_ == "failover");
  CHECK(m.pooling_configs[1].databases ==
        std::map<std::string, std::string>{{"app", "dbname=app_db pool_size=5"},
                                           {"raw", "host=10.0.0.5 dbname=raw"}});
  CHECK(m.pooling_configs[1].users == std::map<std::string, std::string>{{"alice", "pool_mode=session"}});
}

TEST_CASE("a YAML syntax error names the file, line and column and skips only that file",
          "[manifests][loader]") {
  ManifestDir dir;
  dir.write("lab.yaml", k_valid_lab);
  dir.write("broken.yaml",
            "apiVersion: stackgres.io/v1\n"
            "kind: SGCluster\n"
            "metadata:\n"
            "  name: c\n"
            "spec:\n"
            "  replication:\n"
            "    mode: sync: strict\n");
  auto result = dir.load();
  CHECK(dir.printed(result) == std::vector<std::string>{"broken.yaml:7:15: YAML syntax error: illegal map value"});
  CHECK(result.manifests.clusters.empty());
  CHECK(result.manifests.hosts.size() == 2);
}

TEST_CASE("multi-document files keep document order and per-document locations", "[manifests][loader]") {
  auto result = parse_text(
      "---\n"                                                                      // 1
      "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata: {name: a}\nspec: {address: 10.0.0.1}\n"  // 2-5
      "---\n"                                                                      // 6
      "---\n"                                                                      // 7
      "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata: {name: b}\nspec:\n  adress: 10.0.0.2\n",  // 8-12
      "hosts.yaml");
  REQUIRE(result.manifests.hosts.size() == 2);
  CHECK(result.manifests.hosts[0].metadata.name == "a");
  CHECK(result.manifests.hosts[1].metadata.name == "b");
  CHECK(result.manifests.hosts[1].locations.at("").str() == "hosts.yaml:8:1");
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics[0].str() ==
        "hosts.yaml:12:3: spec.adress: unknown field (did you mean 'spec.address'?)");
}

TEST_CASE("all findings of a run are reported, sorted by file and line", "[manifests][loader]") {
  ManifestDir dir;
  dir.write("b.yaml",
            "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata: {name: h2}\nspec:\n  address: 10.0.0.1\n"
            "  ssh: {port: 0}\n");
  dir.write("a.yaml",
            "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata: {name: h1}\nspec:\n  address: 10.0.0.1\n"
            "  sssh: {}\n");
  auto result = dir.load();
  CHECK(dir.printed(result) ==
        std::vector<std::string>{
            "a.yaml:6:3: spec.sssh: unknown field (did you mean 'spec.ssh'?)",
            "b.yaml:5:3: spec.address: duplicate address \"10.0.0.1\" (first declared by Host \"h1\" at "
            "a.yaml:5:3)",
            "b.yaml:6:9: spec.ssh.port: must be between 1 and 65535, got 0",
        });
}

TEST_CASE("load_paths merges directories and files and reads each file once", "[manifests][loader]") {
  ManifestDir lab;
  ManifestDir clusters;
  lab.write("lab.yaml", k_valid_lab);
  auto cluster_file = clusters.write("c.yaml", k_cluster);
  auto result = load_paths({lab.path(), clusters.path(), cluster_file});
  CHECK(result.files.size() == 2);
  CHECK(result.manifests.clusters.size() == 1);
  CHECK_FALSE(has_errors(result.diagnostics));
}

TEST_CASE("a missing path is an error", "[manifests][loader]") {
  ManifestDir dir;
  auto result = load_paths({dir.path() / "nope"});
  CHECK(dir.printed(result) == std::vector<std::string>{"nope: no such file or directory"});
}

TEST_CASE("file names in diagnostics are the paths as found under the directory given", "[manifests][loader]") {
  ManifestDir dir;
  dir.write("sub/x.yaml", "kind: Foo\n");
  auto result = load_directory(dir.path() / "." / "sub");
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics[0].where.file == (dir.path() / "sub" / "x.yaml").generic_string());
}

namespace {

// Each directory below root that directly holds *.yaml/*.yml files is one example: what a user
// passes with `-s` next to the lab's Host and EtcdCluster manifests.
std::vector<std::filesystem::path> example_dirs(const std::filesystem::path& root) {
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    auto ext = entry.path().extension();
    if (ext != ".yaml" && ext != ".yml") continue;
    if (std::find(out.begin(), out.end(), entry.path().parent_path()) == out.end())
      out.push_back(entry.path().parent_path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Loads one example directory; the EtcdCluster the lab writes is added when the example has none.
LoadResult load_example(const std::filesystem::path& dir, const ManifestDir& lab) {
  auto alone = load_directory(dir);
  if (!alone.manifests.etcd_clusters.empty()) return alone;
  auto etcd = lab.write("etcd.yaml",
                        "apiVersion: pgconverge.io/v1\nkind: EtcdCluster\nmetadata: {name: dcs}\n"
                        "spec: {endpoints: ['10.250.0.2:2379']}\n");
  return load_paths({dir, etcd});
}

}  // namespace

TEST_CASE("the examples load without errors, warning only about ignored StackGres fields",
          "[manifests][loader][examples]") {
  const std::filesystem::path root = std::filesystem::path(PGC_SOURCE_DIR) / "examples";
  std::vector<std::pair<ReplicationMode, int>> seeds;
  for (const char* part : {"seeds", "lab"}) {
    INFO("examples/" << part);
    REQUIRE(std::filesystem::is_directory(root / part));
    auto dirs = example_dirs(root / part);
    REQUIRE_FALSE(dirs.empty());
    int clusters = 0;
    for (const auto& dir : dirs) {
      ManifestDir lab;
      auto result = load_example(dir, lab);
      INFO(dir.string());
      for (const auto& d : result.diagnostics) {
        INFO(d.str());
        CHECK(d.severity == pgc::Severity::warning);
        CHECK(d.message.find("ignored") != std::string::npos);
      }
      clusters += static_cast<int>(result.manifests.clusters.size());
      if (std::string(part) == "seeds")
        for (const auto& c : result.manifests.clusters) seeds.emplace_back(c.replication.mode, c.instances);
    }
    CHECK(clusters > 0);
  }
  // The three StackGres seed pages: strict-sync on 4 instances, sync-all on 4, strict-sync-all on 6.
  for (auto expected : {std::pair{ReplicationMode::strict_sync, 4}, std::pair{ReplicationMode::sync_all, 4},
                        std::pair{ReplicationMode::strict_sync_all, 6}}) {
    INFO(to_string(expected.first) << " with " << expected.second << " instances");
    CHECK(std::find(seeds.begin(), seeds.end(), expected) != seeds.end());
  }
}

TEST_CASE("a file above the 4 MiB limit is refused before it is read", "[manifests][loader][limits]") {
  ManifestDir dir;
  std::string text = "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata:\n  name: pg-1\nspec:\n  junk:\n";
  while (text.size() <= pgc::manifests::k_max_file_bytes) text += "    key" + std::to_string(text.size()) + ": value\n";
  dir.write("big.yaml", text);
  CHECK(dir.printed(dir.load()) == std::vector<std::string>{"big.yaml: file is " + std::to_string(text.size()) +
                                                            " bytes, more than the limit of 4194304 (4 MiB)"});
  CHECK(parse_text(text, "t.yaml").diagnostics.front().str() ==
        "t.yaml: file is " + std::to_string(text.size()) + " bytes, more than the limit of 4194304 (4 MiB)");
}

TEST_CASE("nesting deeper than 64 levels is refused, 64 levels are read", "[manifests][loader][limits]") {
  // The document is level 1 and spec level 2: "deep: [[...]]" with n brackets reaches level 2 + n.
  auto host = [](int brackets) {
    return "apiVersion: pgconverge.io/v1\nkind: Host\nmetadata:\n  name: pg-1\nspec:\n  deep: " +
           std::string(static_cast<std::size_t>(brackets), '[') + std::string(static_cast<std::size_t>(brackets), ']') +
           "\n";
  };
  auto printed = [](const pgc::manifests::LoadResult& result) {
    std::vector<std::string> out;
    for (const auto& d : result.diagnostics) out.push_back(d.str());
    return out;
  };
  CHECK(printed(parse_text(host(62), "t.yaml")) == std::vector<std::string>{"t.yaml:6:3: spec.deep: unknown field"});
  CHECK(printed(parse_text(host(63), "t.yaml")) ==
        std::vector<std::string>{"t.yaml:6:71: mappings and lists nested deeper than 64 levels (the limit)"});
  // yaml-cpp's own guard stops at 2000 levels with "bad file"; it is reported as the same limit.
  CHECK(printed(parse_text(std::string(10000, '[') + std::string(10000, ']'), "t.yaml")) ==
        std::vector<std::string>{"t.yaml:1:1: mappings and lists nested deeper than 64 levels (the limit)"});
}

TEST_CASE("regression: a billion-laughs alias bomb stops at the node limit", "[manifests][loader][limits]") {
  std::string text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b'; level <= 'i'; ++level) {
    std::string previous(1, static_cast<char>(level - 1));
    text += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 10; ++i) text += (i ? ", *" : "*") + previous;
    text += "]\n";
  }
  auto result = parse_text(text, "t.yaml");
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics.front().message ==
        "more than 100000 YAML nodes once aliases are expanded (the limit per file)");
}

TEST_CASE("a tab in indentation is named in the syntax error", "[manifests][loader]") {
  auto result = parse_text("apiVersion: pgconverge.io/v1\nkind: Host\nmetadata:\n\tname: pg-1\n", "t.yaml");
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics.front().str() ==
        "t.yaml:4:6: YAML syntax error: illegal map value (line 4 is indented with a tab; YAML indents with spaces only)");
}

TEST_CASE("regression: aliases of one long string stop at the expanded text limit", "[manifests][loader][limits]") {
  // 100 × 100 aliases of a 60 kB string: 10 000 nodes, but 600 MB of text once expanded
  // (found by tests/fuzz: 13 s and 600 MB for a 60 kB file before the limit).
  std::string text = "a: &a \"" + std::string(60000, 'x') + "\"\nb: &b [*a";
  for (int i = 1; i < 100; ++i) text += ", *a";
  text += "]\nc: [*b";
  for (int i = 1; i < 100; ++i) text += ", *b";
  text += "]\n";
  auto result = parse_text(text, "t.yaml");
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics.front().message ==
        "more than 8388608 bytes of keys and values once aliases are expanded (the limit per file)");
}

TEST_CASE("regression: invalid UTF-8 is a syntax error, not an internal error in JSON", "[manifests][loader]") {
  // Found by tests/fuzz: a dynamicConfig value with byte 0x80 made nlohmann::json throw
  // type_error 316 out of validate() ("pgconverge: internal error").
  auto result = parse_text("apiVersion: pgconverge.io/v1\nkind: Host\nmetadata:\n  name: pg-1\nspec:\n  x: \"a\x80\"\n",
                           "t.yaml");
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics.front().str() == "t.yaml:6:6: YAML syntax error: invalid UTF-8 (byte 0x80)");
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xff"})
    CHECK_FALSE(parse_text(std::string("k: \"") + bad + "\"\n", "t.yaml").diagnostics.empty());
  for (const auto& d : parse_text("k: \"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"\n", "t.yaml").diagnostics)
    CHECK(d.message.find("UTF-8") == std::string::npos);
}

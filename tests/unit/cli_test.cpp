#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "reconciler/cli/cli.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using pgc::test::TempDir;

namespace {

const std::string k_examples = std::string(PGC_SOURCE_DIR) + "/examples";

// What one pgconverge invocation printed and returned.
struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

Run pgconverge(const std::vector<std::string>& args) {
  std::ostringstream out;
  std::ostringstream err;
  Run r;
  r.code = pgc::cli::run(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// The manifests `tests/lab/lab up n` writes: Hosts pg-1..pg-n and EtcdCluster dcs.
void write_lab_manifests(const TempDir& dir, int hosts) {
  std::string text;
  for (int i = 1; i <= hosts; ++i)
    text += "---\napiVersion: pgconverge.io/v1\nkind: Host\nmetadata:\n  name: pg-" + std::to_string(i) +
            "\n  labels:\n    pgconverge.io/lab: \"true\"\nspec:\n  address: 10.250.0." + std::to_string(10 + i) + "\n";
  dir.write("hosts.yaml", text);
  dir.write("etcd.yaml",
            "apiVersion: pgconverge.io/v1\nkind: EtcdCluster\nmetadata:\n  name: dcs\nspec:\n  endpoints:\n"
            "    - 10.250.0.2:2379\n");
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("cli: --help lists the commands and the exit codes") {
  auto r = pgconverge({"--help"});
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  for (const auto* command : {"validate", "render", "plan", "apply", "status"}) {
    INFO(command);
    CHECK(contains(r.out, std::string("  ") + command + " "));
  }
  CHECK(contains(r.out, "Exit codes:\n  0   success (nothing to do)\n  1   error: invalid manifests, or an operational "
                        "error\n  2   changes pending (plan)\n  64  usage error"));
}

TEST_CASE("cli: every command has --help with the exit codes") {
  for (const auto* command : {"validate", "render", "plan", "apply", "status"}) {
    INFO(command);
    auto r = pgconverge({command, "--help"});
    CHECK(r.code == 0);
    CHECK(contains(r.out, std::string("Usage: pgconverge ") + command));
    CHECK(contains(r.out, "64"));
  }
  auto render = pgconverge({"render", "--help"});
  CHECK(contains(render.out, "-s,--source"));
  CHECK(contains(render.out, "--cluster NAME"));
  CHECK(contains(render.out, "-o,--output"));
  CHECK(contains(render.out, "<redacted>"));
}

TEST_CASE("cli: --version") {
  auto r = pgconverge({"--version"});
  CHECK(r.code == 0);
  CHECK(r.out == "pgconverge 0.1.0\n");
}

TEST_CASE("cli: usage errors exit 64 and print nothing to stdout") {
  std::vector<std::vector<std::string>> cases{
      {},
      {"frobnicate"},
      {"validate"},                                                        // -s is required
      {"validate", "-s", k_examples + "/no-such-dir"},                     // must exist
      {"validate", "--bogus", "-s", k_examples + "/seeds/strict-sync"},
      {"render", "-s", k_examples + "/seeds/strict-sync", "-o", "xml"},
  };
  for (const auto& args : cases) {
    std::string described;
    for (const auto& a : args) described += a + " ";
    INFO("pgconverge " << described);
    auto r = pgconverge(args);
    CHECK(r.code == 64);
    CHECK(r.out.empty());
    CHECK_FALSE(r.err.empty());
  }
  CHECK(contains(pgconverge({}).err, "A subcommand is required"));
  CHECK(contains(pgconverge({"validate", "-s", k_examples + "/no-such-dir"}).err, "no-such-dir"));
}

TEST_CASE("cli: validate a seed example: warnings on stderr, the summary on stdout") {
  auto r = pgconverge({"validate", "-s", k_examples + "/seeds/strict-sync"});
  CHECK(r.code == 0);
  CHECK(r.out == "11 manifests OK\n");
  CHECK_FALSE(contains(r.err, "prometheusAutobind"));  // honoured: the exporter runs on every member
  CHECK_FALSE(contains(r.err, "persistentVolume"));  // its size is checked against the hosts' disks
  CHECK(contains(r.err, "sgcluster.yaml:8:5: warning: spec.postgres.version: the minor version is not pinned"));
}

TEST_CASE("cli: validate reports every error as file:LINE:COL: field: message and exits 1") {
  TempDir dir;
  write_lab_manifests(dir, 3);
  dir.write("cluster.yaml", R"(apiVersion: stackgres.io/v1
kind: SGCluster
metadata:
  name: broken
spec:
  postgres:
    version: '15'
  instances: 2
  pods:
    scheduling:
      nodeSelector:
        pgconverge.io/lab: "true"
  replication:
    mode: strict-synch
)");
  auto r = pgconverge({"validate", "-s", dir.str()});
  CHECK(r.code == 1);
  CHECK(r.out.empty());
  CHECK(contains(r.err, "cluster.yaml:14:5: spec.replication.mode: "));
  CHECK(contains(r.err, "pgconverge: invalid manifests: 1 error"));
}

TEST_CASE("cli: too few hosts is reported at spec.instances") {
  TempDir lab;
  write_lab_manifests(lab, 3);
  auto r = pgconverge({"validate", "-s", lab.str(), "-s", k_examples + "/lab/strict-sync"});
  CHECK(r.code == 1);
  CHECK(r.out.empty());
  CHECK(contains(r.err, "strict-sync/sgcluster.yaml:15:3: spec.instances: cluster \"sync-cluster\" wants 4 hosts but "
                        "only 3 match nodeSelector {pgconverge.io/lab: \"true\"}: pg-1, pg-2, pg-3\n"));

  auto render = pgconverge({"render", "-s", lab.str(), "-s", k_examples + "/lab/strict-sync"});
  CHECK(render.code == 1);
  CHECK(render.out.empty());
}

TEST_CASE("cli: render merges several -s and prints JSON or YAML") {
  TempDir lab;
  write_lab_manifests(lab, 4);
  auto r = pgconverge({"render", "-s", lab.str(), "-s", k_examples + "/lab/strict-sync", "-o", "json"});
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  auto doc = json::parse(r.out);
  REQUIRE(doc["clusters"].size() == 1);
  const auto& c = doc["clusters"][0];
  CHECK(c["dynamicConfig"]["synchronous_mode_strict"] == true);
  CHECK(c["dynamicConfig"]["synchronous_node_count"] == 2);
  CHECK(c["members"].size() == 4);
  CHECK(c["members"][3]["host"] == "pg-4");

  auto yaml = pgconverge({"render", "-s", lab.str(), "-s", k_examples + "/lab/strict-sync"});
  CHECK(yaml.code == 0);
  CHECK(yaml.out.starts_with("clusters:\n  - name: sync-cluster\n"));
  CHECK(contains(yaml.out, "synchronous_mode_strict: true"));
  CHECK(contains(yaml.out, "nofailover: false"));
  CHECK_FALSE(contains(yaml.out, "secret:"));
}

TEST_CASE("cli: render --cluster") {
  auto seed = k_examples + "/seeds/sync-all";
  auto r = pgconverge({"render", "-s", seed, "--cluster", "sync-cluster", "-o", "json"});
  CHECK(r.code == 0);
  CHECK(json::parse(r.out)["clusters"][0]["dynamicConfig"]["synchronous_node_count"] == 3);

  auto missing = pgconverge({"render", "-s", seed, "--cluster", "nope"});
  CHECK(missing.code == 1);
  CHECK(missing.out.empty());
  CHECK(contains(missing.err, "pgconverge: no SGCluster named \"nope\" in the manifests (declared: sync-cluster)\n"));
}

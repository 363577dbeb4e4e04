#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <functional>

#include "manifests/loader.hpp"
#include "reconciler/render.hpp"
#include "reconciler/yaml_json.hpp"

using namespace pgc;
using namespace pgc::reconciler;
using json = nlohmann::json;

namespace {

const std::filesystem::path k_examples = std::filesystem::path(PGC_SOURCE_DIR) / "examples";

// Compiles what the loader makes of dir; requires that there is no error.
DesiredState compile_set(const manifests::ManifestSet& set, const Diagnostics& diagnostics) {
  for (const auto& d : diagnostics) UNSCOPED_INFO(d.str());
  REQUIRE_FALSE(has_errors(diagnostics));
  auto result = compile(set);
  for (const auto& d : result.diagnostics) UNSCOPED_INFO(d.str());
  REQUIRE_FALSE(has_errors(result.diagnostics));
  return result.state;
}

// An example directory as `pgconverge -s dir` loads it (load_directory: schema and validation).
DesiredState compiled(const std::filesystem::path& dir) {
  auto loaded = manifests::load_directory(dir);
  REQUIRE(loaded.files.size() >= 2);
  return compile_set(loaded.manifests, loaded.diagnostics);
}

// A lab example directory plus the Hosts and EtcdCluster the lab declares, as objects: every file
// is parsed like the loader does, then the whole set is validated.
DesiredState compiled(const std::filesystem::path& dir, const std::vector<manifests::Host>& extra_hosts,
                      const std::vector<manifests::EtcdCluster>& extra_dcs) {
  manifests::ManifestSet set;
  Diagnostics diagnostics;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 2);
  for (const auto& file : files) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = manifests::parse_text(text.str(), file.string());
    auto append = [](auto& to, const auto& from) { to.insert(to.end(), from.begin(), from.end()); };
    append(set.clusters, parsed.manifests.clusters);
    append(set.postgres_configs, parsed.manifests.postgres_configs);
    append(set.instance_profiles, parsed.manifests.instance_profiles);
    append(set.pooling_configs, parsed.manifests.pooling_configs);
    append(set.hosts, parsed.manifests.hosts);
    append(set.etcd_clusters, parsed.manifests.etcd_clusters);
    append(diagnostics, parsed.diagnostics);
  }
  set.hosts.insert(set.hosts.end(), extra_hosts.begin(), extra_hosts.end());
  set.etcd_clusters.insert(set.etcd_clusters.end(), extra_dcs.begin(), extra_dcs.end());
  manifests::validate(set, diagnostics);
  return compile_set(set, diagnostics);
}

// The rendered JSON document, parsed back.
json rendered_json(const DesiredState& state) {
  auto doc = json::parse(render(state, RenderFormat::json));
  REQUIRE(doc["clusters"].is_array());
  return doc;
}

// What `tests/lab/lab up n` declares: pg-1..pg-n at 10.250.0.(10+i) and EtcdCluster dcs.
std::vector<manifests::Host> lab_hosts(int n) {
  std::vector<manifests::Host> out;
  for (int i = 1; i <= n; ++i) {
    manifests::Host h;
    h.kind = "Host";
    h.metadata.name = "pg-" + std::to_string(i);
    h.metadata.namespace_ = "default";
    h.metadata.labels = {{"pgconverge.io/lab", "true"}};
    h.address = "10.250.0." + std::to_string(10 + i);
    out.push_back(h);
  }
  return out;
}
std::vector<manifests::EtcdCluster> lab_dcs() {
  manifests::EtcdCluster dcs;
  dcs.kind = "EtcdCluster";
  dcs.metadata.name = "dcs";
  dcs.endpoints = {"10.250.0.2:2379"};
  return {dcs};
}

void each_value(const json& value, const std::function<void(const json&)>& f) {
  f(value);
  if (value.is_structured())
    for (const auto& v : value) each_value(v, f);
}

}  // namespace

TEST_CASE("render: each seed example gives the settings the StackGres pages describe") {
  struct Seed {
    std::string dir;
    int instances;
    bool strict;
    int count;
  };
  for (const auto& seed : {Seed{"strict-sync", 4, true, 2}, Seed{"sync-all", 4, false, 3},
                           Seed{"strict-sync-all", 6, true, 5}}) {
    INFO(seed.dir);
    auto doc = rendered_json(compiled(k_examples / "seeds" / seed.dir));
    REQUIRE(doc["clusters"].size() == 1);
    const auto& c = doc["clusters"][0];
    CHECK(c["name"] == "sync-cluster");
    CHECK(c["namespace"] == "failover");
    CHECK(c["mode"] == seed.dir);
    CHECK(c["instances"] == seed.instances);
    CHECK(c["postgresVersion"] == "16.1");
    CHECK(c["dynamicConfig"]["synchronous_mode"] == true);
    CHECK(c["dynamicConfig"]["synchronous_mode_strict"] == seed.strict);
    CHECK(c["dynamicConfig"]["synchronous_node_count"] == seed.count);
    // sgPoolingConfig and prometheusAutobind: true bring PgBouncer and the exporter.
    CHECK(c["packages"] == json{"postgresql-16", "postgresql-client-16", "patroni", "python3-etcd", "pgbouncer",
                                "prometheus-postgres-exporter"});
    CHECK(c["services"] == json{{{"unit", "pgbouncer.service"}, {"state", "running"}},
                                {{"unit", "prometheus-postgres-exporter.service"}, {"state", "running"}}});
    CHECK(c["members"].at(0)["files"].at(1)["path"] == "/etc/pgbouncer/userlist.txt");
    CHECK(c["members"].at(0)["files"].at(1)["content"] == "<redacted>");
    CHECK(c["repositories"] == json{"pgdg"});
    CHECK(c["dcs"] == json{"10.0.0.2:2379"});
    // No spec.postgres.ssl: StackGres's default, TLS with generated certificates for 13 months.
    CHECK(c["ssl"]["enabled"] == true);
    CHECK(c["ssl"]["durationSeconds"] == 395 * 86400);
    CHECK(c["ssl"]["renewBeforeSeconds"] == 395 * 86400 / 12);
    REQUIRE(c["members"].size() == static_cast<std::size_t>(seed.instances));
    for (std::size_t i = 0; i < c["members"].size(); ++i) {
      const auto& m = c["members"][i];
      CHECK(m["name"] == "sync-cluster-" + std::to_string(i));
      CHECK(m["host"] == "pg-" + std::to_string(i + 1));
      CHECK(m["address"] == "10.0.0." + std::to_string(11 + i));
      CHECK(m["role"] == "ha-read");
      CHECK(m["tags"] == json{{"nofailover", false}, {"noloadbalance", false}});
      CHECK(m["configPath"] == "/etc/patroni/16-sync-cluster.yml");
      CHECK(m["service"] == "patroni@16-sync-cluster");
      CHECK(m["certificate"]["subject"] == "CN=sync-cluster-" + std::to_string(i));
      CHECK(m["certificate"]["dnsNames"] == json{"sync-cluster-" + std::to_string(i), "localhost"});
      CHECK(m["certificate"]["ipAddresses"] == json{"10.0.0." + std::to_string(11 + i), "127.0.0.1"});
      // patroni.yml seeds the DCS non-strict: strict waits until a replica streams.
      const auto& bootstrap = m["patroniConfig"]["bootstrap"]["dcs"];
      CHECK(bootstrap["synchronous_mode"] == true);
      CHECK(bootstrap["synchronous_mode_strict"] == false);
      CHECK(bootstrap["synchronous_node_count"] == seed.count);
    }
  }
}

TEST_CASE("render: the lab examples with the lab's hosts") {
  struct Lab {
    std::string dir;
    int instances;
    bool strict;
    int count;
  };
  for (const auto& lab : {Lab{"strict-sync", 4, true, 2}, Lab{"sync-all", 4, false, 3},
                          Lab{"strict-sync-all", 6, true, 5}}) {
    INFO(lab.dir);
    auto doc = rendered_json(compiled(k_examples / "lab" / lab.dir, lab_hosts(lab.instances), lab_dcs()));
    const auto& c = doc["clusters"].at(0);
    CHECK(c["postgresVersion"] == "15");
    CHECK(c["packages"] == json{"postgresql-15", "postgresql-client-15", "patroni", "python3-etcd", "pgbouncer",
                                "prometheus-postgres-exporter"});
    CHECK_FALSE(c.contains("repositories"));
    const auto& dcs = c["dynamicConfig"];
    CHECK(dcs["synchronous_mode_strict"] == lab.strict);
    CHECK(dcs["synchronous_node_count"] == lab.count);
    CHECK(dcs["ttl"] == 10);
    CHECK(dcs["loop_wait"] == 1);
    CHECK(dcs["retry_timeout"] == 4);
    CHECK(dcs["postgresql"]["parameters"]["wal_sender_timeout"] == "5s");
    CHECK(dcs["postgresql"]["pg_hba"].back() == "hostssl all all 10.250.0.1/32 scram-sha-256");
    REQUIRE(c["members"].size() == static_cast<std::size_t>(lab.instances));
    CHECK(c["members"][0]["patroniConfig"]["etcd3"]["hosts"] == json{"10.250.0.2:2379"});
    CHECK(c["members"][0]["patroniConfig"]["postgresql"]["bin_dir"] == "/usr/lib/postgresql/15/bin");
    CHECK(c["members"].back()["address"] == "10.250.0." + std::to_string(10 + lab.instances));
  }
}

TEST_CASE("render: secrets are redacted, references and literal values alike") {
  auto state = compiled(k_examples / "seeds" / "strict-sync");
  // A literal secret that slipped into a password field is never printed either.
  state.clusters[0].members[0].patroni_config["restapi"]["authentication"]["password"] = "hunter2";
  for (auto format : {RenderFormat::json, RenderFormat::yaml}) {
    auto text = render(state, format);
    CHECK(text.find("hunter2") == std::string::npos);
    CHECK(text.find(k_secret_prefix) == std::string::npos);
    CHECK(text.find("<redacted>") != std::string::npos);
  }
  auto doc = rendered_json(state);
  const auto& auth = doc["clusters"][0]["members"][0]["patroniConfig"]["postgresql"]["authentication"];
  CHECK(auth["superuser"] == json{{"username", "postgres"}, {"password", "<redacted>"}});
  CHECK(auth["replication"]["password"] == "<redacted>");
  CHECK(auth["rewind"]["password"] == "<redacted>");
  // The desired state itself keeps the references: rendering copies.
  CHECK(state.clusters[0].members[1].patroni_config["postgresql"]["authentication"]["superuser"]["password"] ==
        "secret:superuser");
}

TEST_CASE("render: tags are booleans, never strings, in JSON and YAML") {
  auto state = compiled(k_examples / "seeds" / "sync-all");
  auto doc = rendered_json(state);
  for (const auto& m : doc["clusters"][0]["members"]) {
    CHECK(m["tags"]["nofailover"].is_boolean());
    CHECK(m["tags"]["noloadbalance"].is_boolean());
    for (const auto& [key, value] : m["patroniConfig"]["tags"].items()) {
      INFO(key);
      CHECK(value.is_boolean());
    }
  }
  auto yaml = render(state, RenderFormat::yaml);
  CHECK(yaml.find("nofailover: false") != std::string::npos);
  CHECK(yaml.find("\"false\"") == std::string::npos);
  CHECK(yaml.find("\"true\"") == std::string::npos);
}

TEST_CASE("render: YAML is the same tree as JSON") {
  auto state = compiled(k_examples / "seeds" / "strict-sync-all");
  auto from_yaml = yaml_to_json(render(state, RenderFormat::yaml));
  REQUIRE(from_yaml);
  CHECK(*from_yaml == rendered_json(state));
  // Strings YAML would read as something else stay strings.
  auto yaml = render(state, RenderFormat::yaml);
  CHECK(yaml.find("hot_standby: \"on\"") != std::string::npos);
  CHECK(yaml.find("postgresVersion: \"16.1\"") != std::string::npos);
}

TEST_CASE("render: keys come in a stable, readable order") {
  auto doc = render_tree(compiled(k_examples / "seeds" / "strict-sync"));
  std::vector<std::string> keys;
  for (const auto& [key, value] : doc["clusters"][0].items()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"name", "namespace", "mode", "role", "instances", "syncInstances",
                                         "postgresVersion", "postgresMajor", "binDir", "dynamicConfig", "ssl", "members",
                                         "packages", "services", "roles", "repositories", "dcs", "etcdCluster"});
  std::vector<std::string> member_keys;
  for (const auto& [key, value] : doc["clusters"][0]["members"][0].items()) member_keys.push_back(key);
  CHECK(member_keys == std::vector<std::string>{"name", "slot", "host", "address", "role", "group", "tags",
                                                "configPath", "service", "patroniConfig", "files", "certificate"});
  CHECK(render(DesiredState{}, RenderFormat::json) == "{\n  \"clusters\": []\n}\n");
  CHECK(render(DesiredState{}, RenderFormat::yaml) == "clusters: []\n");
}

TEST_CASE("render: parse_render_format") {
  CHECK(parse_render_format("yaml") == RenderFormat::yaml);
  CHECK(parse_render_format("json") == RenderFormat::json);
  CHECK_FALSE(parse_render_format("xml"));
  CHECK_FALSE(parse_render_format("JSON"));
}

TEST_CASE("render: nothing in the output is a secret reference") {
  auto doc = rendered_json(compiled(k_examples / "seeds" / "strict-sync"));
  each_value(doc, [](const json& v) {
    if (v.is_string()) CHECK_FALSE(v.get<std::string>().starts_with(k_secret_prefix));
  });
}

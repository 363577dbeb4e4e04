#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>

#include "reconciler/desired.hpp"

using namespace pgc;
using namespace pgc::reconciler;
using manifests::ReplicationMode;
using manifests::Role;
using json = nlohmann::json;

namespace {

// The lab's shape: hosts pg-1..pg-n at 10.250.0.(10+i) labelled pgconverge.io/lab: "true", etcd
// "dcs" at 10.250.0.2:2379, and one SGCluster selecting the lab hosts.
struct Lab {
  manifests::ManifestSet set;

  explicit Lab(int hosts, int instances = 3, ReplicationMode mode = ReplicationMode::async) {
    for (int i = 1; i <= hosts; ++i) {
      manifests::Host h;
      h.kind = "Host";
      h.metadata.name = "pg-" + std::to_string(i);
      h.metadata.namespace_ = "default";
      h.metadata.labels = {{"pgconverge.io/lab", "true"}};
      h.address = "10.250.0." + std::to_string(10 + i);
      set.hosts.push_back(h);
    }
    manifests::EtcdCluster dcs;
    dcs.kind = "EtcdCluster";
    dcs.metadata.name = "dcs";
    dcs.metadata.namespace_ = "default";
    dcs.endpoints = {"10.250.0.2:2379"};
    set.etcd_clusters.push_back(dcs);

    manifests::SGPostgresConfig pg;
    pg.kind = "SGPostgresConfig";
    pg.metadata.name = "pgconfig1";
    pg.metadata.namespace_ = "failover";
    pg.postgres_version = "15";
    pg.parameters = {{"shared_buffers", "256MB"}, {"max_connections", "100"}};
    pg.locations.set("", SourceLocation{"pgconfig.yaml", 1, 1});
    pg.locations.set("spec.postgresql.conf", SourceLocation{"pgconfig.yaml", 8, 3});
    set.postgres_configs.push_back(pg);

    manifests::SGCluster c;
    c.kind = "SGCluster";
    c.metadata.name = "sync-cluster";
    c.metadata.namespace_ = "failover";
    c.postgres_version = "15";
    c.instances = instances;
    c.sg_postgres_config = "pgconfig1";
    c.node_selector = {{"pgconverge.io/lab", "true"}};
    c.replication.mode = mode;
    c.locations.set("", SourceLocation{"sgcluster.yaml", 1, 1});
    c.locations.set("spec.instances", SourceLocation{"sgcluster.yaml", 9, 3});
    c.locations.set("spec.postgres.version", SourceLocation{"sgcluster.yaml", 8, 14});
    c.locations.set("metadata.annotations", SourceLocation{"sgcluster.yaml", 5, 3});
    set.clusters.push_back(c);
  }

  manifests::SGCluster& cluster() { return set.clusters.front(); }
  manifests::SGPostgresConfig& pgconfig() { return set.postgres_configs.front(); }

  // Compiles and requires success.
  DesiredCluster compiled(const PlacementHistory& history = {}) const {
    auto result = compile(set, history);
    for (const auto& d : result.diagnostics) UNSCOPED_INFO(d.str());
    REQUIRE_FALSE(has_errors(result.diagnostics));
    REQUIRE(result.state.clusters.size() == 1);
    return result.state.clusters.front();
  }
};

// The three keys the mode owns, as compiled (null when absent).
struct ModeKeys {
  json synchronous_mode, synchronous_mode_strict, synchronous_node_count;
  bool operator==(const ModeKeys&) const = default;
};
ModeKeys mode_keys(const json& config) {
  auto get = [&](const char* key) { return config.contains(key) ? config[key] : json(); };
  return {get("synchronous_mode"), get("synchronous_mode_strict"), get("synchronous_node_count")};
}
std::ostream& operator<<(std::ostream& os, const ModeKeys& k) {
  return os << "{mode " << k.synchronous_mode.dump() << ", strict " << k.synchronous_mode_strict.dump() << ", count "
            << k.synchronous_node_count.dump() << "}";
}

// Walks every string of a JSON tree.
void each_string(const json& value, const std::function<void(const std::string& path, const std::string&)>& f,
                 const std::string& path = "") {
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) each_string(it.value(), f, path + "/" + it.key());
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) each_string(value[i], f, path + "/" + std::to_string(i));
  } else if (value.is_string()) {
    f(path, value.get<std::string>());
  }
}

}  // namespace

TEST_CASE("compile: every mode × instance count gives exactly the DCS keys of docs/replication-semantics.md §2") {
  struct Row {
    ReplicationMode mode;
    int instances;
    ModeKeys expected;
  };
  const json absent;
  std::vector<Row> table;
  for (int n : {0, 1, 2, 4, 6}) {
    bool all_sync = n >= 2;
    table.push_back({ReplicationMode::async, n, {false, false, absent}});
    table.push_back({ReplicationMode::sync, n, {true, false, 1}});
    table.push_back({ReplicationMode::strict_sync, n, {true, true, 1}});
    table.push_back({ReplicationMode::sync_all, n, {all_sync, false, all_sync ? json(n - 1) : absent}});
    table.push_back({ReplicationMode::strict_sync_all, n, {all_sync, all_sync, all_sync ? json(n - 1) : absent}});
  }
  for (const auto& row : table) {
    INFO(manifests::to_string(row.mode) << " with " << row.instances << " instance(s)");
    Lab lab(6, row.instances, row.mode);
    auto c = lab.compiled();
    CHECK(mode_keys(c.dynamic_config) == row.expected);
    CHECK(c.members.size() == static_cast<std::size_t>(row.instances));
    CHECK(c.dynamic_config["ttl"] == 30);
    CHECK(c.dynamic_config["loop_wait"] == 10);
    CHECK(c.dynamic_config["retry_timeout"] == 10);
    CHECK(c.dynamic_config["check_timeline"] == true);
    CHECK(c.dynamic_config["postgresql"]["use_pg_rewind"] == true);
    CHECK(c.dynamic_config["postgresql"]["use_slots"] == true);
    CHECK_FALSE(c.dynamic_config.contains("pause"));
  }
}

TEST_CASE("compile: syncInstances sets the count for sync and strict-sync, and is ignored by *-all") {
  for (auto mode : {ReplicationMode::sync, ReplicationMode::strict_sync}) {
    Lab lab(4, 4, mode);
    lab.cluster().replication.sync_instances = 2;
    auto c = lab.compiled();
    CHECK(c.dynamic_config["synchronous_node_count"] == 2);
    CHECK(c.sync_instances == 2);
    CHECK(c.dynamic_config["synchronous_mode_strict"] == manifests::is_strict(mode));
  }
  Lab all(4, 4, ReplicationMode::sync_all);
  all.cluster().replication.sync_instances = 1;
  auto c = all.compiled();
  CHECK(c.dynamic_config["synchronous_node_count"] == 3);
  CHECK_FALSE(c.sync_instances);
}

TEST_CASE("compile: *-all counts readonly and none group members in instances − 1") {
  Lab lab(6, 6, ReplicationMode::strict_sync_all);
  lab.cluster().replication.groups = {{"ro", Role::readonly, 2, std::nullopt}, {"x", Role::none, 1, std::nullopt}};
  auto c = lab.compiled();
  CHECK(c.dynamic_config["synchronous_node_count"] == 5);
  CHECK(c.dynamic_config["synchronous_mode_strict"] == true);
}

TEST_CASE("compile: roles map to tags: groups take their role, the main group the cluster's") {
  SECTION("ha-read main group") {
    Lab lab(3, 3);
    auto c = lab.compiled();
    for (const auto& m : c.members) {
      CHECK(m.role == Role::ha_read);
      CHECK(m.group.empty());
      CHECK_FALSE(m.tags.nofailover);
      CHECK_FALSE(m.tags.noloadbalance);
      CHECK(m.patroni_config["tags"] ==
            json{{"nofailover", false}, {"noloadbalance", false}, {"clonefrom", false}, {"nosync", false}});
    }
  }
  SECTION("ha main group with readonly and none groups, default group names") {
    Lab lab(6, 6, ReplicationMode::sync);
    lab.cluster().replication.role = Role::ha;
    lab.cluster().replication.groups = {{"", Role::readonly, 2, std::nullopt}, {"", Role::none, 1, std::nullopt}};
    auto c = lab.compiled();
    REQUIRE(c.members.size() == 6);
    struct Expect {
      std::string name, host, group;
      Role role;
      bool nofailover, noloadbalance;
    };
    std::vector<Expect> expected{
        {"sync-cluster-0", "pg-1", "", Role::ha, false, true},
        {"sync-cluster-1", "pg-2", "", Role::ha, false, true},
        {"sync-cluster-2", "pg-3", "", Role::ha, false, true},
        {"sync-cluster-3", "pg-4", "group-1", Role::readonly, true, false},
        {"sync-cluster-4", "pg-5", "group-1", Role::readonly, true, false},
        {"sync-cluster-5", "pg-6", "group-2", Role::none, true, true},
    };
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const auto& m = c.members[i];
      const auto& e = expected[i];
      INFO(e.name);
      CHECK(m.name == e.name);
      CHECK(m.slot == static_cast<int>(i));
      CHECK(m.host == e.host);
      CHECK(m.group == e.group);
      CHECK(m.role == e.role);
      CHECK(m.tags.nofailover == e.nofailover);
      CHECK(m.tags.noloadbalance == e.noloadbalance);
      // Real JSON booleans in the file Patroni reads.
      CHECK(m.patroni_config["tags"]["nofailover"].is_boolean());
      CHECK(m.patroni_config["tags"]["nofailover"] == e.nofailover);
      CHECK(m.patroni_config["tags"]["noloadbalance"] == e.noloadbalance);
      CHECK(m.patroni_config["tags"]["clonefrom"] == false);
      CHECK(m.patroni_config["tags"]["nosync"] == false);
    }
  }
}

TEST_CASE("compile: each member's patroni.yml") {
  Lab lab(3, 3, ReplicationMode::sync);
  auto c = lab.compiled();
  CHECK(c.postgres_major == 15);
  CHECK(c.bin_dir == "/usr/lib/postgresql/15/bin");
  CHECK(c.etcd_endpoints == std::vector<std::string>{"10.250.0.2:2379"});
  CHECK(c.dcs_name == "dcs");
  const auto& m = c.members.at(1);
  CHECK(m.name == "sync-cluster-1");
  CHECK(m.host == "pg-2");
  CHECK(m.address == "10.250.0.12");
  CHECK(m.config_path == "/etc/patroni/15-sync-cluster.yml");
  CHECK(m.service == "patroni@15-sync-cluster");
  const auto& p = m.patroni_config;
  CHECK(p["scope"] == "sync-cluster");
  CHECK(p["namespace"] == "/service/");
  CHECK(p["name"] == "sync-cluster-1");
  const std::string tls = "/etc/patroni/tls/15-sync-cluster/";
  CHECK(p["restapi"] == json{{"listen", "10.250.0.12:8008"},
                             {"connect_address", "10.250.0.12:8008"},
                             {"authentication", {{"username", "pgconverge"}, {"password", "secret:restapi"}}},
                             {"certfile", tls + "server.crt"},
                             {"keyfile", tls + "server.key"},
                             {"cafile", tls + "ca.crt"}});
  CHECK(p["etcd3"] == json{{"hosts", {"10.250.0.2:2379"}}});
  CHECK(p["bootstrap"]["initdb"] == json::array({{{"encoding", "UTF8"}}, "data-checksums"}));
  CHECK(p["bootstrap"]["pg_hba"] == c.dynamic_config["postgresql"]["pg_hba"]);
  const auto& pg = p["postgresql"];
  CHECK(pg["listen"] == "10.250.0.12,127.0.0.1:5432");
  CHECK(pg["connect_address"] == "10.250.0.12:5432");
  CHECK(pg["data_dir"] == "/var/lib/postgresql/15/sync-cluster");
  CHECK(pg["bin_dir"] == "/usr/lib/postgresql/15/bin");
  CHECK(pg["pgpass"] == "/var/lib/postgresql/15/sync-cluster.pgpass");
  CHECK(pg["authentication"] ==
        json{{"superuser", {{"username", "postgres"}, {"password", "secret:superuser"}}},
             {"replication",
              {{"username", "replicator"},
               {"password", "secret:replication"},
               {"sslmode", "verify-full"},
               {"sslrootcert", tls + "ca.crt"}}},
             {"rewind",
              {{"username", "rewind_user"},
               {"password", "secret:rewind"},
               {"sslmode", "verify-full"},
               {"sslrootcert", tls + "ca.crt"}}}});
  CHECK(pg["parameters"] == json{{"unix_socket_directories", "/var/run/postgresql"},
                                 {"ssl", "on"},
                                 {"ssl_cert_file", tls + "server.crt"},
                                 {"ssl_key_file", tls + "server.key"},
                                 {"ssl_ca_file", tls + "ca.crt"}});
  CHECK(c.packages == std::vector<std::string>{"postgresql-15", "postgresql-client-15", "patroni", "python3-etcd"});
  CHECK(c.repositories.empty());
}

TEST_CASE("compile: secrets appear only as references, never as values") {
  Lab lab(3, 3);
  auto c = lab.compiled();
  for (const auto& m : c.members)
    each_string(m.patroni_config, [&](const std::string& path, const std::string& value) {
      if (path.ends_with("/password")) {
        INFO(path);
        CHECK((value == secret_reference(SecretKind::superuser) || value == secret_reference(SecretKind::replication) ||
               value == secret_reference(SecretKind::rewind) || value == secret_reference(SecretKind::restapi)));
      }
    });
  CHECK(secret_reference(SecretKind::rewind) == "secret:rewind");
}

TEST_CASE("compile: bootstrap.dcs is the dynamic config, non-strict for strict modes") {
  for (auto mode : {ReplicationMode::strict_sync, ReplicationMode::strict_sync_all}) {
    INFO(manifests::to_string(mode));
    Lab lab(4, 4, mode);
    auto c = lab.compiled();
    CHECK(c.dynamic_config["synchronous_mode_strict"] == true);
    for (const auto& m : c.members) {
      const auto& dcs = m.patroni_config["bootstrap"]["dcs"];
      CHECK(dcs["synchronous_mode_strict"] == false);
      CHECK(dcs["synchronous_mode"] == true);
      CHECK(dcs["synchronous_node_count"] == c.dynamic_config["synchronous_node_count"]);
      json rest = dcs;
      rest["synchronous_mode_strict"] = true;
      CHECK(rest == c.dynamic_config);
    }
  }
  for (auto mode : {ReplicationMode::async, ReplicationMode::sync, ReplicationMode::sync_all}) {
    Lab lab(4, 4, mode);
    auto c = lab.compiled();
    CHECK(c.members.front().patroni_config["bootstrap"]["dcs"] == c.dynamic_config);
  }
}

TEST_CASE("compile: dynamicConfig overrides merge in, but never the mode's keys") {
  Lab lab(4, 4, ReplicationMode::strict_sync);
  lab.cluster().patroni_dynamic_config = {{"ttl", 10}, {"loop_wait", 1}, {"retry_timeout", 4},
                                          {"maximum_lag_on_failover", 1048576}, {"synchronous_mode", false},
                                          {"pause", true}};
  auto result = compile(lab.set);
  REQUIRE_FALSE(has_errors(result.diagnostics));
  const auto& config = result.state.clusters.at(0).dynamic_config;
  CHECK(config["ttl"] == 10);
  CHECK(config["loop_wait"] == 1);
  CHECK(config["retry_timeout"] == 4);
  CHECK(config["maximum_lag_on_failover"] == 1048576);
  CHECK(config["synchronous_mode"] == true);
  CHECK_FALSE(config.contains("pause"));
  std::vector<std::string> warnings;
  for (const auto& d : result.diagnostics) warnings.push_back(d.field + ": " + d.message);
  CHECK(warnings == std::vector<std::string>{
                        "spec.configurations.patroni.dynamicConfig.pause: ignored (maintenance mode is not declared; "
                        "pgconverge never touches it)",
                        "spec.configurations.patroni.dynamicConfig.synchronous_mode: ignored (set from "
                        "spec.replication.mode)"});
}

TEST_CASE("compile: a mistyped dynamicConfig value is an error, and nothing is compiled") {
  Lab lab(3, 3);
  lab.cluster().patroni_dynamic_config = {{"ttl", "two"}, {"loop_wait", "5"}};
  auto result = compile(lab.set);
  CHECK(result.state.clusters.empty());
  // A number written as a string is refused too: Patroni 3.0.2 stores it, then drops the change.
  std::vector<std::string> found;
  for (const auto& d : result.diagnostics) found.push_back(d.field + ": " + d.message);
  std::sort(found.begin(), found.end());
  CHECK(found == std::vector<std::string>{
                     "spec.configurations.patroni.dynamicConfig.loop_wait: must be an integer (got the string \"5\")",
                     "spec.configurations.patroni.dynamicConfig.ttl: must be an integer (got the string \"two\")"});
}

TEST_CASE("regression: compile passes no dynamicConfig key Patroni does not document, even unvalidated") {
  // Before: any key reached the DCS; "postgresql/parameters/archive_command" became the path of
  // a PATCH that set a shell command, and "~x" made the daemon throw on its first run.
  for (const std::string key : {"postgresql/parameters/archive_command", "postgresql/pg_hba", "~x", "watchdog"}) {
    Lab lab(3, 3);
    lab.cluster().patroni_dynamic_config = {{key, "x"}};
    auto result = compile(lab.set);
    INFO(key);
    CHECK(result.state.clusters.empty());
    REQUIRE(result.diagnostics.size() == 1);
    CHECK(result.diagnostics[0].message.starts_with("unknown key"));
  }
  Lab lab(3, 3);
  lab.cluster().patroni_dynamic_config = {{"slots", {{"s", {{"type", "logical"}, {"database", "app"},
                                                              {"plugin", "../../tmp/evil"}}}}}};
  CHECK(compile(lab.set).state.clusters.empty());
}

TEST_CASE("regression: parameters PostgreSQL runs or loads something from are errors in any case, even unvalidated") {
  for (const std::string name : {"archive_command", "Archive_Command", "RESTORE_COMMAND", "ssl_passphrase_command",
                                 "include_dir", "listen_addresses", "Data_Directory"}) {
    Lab lab(3, 3);
    lab.pgconfig().parameters[name] = "x";
    auto result = compile(lab.set);
    INFO(name);
    CHECK(result.state.clusters.empty());
    CHECK(has_errors(result.diagnostics));
  }
  Lab lab(3, 3);
  lab.pgconfig().parameters["shared_preload_libraries"] = "/tmp/evil";
  CHECK(compile(lab.set).state.clusters.empty());
  Lab unicode(3, 3);
  unicode.pgconfig().parameters["work_mem"] = "8MB\xe2\x80\xa8listen_addresses: '*'";
  CHECK(compile(unicode.set).state.clusters.empty());
}

TEST_CASE("compile: parameter names reach Patroni in lower case, as PostgreSQL reads them") {
  Lab lab(3, 3);
  lab.pgconfig().parameters["Work_Mem"] = "8MB";
  lab.pgconfig().parameters["WAL_LEVEL"] = "minimal";
  lab.pgconfig().parameters["shared_preload_libraries"] = "pg_stat_statements";
  auto result = compile(lab.set);
  REQUIRE_FALSE(has_errors(result.diagnostics));
  const auto& params = result.state.clusters.at(0).dynamic_config["postgresql"]["parameters"];
  CHECK(params["work_mem"] == "8MB");
  CHECK_FALSE(params.contains("Work_Mem"));
  CHECK_FALSE(params.contains("WAL_LEVEL"));
  CHECK(params["wal_level"] == "replica");  // forced, also when the manifest spells it in capitals
  CHECK(params["shared_preload_libraries"] == "pg_stat_statements");
}

TEST_CASE("compile: ttl shorter than loop_wait + 2 × retry_timeout is a warning") {
  Lab lab(3, 3);
  lab.cluster().patroni_dynamic_config = {{"ttl", 10}, {"loop_wait", 5}, {"retry_timeout", 4}};
  auto result = compile(lab.set);
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics[0].severity == Severity::warning);
  CHECK(result.diagnostics[0].message.starts_with("loop_wait + 2 × retry_timeout (13) exceeds ttl (10)"));
}

TEST_CASE("compile: PostgreSQL parameters come from the SGPostgresConfig plus what replication needs") {
  Lab lab(3, 3);
  lab.pgconfig().parameters["wal_sender_timeout"] = "5s";
  lab.pgconfig().parameters["primary_conninfo"] = "host=elsewhere";
  lab.pgconfig().parameters["max_wal_senders"] = "20";
  lab.pgconfig().parameters["max_replication_slots"] = "3";
  auto result = compile(lab.set);
  REQUIRE_FALSE(has_errors(result.diagnostics));
  const auto& params = result.state.clusters.at(0).dynamic_config["postgresql"]["parameters"];
  CHECK(params == json{{"shared_buffers", "256MB"},
                       {"max_connections", "100"},
                       {"wal_sender_timeout", "5s"},
                       {"wal_level", "replica"},
                       {"hot_standby", "on"},
                       {"wal_log_hints", "on"},
                       {"password_encryption", "scram-sha-256"},
                       {"max_wal_senders", "20"},
                       {"max_replication_slots", "10"},
                       {"wal_keep_size", "512MB"}});
  std::vector<std::string> fields;
  for (const auto& d : result.diagnostics) {
    CHECK(d.severity == Severity::warning);
    fields.push_back(d.field);
  }
  CHECK(fields == std::vector<std::string>{"spec.postgresql.conf.primary_conninfo",
                                           "spec.postgresql.conf.max_replication_slots"});
}

TEST_CASE("compile: max_wal_senders and slots grow with the cluster, and wal_level logical is kept") {
  Lab lab(12, 12);
  lab.pgconfig().parameters["wal_level"] = "logical";
  auto c = lab.compiled();
  const auto& params = c.dynamic_config["postgresql"]["parameters"];
  CHECK(params["max_wal_senders"] == "16");
  CHECK(params["max_replication_slots"] == "16");
  CHECK(params["wal_level"] == "logical");
}

TEST_CASE("compile: pg_hba lets members (and declared clients) in with scram-sha-256 over TLS, nothing wide open") {
  Lab lab(3, 2);
  auto c = lab.compiled();
  // Every host of the pool is listed, so scaling within it never waits on a pg_hba change. What
  // crosses the network is hostssl (spec.postgres.ssl is on by default): a replica or client
  // without TLS finds no line. The superuser from the host's own addresses is pgconverge,
  // arriving through the host's SSH.
  CHECK(c.dynamic_config["postgresql"]["pg_hba"] == json::array({
                                                       "local all postgres peer",
                                                       "host replication replicator 127.0.0.1/32 scram-sha-256",
                                                       "host all postgres samehost scram-sha-256",
                                                       "hostssl replication replicator 10.250.0.11/32 scram-sha-256",
                                                       "hostssl replication replicator 10.250.0.12/32 scram-sha-256",
                                                       "hostssl replication replicator 10.250.0.13/32 scram-sha-256",
                                                       "hostssl all all 10.250.0.11/32 scram-sha-256",
                                                       "hostssl all all 10.250.0.12/32 scram-sha-256",
                                                       "hostssl all all 10.250.0.13/32 scram-sha-256",
                                                   }));

  // spec.postgres.ssl.enabled: false — plain host lines, as before TLS.
  lab.cluster().ssl.enabled = false;
  CHECK(lab.compiled().dynamic_config["postgresql"]["pg_hba"] ==
        json::array({
            "local all postgres peer",
            "host replication replicator 127.0.0.1/32 scram-sha-256",
            "host replication replicator 10.250.0.11/32 scram-sha-256",
            "host replication replicator 10.250.0.12/32 scram-sha-256",
            "host replication replicator 10.250.0.13/32 scram-sha-256",
            "host all all 10.250.0.11/32 scram-sha-256",
            "host all all 10.250.0.12/32 scram-sha-256",
            "host all all 10.250.0.13/32 scram-sha-256",
        }));
  lab.cluster().ssl.enabled = true;

  // With declared clients, only those (and the pool) may connect.
  lab.cluster().metadata.annotations[k_client_cidrs_annotation] = "10.250.0.1, 192.168.7.0/24";
  auto with_clients = lab.compiled();
  const auto& hba = with_clients.dynamic_config["postgresql"]["pg_hba"];
  CHECK(hba[hba.size() - 2] == "hostssl all all 10.250.0.1/32 scram-sha-256");
  CHECK(hba.back() == "hostssl all all 192.168.7.0/24 scram-sha-256");
  for (const auto& line : hba) {
    CHECK(line.get<std::string>().find("trust") == std::string::npos);
    CHECK(line.get<std::string>().find("0.0.0.0/0") == std::string::npos);
  }

  lab.cluster().metadata.annotations[k_client_cidrs_annotation] = "10.250.0.300";
  auto bad = compile(lab.set);
  CHECK(bad.state.clusters.empty());
  REQUIRE(bad.diagnostics.size() == 1);
  CHECK(bad.diagnostics[0].message == "\"10.250.0.300\" is not an IPv4/IPv6 address or CIDR");
}

TEST_CASE("compile: declared pg_hba lines come after the control and replication lines, before everyone else's") {
  Lab lab(2, 2);
  lab.cluster().patroni_dynamic_config = json::parse(
      R"({"postgresql": {"pg_hba": ["hostssl all bad 10.9.0.0/16 reject", "hostssl app app 10.9.0.0/16 scram-sha-256"],
                         "parameters": {"work_mem": "8MB"}, "use_slots": false}})");
  auto result = compile(lab.set);
  REQUIRE_FALSE(has_errors(result.diagnostics));
  CHECK(result.state.clusters.at(0).dynamic_config["postgresql"]["pg_hba"] ==
        json::array({
            "local all postgres peer",
            "host replication replicator 127.0.0.1/32 scram-sha-256",
            "host all postgres samehost scram-sha-256",
            "hostssl replication replicator 10.250.0.11/32 scram-sha-256",
            "hostssl replication replicator 10.250.0.12/32 scram-sha-256",
            "hostssl all bad 10.9.0.0/16 reject",
            "hostssl app app 10.9.0.0/16 scram-sha-256",
            "hostssl all all 10.250.0.11/32 scram-sha-256",
            "hostssl all all 10.250.0.12/32 scram-sha-256",
        }));
  // The other keys of postgresql are StackGres's to drop too: warned, not passed on.
  std::vector<std::string> warned;
  for (const auto& d : result.diagnostics) warned.push_back(d.field + ": " + d.message);
  CHECK(std::find(warned.begin(), warned.end(),
                  "spec.configurations.patroni.dynamicConfig.postgresql.parameters: ignored (PostgreSQL parameters "
                  "come from the SGPostgresConfig)") != warned.end());
  CHECK(std::find(warned.begin(), warned.end(),
                  "spec.configurations.patroni.dynamicConfig.postgresql.use_slots: ignored (pgconverge sets it, as "
                  "StackGres does)") != warned.end());
  CHECK(result.state.clusters.at(0).dynamic_config["postgresql"]["use_slots"] == true);
  CHECK_FALSE(result.state.clusters.at(0).dynamic_config["postgresql"]["parameters"].contains("work_mem"));

  // TLS off: the superuser's samehost line stays ahead of them (a declared reject cannot lock
  // pgconverge out), and plain host lines are allowed.
  lab.cluster().ssl.enabled = false;
  lab.cluster().patroni_dynamic_config = json::parse(R"({"postgresql": {"pg_hba": ["host all all 0.0.0.0/0 reject"]}})");
  auto plain = compile(lab.set);
  REQUIRE_FALSE(has_errors(plain.diagnostics));
  const auto& hba = plain.state.clusters.at(0).dynamic_config["postgresql"]["pg_hba"];
  INFO(hba.dump());
  CHECK(hba[2] == "host all postgres samehost scram-sha-256");
  CHECK(hba[5] == "host all all 0.0.0.0/0 reject");

  // What validation refuses, the compiler refuses too.
  lab.cluster().patroni_dynamic_config = json::parse(R"({"postgresql": {"pg_hba": ["local all all trust"]}})");
  CHECK(has_errors(compile(lab.set).diagnostics));
}

TEST_CASE("compile: PostgreSQL 16 needs PGDG, which is noted as a repository and a warning") {
  Lab lab(3, 3);
  lab.cluster().postgres_version = "16.1";
  lab.pgconfig().postgres_version = "16";
  auto result = compile(lab.set);
  REQUIRE_FALSE(has_errors(result.diagnostics));
  const auto& c = result.state.clusters.at(0);
  CHECK(c.postgres_major == 16);
  CHECK(c.postgres_version == "16.1");
  CHECK(c.bin_dir == "/usr/lib/postgresql/16/bin");
  CHECK(c.packages == std::vector<std::string>{"postgresql-16", "postgresql-client-16", "patroni", "python3-etcd"});
  CHECK(c.repositories == std::vector<std::string>{"pgdg"});
  CHECK(c.members.at(0).config_path == "/etc/patroni/16-sync-cluster.yml");
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics[0].str() ==
        "sgcluster.yaml:8:14: warning: spec.postgres.version: the minor version is "
        "not pinned: the hosts get the newest 16.x their repositories have");
}

TEST_CASE("compile: the DCS must be found and unambiguous") {
  SECTION("none declared") {
    Lab lab(3, 3);
    lab.set.etcd_clusters.clear();
    auto result = compile(lab.set);
    CHECK(result.state.clusters.empty());
    REQUIRE(result.diagnostics.size() == 1);
    CHECK(result.diagnostics[0].message ==
          "cluster \"sync-cluster\" needs an EtcdCluster for Patroni's DCS, but none is declared");
  }
  SECTION("two declared, no annotation") {
    Lab lab(3, 3);
    auto other = lab.set.etcd_clusters.front();
    other.metadata.name = "other";
    lab.set.etcd_clusters.push_back(other);
    auto result = compile(lab.set);
    CHECK(result.state.clusters.empty());
    REQUIRE(result.diagnostics.size() == 1);
    CHECK(result.diagnostics[0].str() ==
          "sgcluster.yaml:5:3: metadata.annotations: cluster \"sync-cluster\": 2 EtcdClusters are declared (dcs, "
          "other); name one with the annotation pgconverge.io/dcs");

    lab.cluster().metadata.annotations["pgconverge.io/dcs"] = "other";
    lab.set.etcd_clusters.back().endpoints = {"http://10.9.9.9:2379"};
    auto named = lab.compiled();
    CHECK(named.dcs_name == "other");
    CHECK(named.etcd_endpoints == std::vector<std::string>{"10.9.9.9:2379"});

    lab.cluster().metadata.annotations["pgconverge.io/dcs"] = "nope";
    auto unknown = compile(lab.set);
    CHECK(unknown.state.clusters.empty());
    REQUIRE(unknown.diagnostics.size() == 1);
    CHECK(unknown.diagnostics[0].field == "metadata.annotations.pgconverge.io/dcs");
    CHECK(unknown.diagnostics[0].message == "no EtcdCluster named \"nope\" (declared: dcs, other)");
  }
}

TEST_CASE("compile: nothing is partially compiled when one cluster cannot be placed") {
  Lab lab(5, 3);
  auto second = lab.cluster();
  second.metadata.name = "second";
  second.instances = 2;
  second.node_selector = {{"pool", "second"}};
  lab.set.clusters.push_back(second);
  auto result = compile(lab.set);
  CHECK(result.state.clusters.empty());
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics[0].message == "cluster \"second\" wants 2 hosts but no Host matches nodeSelector {pool: \"second\"}");

  lab.set.hosts[3].metadata.labels = {{"pool", "second"}};
  lab.set.hosts[4].metadata.labels = {{"pool", "second"}};
  auto placed = compile(lab.set);
  REQUIRE_FALSE(has_errors(placed.diagnostics));
  REQUIRE(placed.state.clusters.size() == 2);
  CHECK(placed.state.clusters[1].members.at(0).host == "pg-4");
  CHECK(placed.state.find("second") == &placed.state.clusters[1]);
  CHECK(placed.state.find("nope") == nullptr);
}

TEST_CASE("compile: placement history keeps members where they are") {
  Lab lab(4, 3);
  auto c = lab.compiled({{"sync-cluster", {{0, "pg-4"}, {1, "pg-2"}}}});
  CHECK(c.members.at(0).host == "pg-4");
  CHECK(c.members.at(0).address == "10.250.0.14");
  CHECK(c.members.at(0).patroni_config["restapi"]["listen"] == "10.250.0.14:8008");
  CHECK(c.members.at(1).host == "pg-2");
  CHECK(c.members.at(2).host == "pg-1");
}

TEST_CASE("compile: two clusters of the same name in different namespaces collide") {
  Lab lab(6, 2);
  auto twin = lab.cluster();
  twin.metadata.namespace_ = "other";
  twin.node_selector = {{"pool", "twin"}};
  for (int i = 3; i < 5; ++i) lab.set.hosts[static_cast<std::size_t>(i)].metadata.labels = {{"pool", "twin"}};
  lab.set.clusters.push_back(twin);
  auto result = compile(lab.set);
  CHECK(result.state.clusters.empty());
  REQUIRE_FALSE(result.diagnostics.empty());
  CHECK(result.diagnostics.back().message ==
        "cluster name \"sync-cluster\" is already used in namespace \"failover\" (the Patroni scope and the files on "
        "the hosts are named after it)");
}

TEST_CASE("compile: an SGInstanceProfile's memory sizes shared_buffers and effective_cache_size unless set") {
  Lab lab(3, 3);
  manifests::SGInstanceProfile profile;
  profile.kind = "SGInstanceProfile";
  profile.metadata.name = "size-s";
  profile.metadata.namespace_ = "failover";
  profile.cpu = "1";
  profile.memory = "2Gi";
  lab.set.instance_profiles.push_back(profile);
  lab.cluster().sg_instance_profile = "size-s";
  auto params = [&] { return lab.compiled().dynamic_config["postgresql"]["parameters"]; };
  // The SGPostgresConfig sets shared_buffers (256MB): kept; effective_cache_size from the profile.
  CHECK(params()["shared_buffers"] == "256MB");
  CHECK(params()["effective_cache_size"] == "1536MB");
  lab.pgconfig().parameters.erase("shared_buffers");
  CHECK(params()["shared_buffers"] == "512MB");
  for (const auto& [memory, shared] : std::vector<std::pair<std::string, std::string>>{
           {"512Mi", "128MB"}, {"1G", "238MB"}, {"4294967296", "1024MB"}, {"1.5Gi", "384MB"}, {"0.5Gi", "128MB"}}) {
    lab.set.instance_profiles.front().memory = memory;
    CHECK(params()["shared_buffers"] == shared);
  }
  // A decimal memory (StackGres's pattern allows 1.5Gi) counts as much as it says.
  lab.set.instance_profiles.front().memory = "1.5Gi";
  CHECK(lab.compiled().memory_bytes == 1536LL * 1024 * 1024);
  // Without a profile, nothing is derived.
  lab.cluster().sg_instance_profile.clear();
  CHECK_FALSE(params().contains("shared_buffers"));
  CHECK_FALSE(params().contains("effective_cache_size"));
}

TEST_CASE("compile: pods.persistentVolume.size in bytes, decimal quantities included") {
  Lab lab(3, 2);
  for (const auto& [size, bytes] : std::vector<std::pair<std::string, long long>>{
           {"10Gi", 10LL << 30}, {"1.8Ti", 1979120929996LL}, {"0.5Gi", 1LL << 29}, {"5G", 5000000000LL}}) {
    INFO(size);
    lab.cluster().persistent_volume_size = size;
    CHECK(lab.compiled().volume_bytes == bytes);
  }
  // Too big for 64 bits: no check at plan time rather than a wrapped figure.
  lab.cluster().persistent_volume_size = "999999999999Ti";
  CHECK_FALSE(lab.compiled().volume_bytes.has_value());
}

TEST_CASE("compile: with TLS, each member serves PostgreSQL and the REST API with its certificate and verifies its peers") {
  Lab lab(3, 2);
  auto c = lab.compiled();
  const auto& m = c.members.at(0);
  CHECK(m.tls.dir == "/etc/patroni/tls/15-" + c.name);
  const auto& p = m.patroni_config;
  CHECK(p["postgresql"]["parameters"]["ssl"] == "on");
  CHECK(p["postgresql"]["parameters"]["ssl_cert_file"] == m.tls.certificate);
  CHECK(p["postgresql"]["parameters"]["ssl_key_file"] == m.tls.private_key);
  CHECK(p["postgresql"]["parameters"]["ssl_ca_file"] == m.tls.ca);
  // Generated certificates name each member's address: replicas and pg_rewind check it.
  for (const char* user : {"replication", "rewind"}) {
    CHECK(p["postgresql"]["authentication"][user]["sslmode"] == "verify-full");
    CHECK(p["postgresql"]["authentication"][user]["sslrootcert"] == m.tls.ca);
  }
  CHECK(p["restapi"]["certfile"] == m.tls.certificate);
  CHECK(p["restapi"]["keyfile"] == m.tls.private_key);
  CHECK(p["restapi"]["cafile"] == m.tls.ca);
  CHECK(p["restapi"].contains("authentication"));  // unsafe calls need the password

  lab.cluster().ssl.enabled = false;
  auto off = lab.compiled();
  const auto& q = off.members.at(0).patroni_config;
  CHECK(off.members.at(0).tls.dir.empty());
  CHECK_FALSE(q["postgresql"]["parameters"].contains("ssl"));
  CHECK_FALSE(q["restapi"].contains("certfile"));
  CHECK_FALSE(q["postgresql"]["authentication"]["replication"].contains("sslmode"));
}

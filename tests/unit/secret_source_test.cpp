// Where a cluster's secrets come from when the state dir has none (reconciler/secret_source.hpp):
// recovered from the hosts, refused, or generated only at a verified first bootstrap.
#include <catch2/catch.hpp>

#include "core_fixtures.hpp"
#include "reconciler/secret_source.hpp"
#include "reconciler/yaml_json.hpp"

using namespace pgc::reconciler;

namespace {

// Every host of the cluster answered and holds nothing of it.
std::map<std::string, ObservedHost> fresh_hosts(const DesiredCluster& c) {
  std::map<std::string, ObservedHost> hosts;
  for (const auto& m : c.members) {
    auto h = pgc::testing::debian_host(m.host);
    h.files[m.config_path] = std::nullopt;
    h.data_dirs["/var/lib/postgresql/15/c"] = false;
    h.services[m.service] = "inactive";
    hosts[m.host] = h;
  }
  return hosts;
}

std::string config_with(const DesiredCluster& c, const ClusterSecrets& s) {
  return to_yaml(resolve_secrets(c.members[0].patroni_config, s));
}

SecretDecision decide(const DesiredCluster& c, const std::map<std::string, ObservedHost>& hosts,
                      std::optional<bool> dcs = false) {
  auto e = host_evidence(c, hosts);
  if (!hosts_decide(e)) {
    e.dcs_has_cluster = dcs;
    if (!dcs) e.dcs_error = "etcd 10.0.0.1:2379: connection refused";
  }
  return decide_missing_secrets(c, e, "/state/secrets/default.c.json");
}

}  // namespace

TEST_CASE("secret source: fresh hosts, every one answered, an empty DCS: new secrets") {
  auto c = pgc::testing::make_cluster(3, pgc::manifests::ReplicationMode::sync);
  auto d = decide(c, fresh_hosts(c));
  REQUIRE(d.origin == SecretOrigin::generated);
  REQUIRE(d.secrets);
  CHECK(d.secrets->complete());
}

TEST_CASE("secret source: no member answered: no secrets generated, the hosts named") {
  auto c = pgc::testing::make_cluster(3, pgc::manifests::ReplicationMode::sync);
  auto hosts = fresh_hosts(c);
  for (auto& [name, h] : hosts) {
    h = ObservedHost{};
    h.name = name;
    h.error = "host " + name + ": connection refused";
  }
  auto d = decide(c, hosts);
  CHECK(d.origin == SecretOrigin::refused);
  CHECK_FALSE(d.secrets);
  CHECK(d.error.find("cluster c: no secrets in /state/secrets/default.c.json and not every host answered (host h1: "
                     "connection refused, host h2: connection refused, host h3: connection refused)") == 0);
  CHECK(d.error.find("pgconverge secrets recover c") != std::string::npos);
}

TEST_CASE("secret source: one host of three silent is enough to refuse") {
  auto c = pgc::testing::make_cluster(3, pgc::manifests::ReplicationMode::sync);
  auto hosts = fresh_hosts(c);
  hosts["h3"].reachable = false;
  auto d = decide(c, hosts);
  CHECK(d.origin == SecretOrigin::refused);
  CHECK(d.error.find("h3") != std::string::npos);
}

TEST_CASE("secret source: an existing cluster without its secrets anywhere is refused, with the way out") {
  auto c = pgc::testing::make_cluster(2, pgc::manifests::ReplicationMode::async);
  SECTION("a data directory") {
    auto hosts = fresh_hosts(c);
    hosts["h2"].data_dirs["/var/lib/postgresql/15/c"] = true;
    auto d = decide(c, hosts);
    CHECK(d.origin == SecretOrigin::refused);
    CHECK(d.error.find("the cluster exists (data directory /var/lib/postgresql/15/c on h2)") != std::string::npos);
    CHECK(d.error.find("pgconverge secrets rotate c") != std::string::npos);
  }
  SECTION("Patroni running") {
    auto hosts = fresh_hosts(c);
    hosts["h1"].services["patroni@15-c"] = "active";
    CHECK(decide(c, hosts).origin == SecretOrigin::refused);
  }
  SECTION("a Patroni config without passwords") {
    auto hosts = fresh_hosts(c);
    hosts["h1"].files["/etc/patroni/15-c.yml"] = "scope: c\nname: c-0\n";
    CHECK(decide(c, hosts).origin == SecretOrigin::refused);
  }
  SECTION("only the DCS knows it") {
    auto d = decide(c, fresh_hosts(c), true);
    CHECK(d.origin == SecretOrigin::refused);
    CHECK(d.error.find("its DCS holds the cluster's keys (/service/c/initialize") != std::string::npos);
  }
  SECTION("the DCS cannot be asked") {
    auto d = decide(c, fresh_hosts(c), std::nullopt);
    CHECK(d.origin == SecretOrigin::refused);
    CHECK(d.error.find("connection refused") != std::string::npos);
  }
}

TEST_CASE("secret source: read back from the hosts' configs when they agree; refused when they differ") {
  auto c = pgc::testing::make_cluster(2, pgc::manifests::ReplicationMode::async);
  auto s = pgc::testing::fixed_secrets();
  auto hosts = fresh_hosts(c);
  hosts["h1"].files["/etc/patroni/15-c.yml"] = config_with(c, s);
  hosts["h2"].reachable = false;  // recovering reads what works; a silent host does not matter
  auto d = decide(c, hosts);
  REQUIRE(d.origin == SecretOrigin::recovered);
  CHECK(d.secrets->values == s.values);

  hosts["h2"] = fresh_hosts(c)["h2"];
  auto other = s;
  other.values[SecretKind::replication] = "DIFFERENTreplication";
  hosts["h2"].files["/etc/patroni/15-c.yml"] = config_with(c, other);
  d = decide(c, hosts);
  CHECK(d.origin == SecretOrigin::refused);
  CHECK(d.error.find("the Patroni configs on h1 and h2 hold different replication passwords") != std::string::npos);
  CHECK(d.error.find("REPLsecret2") == std::string::npos);
  CHECK(d.error.find("DIFFERENTreplication") == std::string::npos);
}

TEST_CASE("secret source: another cluster's config at the same path is no evidence of this one's secrets") {
  auto c = pgc::testing::make_cluster(1, pgc::manifests::ReplicationMode::async);
  auto hosts = fresh_hosts(c);
  auto foreign = c.members[0].patroni_config;
  foreign["scope"] = "other";
  hosts["h1"].files["/etc/patroni/15-c.yml"] = to_yaml(resolve_secrets(foreign, pgc::testing::fixed_secrets()));
  auto d = decide(c, hosts);
  CHECK(d.origin == SecretOrigin::refused);
}

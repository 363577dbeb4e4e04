// The etcd pgconverge runs (EtcdCluster spec.hosts): schema and validation messages with
// file:line, compiled members and /etc/default/etcd, the probe's etcd lines, and planning (a new
// cluster, no change, drift, member add before start, member remove before stop, refusals).
#include <catch2/catch.hpp>

#include <algorithm>

#include "core_fixtures.hpp"
#include "manifests/loader.hpp"
#include "manifests_fixtures.hpp"
#include "reconciler/etcd.hpp"
#include "reconciler/etcd_tls.hpp"
#include "reconciler/observe.hpp"
#include "reconciler/plan.hpp"
#include "util/strings.hpp"

using namespace pgc;
using namespace pgc::reconciler;
using pgc::testing::ManifestDir;
using Lines = std::vector<std::string>;

namespace {

// Five Hosts pg-1..pg-5 (10.0.0.11..15); pg-1..pg-3 labelled etcd: "yes".
std::string hosts_yaml(int n = 5) {
  std::string out;
  for (int i = 1; i <= n; ++i) {
    out += "---\napiVersion: pgconverge.io/v1\nkind: Host\nmetadata:\n  name: pg-" + std::to_string(i) + "\n";
    out += i <= 3 ? "  labels: {etcd: \"yes\", pgconverge.io/cluster: c}\n" : "  labels: {etcd: \"no\"}\n";
    out += "spec:\n  address: 10.0.0.1" + std::to_string(i) + "\n";
  }
  return out;
}

const std::string k_etcd_head = "apiVersion: pgconverge.io/v1\nkind: EtcdCluster\nmetadata: {name: dcs}\nspec:\n";  // 1-4
// The plain etcd (spec.tls.enabled false) the tests below TLS's own keep to.
const std::string k_plain = "  tls: {enabled: false}\n";

Lines errors_of(const std::string& etcd_text) {
  ManifestDir dir;
  dir.write("hosts.yaml", hosts_yaml());
  dir.write("etcd.yaml", etcd_text);
  Lines out;
  auto loaded = dir.load();
  for (const auto& line : dir.printed(loaded))
    if (line.rfind("etcd.yaml", 0) == 0) out.push_back(line);
  return out;
}

manifests::ManifestSet load_set(const std::string& etcd_text, const std::string& extra = "") {
  ManifestDir dir;
  dir.write("hosts.yaml", hosts_yaml());
  dir.write("etcd.yaml", etcd_text);
  if (!extra.empty()) dir.write("cluster.yaml", extra);
  auto loaded = dir.load();
  for (const auto& d : loaded.diagnostics) INFO(d.str());
  REQUIRE_FALSE(pgc::has_errors(loaded.diagnostics));
  return loaded.manifests;
}

DesiredState compiled(const manifests::ManifestSet& set) {
  auto result = compile(set);
  for (const auto& d : result.diagnostics) INFO(d.str());
  REQUIRE_FALSE(has_errors(result.diagnostics));
  return result.state;
}

// An observed state of the etcd member hosts. `formed`: each listed member has data, runs, is
// healthy and its file is the rendering for a cluster formed from `members`.
struct Live {
  std::vector<std::string> members;       // names in the cluster (member list)
  std::set<std::string> unhealthy;
};

ObservedState observed_for(const manifests::ManifestSet& set, const DesiredState& desired, const Live* live) {
  ObservedState o;
  const auto& etcd = desired.etcds.front();
  for (const auto& h : set.hosts) {
    ObservedHost oh = testing::debian_host(h.metadata.name);
    for (const auto& p : etcd.packages) oh.packages[p] = true;
    oh.files[etcd.config_path] = std::nullopt;
    oh.services[etcd.service] = "inactive";
    oh.service_enabled[etcd.service] = "disabled";
    if (etcd.member(h.metadata.name)) oh.etcd.emplace().data_dir = etcd.data_dir;
    o.hosts[h.metadata.name] = oh;
  }
  if (!live) return o;
  std::vector<ObservedEtcdMember> list;
  std::vector<std::string> initial;
  const std::string scheme = etcd.scheme() + "://";
  for (const auto& name : live->members) {
    std::string address = "10.0.0.1" + name.substr(3);
    list.push_back(ObservedEtcdMember{"a" + name.substr(3), name, {scheme + address + ":2380"},
                                      {scheme + address + ":2379"}});
    initial.push_back(name + "=" + scheme + address + ":2380");
  }
  for (const auto& name : live->members) {
    auto& oh = o.hosts.at(name);
    oh.services[etcd.service] = "active";
    oh.service_enabled[etcd.service] = "enabled";
    auto& e = oh.etcd ? *oh.etcd : oh.etcd.emplace();
    e.data_dir = etcd.data_dir;
    e.has_data = true;
    e.running = true;
    e.healthy = !live->unhealthy.contains(name);
    if (!e.healthy) e.health_error = "context deadline exceeded";
    e.listed = e.healthy;
    e.members = list;
    DesiredEtcdMember m{name, name, "10.0.0.1" + name.substr(3), scheme + "10.0.0.1" + name.substr(3) + ":2380",
                        scheme + "10.0.0.1" + name.substr(3) + ":2379"};
    oh.files[etcd.config_path] = etcd_config_text(etcd, m, EtcdInitial{join(initial, ","), "new"});
  }
  return o;
}

std::vector<std::string> steps_of(const std::vector<Change>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) out.push_back(to_string(c.step) + " " + (c.host.empty() ? nlohmann::json(std::get<steps::EtcdStart>(c.step).hosts).dump() : c.host));
  return out;
}

std::string b64(const std::string& in) {
  static const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned val = 0;
  int bits = -6;
  for (unsigned char c : in) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(chars[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(chars[((val << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

}  // namespace

TEST_CASE("etcd: spec.hosts errors name file:line, the field and why", "[etcd][manifests]") {
  CHECK(errors_of(k_etcd_head + "  hosts: [pg-1, pg-2]\n") ==
        Lines{"etcd.yaml:5:3: spec.hosts: must select 1, 3 or 5 Hosts, got 2 (pg-1, pg-2): etcd needs a majority of "
              "its members (quorum) to work, so an even count tolerates no more failures than one member fewer, and "
              "more than 5 only slows every write"});
  CHECK(errors_of(k_etcd_head + "  hosts:\n  - pg-1\n  - pg-7\n  - pg-3\n") ==
        Lines{"etcd.yaml:7:5: spec.hosts[1]: Host \"pg-7\" not found (did you mean 'pg-1'?)"});
  CHECK(errors_of(k_etcd_head + "  hosts: [pg-1, pg-2, pg-1]\n") ==
        Lines{"etcd.yaml:5:23: spec.hosts[2]: duplicate Host \"pg-1\" (first listed at etcd.yaml:5:11)"});
  CHECK(errors_of(k_etcd_head + "  endpoints: [10.0.0.2:2379]\n  hosts: [pg-1]\n") ==
        Lines{"etcd.yaml:6:3: spec.hosts: set either spec.endpoints (an etcd run elsewhere) or spec.hosts (etcd "
              "installed and run by pgconverge on those Hosts), not both"});
  CHECK(errors_of(k_etcd_head + "  hosts:\n    nodeSelector: {etcd: \"no\"}\n") ==
        Lines{"etcd.yaml:5:3: spec.hosts: must select 1, 3 or 5 Hosts, got 2 (pg-4, pg-5): etcd needs a majority of "
              "its members (quorum) to work, so an even count tolerates no more failures than one member fewer, and "
              "more than 5 only slows every write"});
  CHECK(errors_of(k_etcd_head + "  hosts:\n    nodeSelectr: {etcd: \"yes\"}\n") ==
        Lines{"etcd.yaml:6:5: spec.hosts.nodeSelectr: unknown field (did you mean 'spec.hosts.nodeSelector'?)"});
  CHECK(errors_of(k_etcd_head + "  hosts: pg-1\n") ==
        Lines{"etcd.yaml:5:3: spec.hosts: must be a list of Host names or a mapping {nodeSelector: {label: value}} "
              "(got \"pg-1\")"});
  CHECK(errors_of(k_etcd_head + "  hosts: [pg-1]\n  dataDirectory: /var/lib/etcd/default\n  clientPort: 70000\n") ==
        Lines{"etcd.yaml:6:3: spec.dataDirectory: must not be /var/lib/etcd/default or below it: Debian's "
              "etcd-server package starts a single-member cluster \"default\" there on install (got "
              "\"/var/lib/etcd/default\")",
              "etcd.yaml:7:3: spec.clientPort: must be between 1 and 65535, got 70000"});
  CHECK(errors_of(k_etcd_head + "  hosts: [pg-1]\n  clientPort: 2380\n") ==
        Lines{"etcd.yaml:4:1: spec.peerPort: must differ from spec.clientPort (2380)"});
  CHECK(errors_of(k_etcd_head + "  hosts:\n    nodeSelector: {etcd: \"yes\"}\n").empty());
  CHECK(errors_of(k_etcd_head + "  hosts: [pg-5]\n  dataDirectory: /var/lib/etcd/dcs-data\n").empty());
  CHECK(errors_of(k_etcd_head + "  hosts: [pg-5]\n  dataDirectory: /var/lib/etcd/a/b.c_@+-\n").empty());
}

TEST_CASE("etcd: spec.dataDirectory only below /var/lib/etcd/, written plainly", "[etcd][validate]") {
  // apply creates it as root and gives it to etcd: any other path would let a pusher re-own a
  // system directory (/usr/lib) or reach one through . .. // or a trailing slash.
  const std::string below = "must be a directory below /var/lib/etcd/ (pgconverge creates it as root and gives it "
                            "to the etcd user: no other path may be named)";
  const std::string plain = "must be /var/lib/etcd/ followed by names of letters, digits and ._@+- separated by "
                            "single slashes, without . or .. components and without a trailing slash";
  const std::vector<std::pair<std::string, std::string>> cases{
      {"/usr/lib", below},
      {"/srv/etcd", below},
      {"/var/lib/etcd", below},
      {"/var/lib/etcdx/dcs", below},
      {"var/lib/etcd/dcs", below},
      {"//var/lib/etcd/dcs", below},
      {"/var/lib/etcd/", plain},
      {"/var/lib/etcd/../../../usr/lib", plain},
      {"/var/lib/etcd/dcs/..", plain},
      {"/var/lib/etcd/./dcs", plain},
      {"/var/lib/etcd/dcs/.", plain},
      {"/var/lib/etcd//dcs", plain},
      {"/var/lib/etcd/dcs/", plain},
      {"/var/lib/etcd/a b", plain},
      {"/var/lib/etcd/dcs\n", plain},
      {"/var/lib/etcd/d\u00e9", plain},
  };
  for (const auto& [dir, why] : cases) {
    INFO(dir);
    std::string yaml_value = "\"" + dir + "\"";
    auto errors = errors_of(k_etcd_head + "  hosts: [pg-5]\n  dataDirectory: " + yaml_value + "\n");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].rfind("etcd.yaml:6:3: spec.dataDirectory: " + why + " (got ", 0) == 0);
  }
  CHECK(errors_of(k_etcd_head + "  hosts: [pg-5]\n  dataDirectory: /var/lib/etcd/default/member\n") ==
        Lines{"etcd.yaml:6:3: spec.dataDirectory: must not be /var/lib/etcd/default or below it: Debian's "
              "etcd-server package starts a single-member cluster \"default\" there on install (got "
              "\"/var/lib/etcd/default/member\")"});
  // Named "default" without spec.dataDirectory: the same directory, through metadata.name.
  CHECK(errors_of("apiVersion: pgconverge.io/v1\nkind: EtcdCluster\nmetadata: {name: default}\nspec:\n"
                  "  hosts: [pg-5]\n") ==
        Lines{"etcd.yaml:3:12: metadata.name: gives the data directory \"/var/lib/etcd/default\", which must not be "
              "/var/lib/etcd/default or below it: Debian's etcd-server package starts a single-member cluster "
              "\"default\" there on install; set spec.dataDirectory"});
  // The rule itself, as apply checks it again before creating the directory.
  CHECK(pgc::manifests::check_etcd_data_directory("/var/lib/etcd/dcs").empty());
  CHECK(pgc::manifests::check_etcd_data_directory("/usr/lib") == below);
  CHECK(pgc::manifests::check_etcd_data_directory("/var/lib/etcd/x/../../..") == plain);
}

TEST_CASE("etcd: members, /etc/default/etcd and Patroni's etcd3 hosts", "[etcd][compile]") {
  const std::string cluster =
      "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata: {name: c}\n"
      "spec: {postgres: {version: '15'}, instances: 3}\n";
  auto set = load_set(k_etcd_head + "  hosts:\n    nodeSelector: {etcd: \"yes\"}\n  clientPort: 2479\n" + k_plain, cluster);
  auto desired = compiled(set);
  REQUIRE(desired.etcds.size() == 1);
  const auto& etcd = desired.etcds.front();
  CHECK(etcd.data_dir == "/var/lib/etcd/dcs");
  REQUIRE(etcd.members.size() == 3);
  CHECK(etcd.members[2].name == "pg-3");
  CHECK(etcd_config_text(etcd, etcd.members[0], new_cluster_initial(etcd)) ==
        "# Managed by pgconverge (EtcdCluster dcs): local edits are reverted on the next apply.\n"
        "# ETCD_INITIAL_* are read only on an empty data directory; they are kept as first written.\n"
        "ETCD_NAME=pg-1\n"
        "ETCD_DATA_DIR=/var/lib/etcd/dcs\n"
        "ETCD_LISTEN_PEER_URLS=http://10.0.0.11:2380\n"
        "ETCD_LISTEN_CLIENT_URLS=http://10.0.0.11:2479,http://127.0.0.1:2479\n"
        "ETCD_INITIAL_ADVERTISE_PEER_URLS=http://10.0.0.11:2380\n"
        "ETCD_ADVERTISE_CLIENT_URLS=http://10.0.0.11:2479\n"
        "ETCD_INITIAL_CLUSTER=pg-1=http://10.0.0.11:2380,pg-2=http://10.0.0.12:2380,pg-3=http://10.0.0.13:2380\n"
        "ETCD_INITIAL_CLUSTER_STATE=new\n"
        "ETCD_INITIAL_CLUSTER_TOKEN=dcs\n");
  REQUIRE(desired.clusters.size() == 1);
  CHECK(desired.clusters[0].etcd_endpoints == std::vector<std::string>{"10.0.0.11:2479", "10.0.0.12:2479", "10.0.0.13:2479"});
  CHECK(desired.clusters[0].members[0].patroni_config["etcd3"]["hosts"].size() == 3);
  // The probe asks only member hosts, on the local client URL.
  CHECK(etcd_probe_args(desired, "pg-2") == std::vector<std::string>{"etcddir", "/var/lib/etcd/dcs", "etcdtls", "/etc/etcd/tls",
                                                                  "etcd", "http://127.0.0.1:2479"});
  // Other hosts too (a member being removed): etcd is asked only where etcd.service runs.
  CHECK(etcd_probe_args(desired, "pg-4") == etcd_probe_args(desired, "pg-2"));
  auto probe = probe_for(desired);
  CHECK(std::find(probe.packages.begin(), probe.packages.end(), "etcd-server") != probe.packages.end());
  CHECK(std::find(probe.files.begin(), probe.files.end(), "/etc/default/etcd") != probe.files.end());
}

TEST_CASE("etcd: the probe's etcd lines", "[etcd][observe]") {
  std::string health = R"([{"endpoint":"http://127.0.0.1:2379","health":true,"took":"3ms"}])";
  std::string list = R"({"header":{"cluster_id":1,"member_id":14944731092466272679},"members":[)"
                     R"({"ID":14944731092466272679,"name":"pg-3","peerURLs":["http://10.0.0.13:2380"],"clientURLs":["http://10.0.0.13:2379"]},)"
                     R"({"ID":255,"peerURLs":["http://10.0.0.14:2380"]}]})";
  std::string output = "etcddir /var/lib/etcd/dcs 1\netcd http://127.0.0.1:2379 1 " + b64(health) + " " + b64(list) + "\nend\n";
  auto host = parse_host_probe("pg-3", output);
  REQUIRE(host);
  REQUIRE(host->etcd);
  CHECK(host->etcd->has_data);
  CHECK(host->etcd->healthy);
  CHECK(host->etcd->member_id == "cf6659bf7e3009a7");
  REQUIRE(host->etcd->members.size() == 2);
  CHECK(host->etcd->members[1].id == "ff");
  CHECK(host->etcd->members[1].name.empty());

  std::string sick = R"([{"endpoint":"http://127.0.0.1:2379","health":false,"error":"context deadline exceeded"}])";
  auto down = parse_host_probe("pg-3", "etcddir /d 0\netcd http://127.0.0.1:2379 1 " + b64(sick) + " -\nend\n");
  REQUIRE(down);
  CHECK_FALSE(down->etcd->healthy);
  CHECK(down->etcd->health_error == "context deadline exceeded");
  CHECK_FALSE(down->etcd->listed);
  CHECK_FALSE(parse_host_probe("pg-3", "etcd http://127.0.0.1:2379 1 x\nend\n"));
}

TEST_CASE("etcd: a new cluster is configured, started together, before any Patroni start", "[etcd][plan]") {
  const std::string cluster =
      "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata: {name: c}\n"
      "spec: {postgres: {version: '15'}, instances: 3}\n";
  auto set = load_set(k_etcd_head + "  hosts: [pg-1, pg-2, pg-3]\n" + k_plain, cluster);
  auto desired = compiled(set);
  auto observed = observed_for(set, desired, nullptr);
  for (auto& [name, h] : observed.hosts) h.packages["etcd-server"] = false;
  std::map<std::string, ClusterSecrets> secrets{{"c", testing::fixed_secrets()}};
  auto plan = diff(set, desired, observed, secrets);
  CHECK(steps_of(plan.host_changes) ==
        std::vector<std::string>{"install-packages pg-1", "install-packages pg-2", "install-packages pg-3",
                                 "etcd-write-config pg-1", "etcd-write-config pg-2", "etcd-write-config pg-3",
                                 R"(etcd-start ["pg-1","pg-2","pg-3"])"});
  CHECK(std::get<steps::EtcdStart>(plan.host_changes.back().step).restart);
  CHECK(std::get<steps::EtcdStart>(plan.host_changes.back().step).wait_hosts.size() == 3);
  CHECK(std::get<steps::EtcdWriteConfig>(plan.host_changes[3].step).content.find("ETCD_INITIAL_CLUSTER_STATE=new\n") !=
        std::string::npos);
  // Patroni's starts are cluster changes: the executor runs every host change before them.
  REQUIRE(plan.clusters.size() == 1);
  CHECK(std::any_of(plan.clusters[0].changes.begin(), plan.clusters[0].changes.end(),
                    [](const Change& c) { return is<steps::StartMember>(c.step); }));
  CHECK(plan.host_errors.empty());
}

TEST_CASE("etcd: a formed cluster plans nothing; a drifted file is rewritten and that member restarted", "[etcd][plan]") {
  auto set = load_set(k_etcd_head + "  hosts: [pg-1, pg-2, pg-3]\n" + k_plain);
  auto desired = compiled(set);
  Live live{{"pg-1", "pg-2", "pg-3"}, {}};
  auto observed = observed_for(set, desired, &live);
  auto plan = plan_etcd(set, desired, observed);
  CHECK(plan.changes.empty());
  CHECK(plan.errors.empty());

  auto& file = *observed.hosts.at("pg-2").files.at("/etc/default/etcd");
  file += "ETCD_HEARTBEAT_INTERVAL=150\n";
  plan = plan_etcd(set, desired, observed);
  REQUIRE(steps_of(plan.changes) == std::vector<std::string>{"etcd-write-config pg-2", "etcd-restart pg-2"});
  CHECK(plan.changes[0].reason.find("drift in ETCD_HEARTBEAT_INTERVAL") == 0);
  CHECK(std::get<steps::EtcdRestart>(plan.changes[1].step).wait_hosts == std::vector<std::string>{"pg-1", "pg-2", "pg-3"});
  // The kept ETCD_INITIAL_* values are not drift.
  CHECK(std::get<steps::EtcdWriteConfig>(plan.changes[0].step).content.find("ETCD_INITIAL_CLUSTER_STATE=new") != std::string::npos);

  // Restarting pg-2 while pg-3 is down would leave 1 of 3: below quorum, refused.
  live.unhealthy = {"pg-3"};
  observed = observed_for(set, desired, &live);
  *observed.hosts.at("pg-2").files.at("/etc/default/etcd") += "ETCD_HEARTBEAT_INTERVAL=150\n";
  plan = plan_etcd(set, desired, observed);
  CHECK(plan.changes.empty());
  REQUIRE(plan.errors.size() == 1);
  CHECK(plan.errors[0].find("below quorum (2)") != std::string::npos);
}

TEST_CASE("etcd: adding members: member add before the new member's config and start", "[etcd][plan]") {
  auto set = load_set(k_etcd_head + "  hosts: [pg-1, pg-2, pg-3]\n" + k_plain);
  auto desired = compiled(set);
  Live live{{"pg-1"}, {}};
  auto observed = observed_for(set, desired, &live);
  auto plan = plan_etcd(set, desired, observed);
  CHECK(plan.errors.empty());
  CHECK(steps_of(plan.changes) ==
        std::vector<std::string>{"etcd-member-add pg-1", "etcd-write-config pg-2", R"(etcd-start ["pg-2"])",
                                 "etcd-member-add pg-1", "etcd-write-config pg-3", R"(etcd-start ["pg-3"])"});
  CHECK(std::get<steps::EtcdMemberAdd>(plan.changes[0].step).member == "pg-2");
  CHECK(std::get<steps::EtcdMemberAdd>(plan.changes[0].step).peer_url == "http://10.0.0.12:2380");
  auto content = std::get<steps::EtcdWriteConfig>(plan.changes[4].step).content;
  CHECK(content.find("ETCD_INITIAL_CLUSTER=pg-1=http://10.0.0.11:2380,pg-2=http://10.0.0.12:2380,"
                     "pg-3=http://10.0.0.13:2380\nETCD_INITIAL_CLUSTER_STATE=existing\n") != std::string::npos);
  CHECK(std::get<steps::EtcdStart>(plan.changes[5].step).wait_hosts == std::vector<std::string>{"pg-1", "pg-2", "pg-3"});

  // An unhealthy member: adding is refused with the reason.
  Live two{{"pg-1", "pg-2"}, {"pg-2"}};
  auto sick = observed_for(set, desired, &two);
  plan = plan_etcd(set, desired, sick);
  CHECK(plan.changes.empty());
  REQUIRE(plan.errors.size() == 1);
  CHECK(plan.errors[0] == "etcd dcs: membership change (add pg-3) refused: member(s) pg-2 are not healthy, and adding "
                          "a member is only safe on a healthy cluster");

  // A host that holds data of an earlier membership is never wiped: refused.
  observed.hosts.at("pg-2").etcd->has_data = true;
  plan = plan_etcd(set, desired, observed);
  CHECK(plan.changes.empty());
  REQUIRE(plan.errors.size() == 1);
  CHECK(plan.errors[0].find("pgconverge never deletes a data directory") != std::string::npos);
}

TEST_CASE("etcd: removing members: member remove before stop; refused below quorum", "[etcd][plan]") {
  auto set = load_set(k_etcd_head + "  hosts: [pg-1, pg-2, pg-3]\n" + k_plain);
  auto desired = compiled(set);
  Live live{{"pg-1", "pg-2", "pg-3", "pg-4", "pg-5"}, {}};
  auto observed = observed_for(set, desired, &live);
  auto plan = plan_etcd(set, desired, observed);
  CHECK(plan.errors.empty());
  CHECK(steps_of(plan.changes) == std::vector<std::string>{"etcd-member-remove pg-1", "etcd-stop pg-4",
                                                           "etcd-member-remove pg-1", "etcd-stop pg-5"});
  CHECK(std::get<steps::EtcdMemberRemove>(plan.changes[0].step).member == "pg-4");
  CHECK(std::get<steps::EtcdMemberRemove>(plan.changes[0].step).id == "a4");

  // pg-2 down: 4 of 5 healthy, the removals keep a quorum at every step.
  live.unhealthy = {"pg-2"};
  observed = observed_for(set, desired, &live);
  plan = plan_etcd(set, desired, observed);
  CHECK(plan.errors.empty());
  CHECK(plan.changes.size() == 4);

  // pg-2 and pg-3 down: removing pg-4 would leave 2 healthy of 4 (quorum 3): refused.
  live.unhealthy = {"pg-2", "pg-3"};
  observed = observed_for(set, desired, &live);
  plan = plan_etcd(set, desired, observed);
  CHECK(plan.changes.empty());
  REQUIRE(plan.errors.size() == 1);
  CHECK(plan.errors[0] == "etcd dcs: member pg-4 is not removed: the 4 members left would have 2 healthy, below quorum (3)");

  // A dead member (pg-4) is removed when the rest keep a quorum.
  live.unhealthy = {"pg-4"};
  observed = observed_for(set, desired, &live);
  plan = plan_etcd(set, desired, observed);
  CHECK(plan.errors.empty());
  CHECK(steps_of(plan.changes).front() == "etcd-member-remove pg-1");
}

TEST_CASE("etcd: no quorum and unreachable hosts plan nothing but say why", "[etcd][plan]") {
  auto set = load_set(k_etcd_head + "  hosts: [pg-1, pg-2, pg-3]\n" + k_plain);
  auto desired = compiled(set);
  Live live{{"pg-1", "pg-2", "pg-3"}, {"pg-1", "pg-2", "pg-3"}};
  auto observed = observed_for(set, desired, &live);
  auto plan = plan_etcd(set, desired, observed);
  CHECK(plan.changes.empty());
  REQUIRE(plan.errors.size() == 1);
  CHECK(plan.errors[0].find("run but none is healthy") != std::string::npos);

  // Stopped members with data: started together.
  for (auto& [name, h] : observed.hosts) h.services["etcd.service"] = "inactive";
  plan = plan_etcd(set, desired, observed);
  CHECK(steps_of(plan.changes) == std::vector<std::string>{R"(etcd-start ["pg-1","pg-2","pg-3"])"});
  CHECK(!std::get<steps::EtcdStart>(plan.changes[0].step).restart);

  observed.hosts.at("pg-3").reachable = false;
  observed.hosts.at("pg-3").error = "host pg-3: connection refused";
  plan = plan_etcd(set, desired, observed);
  CHECK(plan.changes.empty());
  REQUIRE(plan.errors.size() == 1);
  CHECK(plan.errors[0].find("etcd dcs: member pg-3 on host pg-3: host pg-3: connection refused") == 0);
}

namespace {

const std::string k_cluster_c =
    "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata: {name: c}\n"
    "spec: {postgres: {version: '15'}, instances: 3}\n";

// The files a host holds when wanted was issued by ca (valid from `from` for `days`).
void hold_certificate(ObservedHost& host, const EtcdCertificate& wanted, const providers::crypto::KeyAndCertificate& ca,
                      std::chrono::sys_seconds from) {
  auto content = etcd_certificate_content(wanted, ca, from);
  REQUIRE(content);
  host.files[wanted.files.certificate] = content->certificate;
  host.files[wanted.files.private_key] = content->private_key;
  host.files[wanted.files.ca] = content->ca;
}

std::chrono::sys_seconds now_s() { return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()); }

}  // namespace

TEST_CASE("etcd TLS: /etc/default/etcd, Patroni's etcd3 section and the probe", "[etcd][tls][compile]") {
  auto set = load_set(k_etcd_head + "  hosts:\n    nodeSelector: {etcd: \"yes\"}\n  clientPort: 2479\n", k_cluster_c);
  auto desired = compiled(set);
  const auto& etcd = desired.etcds.front();
  CHECK(etcd.tls);
  CHECK(etcd_config_text(etcd, etcd.members[0], new_cluster_initial(etcd)) ==
        "# Managed by pgconverge (EtcdCluster dcs): local edits are reverted on the next apply.\n"
        "# ETCD_INITIAL_* are read only on an empty data directory; they are kept as first written.\n"
        "ETCD_NAME=pg-1\n"
        "ETCD_DATA_DIR=/var/lib/etcd/dcs\n"
        "ETCD_LISTEN_PEER_URLS=https://10.0.0.11:2380\n"
        "ETCD_LISTEN_CLIENT_URLS=https://10.0.0.11:2479,https://127.0.0.1:2479\n"
        "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.11:2380\n"
        "ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.11:2479\n"
        "ETCD_INITIAL_CLUSTER=pg-1=https://10.0.0.11:2380,pg-2=https://10.0.0.12:2380,pg-3=https://10.0.0.13:2380\n"
        "ETCD_INITIAL_CLUSTER_STATE=new\n"
        "ETCD_INITIAL_CLUSTER_TOKEN=dcs\n"
        "ETCD_CERT_FILE=/etc/etcd/tls/member.crt\n"
        "ETCD_KEY_FILE=/etc/etcd/tls/member.key\n"
        "ETCD_TRUSTED_CA_FILE=/etc/etcd/tls/ca.crt\n"
        "ETCD_CLIENT_CERT_AUTH=true\n"
        "ETCD_PEER_CERT_FILE=/etc/etcd/tls/member.crt\n"
        "ETCD_PEER_KEY_FILE=/etc/etcd/tls/member.key\n"
        "ETCD_PEER_TRUSTED_CA_FILE=/etc/etcd/tls/ca.crt\n"
        "ETCD_PEER_CLIENT_CERT_AUTH=true\n");
  const auto& etcd3 = desired.clusters[0].members[0].patroni_config["etcd3"];
  CHECK(etcd3 == nlohmann::json{{"hosts", {"10.0.0.11:2479", "10.0.0.12:2479", "10.0.0.13:2479"}},
                                {"protocol", "https"},
                                {"cacert", "/etc/patroni/etcd-tls/dcs/ca.crt"},
                                {"cert", "/etc/patroni/etcd-tls/dcs/client.crt"},
                                {"key", "/etc/patroni/etcd-tls/dcs/client.key"}});
  CHECK(etcd_probe_args(desired, "pg-2") ==
        std::vector<std::string>{"etcddir", "/var/lib/etcd/dcs", "etcdtls", "/etc/etcd/tls", "etcd", "https://127.0.0.1:2479"});
  auto probe = probe_for(desired);
  for (const char* path : {"/etc/etcd/tls/member.crt", "/etc/etcd/tls/member.key", "/etc/etcd/tls/ca.crt",
                           "/etc/patroni/etcd-tls/dcs/client.crt"})
    CHECK(std::find(probe.files.begin(), probe.files.end(), path) != probe.files.end());
  CHECK(etcdctl_tls_flags("https://127.0.0.1:2379") ==
        std::vector<std::string>{"--cacert=/etc/etcd/tls/ca.crt", "--cert=/etc/etcd/tls/member.crt",
                                 "--key=/etc/etcd/tls/member.key"});
  CHECK(etcdctl_tls_flags("http://127.0.0.1:2379").empty());
  // A member's certificate names what its clients dial: the Host's address and loopback (IP
  // addresses only: a dNSName makes Patroni's python-etcd need the idna module).
  auto wanted = etcd_member_certificate(etcd, etcd.members[1]);
  CHECK(wanted.common_name == "pg-2");
  CHECK(wanted.dns_names.empty());
  CHECK(wanted.ip_addresses == std::vector<std::string>{"10.0.0.12", "127.0.0.1"});
}

TEST_CASE("etcd TLS: a new cluster's certificates come before its configuration and start", "[etcd][tls][plan]") {
  auto set = load_set(k_etcd_head + "  hosts: [pg-1, pg-2, pg-3]\n", k_cluster_c);
  auto desired = compiled(set);
  auto observed = observed_for(set, desired, nullptr);
  auto plan = plan_etcd(set, desired, observed);
  CHECK(plan.errors.empty());
  CHECK(steps_of(plan.changes) ==
        std::vector<std::string>{"etcd-write-certificate pg-1", "etcd-write-certificate pg-2",
                                 "etcd-write-certificate pg-3", "etcd-write-certificate pg-1",
                                 "etcd-write-certificate pg-2", "etcd-write-certificate pg-3",
                                 "etcd-write-config pg-1", "etcd-write-config pg-2", "etcd-write-config pg-3",
                                 R"(etcd-start ["pg-1","pg-2","pg-3"])"});
  const auto& member = std::get<steps::EtcdWriteCertificate>(plan.changes[0].step);
  CHECK(member.files.private_key == "/etc/etcd/tls/member.key");
  CHECK(member.files.group == "etcd");
  CHECK(member.wait_hosts.empty());  // not running yet
  CHECK(plan.changes[0].reason == "absent");
  CHECK(plan.changes[0].before == "(none)");
  CHECK(plan.changes[0].after.rfind("CN=pg-1, until ", 0) == 0);
  const auto& patroni = std::get<steps::EtcdWriteCertificate>(plan.changes[3].step);
  CHECK(patroni.files.private_key == "/etc/patroni/etcd-tls/dcs/client.key");
  CHECK(patroni.files.group == "postgres");
  CHECK(patroni.common_name == "patroni@pg-1");
  CHECK(std::get<steps::EtcdStart>(plan.changes.back().step).client_url == "https://127.0.0.1:2379");
}

TEST_CASE("etcd TLS: certificates as wanted plan nothing; one due for renewal is renewed alone, then /health",
          "[etcd][tls][plan]") {
  auto set = load_set(k_etcd_head + "  hosts: [pg-1, pg-2, pg-3]\n", k_cluster_c);
  auto desired = compiled(set);
  auto ca = providers::crypto::create_ca("test etcd CA", now_s() - std::chrono::hours{1}, now_s() + std::chrono::days{3650});
  REQUIRE(ca);
  desired.etcds.front().ca_certificate_pem = ca->certificate_pem;
  const auto& etcd = desired.etcds.front();
  Live live{{"pg-1", "pg-2", "pg-3"}, {}};
  auto observed = observed_for(set, desired, &live);
  for (const auto& m : etcd.members) {
    hold_certificate(observed.hosts.at(m.host), etcd_member_certificate(etcd, m), *ca, now_s());
    hold_certificate(observed.hosts.at(m.host), etcd_patroni_certificate(etcd, m.host), *ca, now_s());
  }
  auto plan = plan_etcd(set, desired, observed);
  CHECK(plan.errors.empty());
  CHECK(steps_of(plan.changes).empty());

  // pg-2's member certificate was issued 340 days ago: 25 days left, inside the 30-day threshold.
  hold_certificate(observed.hosts.at("pg-2"), etcd_member_certificate(etcd, etcd.members[1]), *ca,
                   now_s() - std::chrono::days{340});
  plan = plan_etcd(set, desired, observed);
  REQUIRE(steps_of(plan.changes) == std::vector<std::string>{"etcd-write-certificate pg-2"});
  CHECK(plan.changes[0].reason.find("expires ") == 0);
  CHECK(plan.changes[0].reason.find("renewed 30 days before; then /health on pg-2") != std::string::npos);
  CHECK(std::get<steps::EtcdWriteCertificate>(plan.changes[0].step).wait_hosts == std::vector<std::string>{"pg-2"});

  // Another CA's certificate (a replaced state dir) is issued again; so is one for other names.
  auto other = providers::crypto::create_ca("other", now_s() - std::chrono::hours{1}, now_s() + std::chrono::days{10});
  REQUIRE(other);
  hold_certificate(observed.hosts.at("pg-2"), etcd_member_certificate(etcd, etcd.members[1]), *other, now_s());
  hold_certificate(observed.hosts.at("pg-3"), etcd_member_certificate(etcd, etcd.members[0]), *ca, now_s());
  plan = plan_etcd(set, desired, observed);
  REQUIRE(plan.changes.size() == 2);
  CHECK(plan.changes[0].reason.rfind("not signed by the etcd's CA", 0) == 0);
  CHECK(plan.changes[1].reason.rfind("issued for other names (CN=pg-1)", 0) == 0);
}

TEST_CASE("etcd TLS: an etcd formed plain by an older pgconverge is refused, with the way forward",
          "[etcd][tls][plan]") {
  // Formed plain: the hosts' files and member list say http://.
  auto plain_set = load_set(k_etcd_head + "  hosts: [pg-1, pg-2, pg-3]\n" + k_plain, k_cluster_c);
  auto plain = compiled(plain_set);
  Live live{{"pg-1", "pg-2", "pg-3"}, {}};
  auto observed = observed_for(plain_set, plain, &live);
  // Now the manifests ask for TLS (the default).
  auto set = load_set(k_etcd_head + "  hosts: [pg-1, pg-2, pg-3]\n", k_cluster_c);
  auto desired = compiled(set);
  auto plan = plan_etcd(set, desired, observed);
  CHECK(plan.changes.empty());
  CHECK(plan.refused == std::set<std::string>{"dcs"});
  REQUIRE(plan.errors.size() == 1);
  CHECK(plan.errors[0].find("etcd dcs: member pg-1 (pg-1) serves plain http (/etc/default/etcd: "
                            "http://10.0.0.11:2379) but spec.tls.enabled is true (EtcdCluster dcs at ") == 0);
  CHECK(plan.errors[0].find("etcd.yaml:1:1): pgconverge does not switch a running etcd to TLS") != std::string::npos);
  CHECK(plan.errors[0].find("set spec.tls.enabled: false to keep it as it is") != std::string::npos);
  // The clusters on it are not planned either: a Patroni configured for https would lose its DCS.
  std::map<std::string, ClusterSecrets> secrets{{"c", testing::fixed_secrets()}};
  auto full = diff(set, desired, observed, secrets);
  REQUIRE(full.clusters.size() == 1);
  CHECK(full.clusters[0].changes.empty());
  CHECK(std::find(full.clusters[0].errors.begin(), full.clusters[0].errors.end(),
                  "cluster c: not planned: its etcd dcs is refused (see the host errors)") != full.clusters[0].errors.end());
  // And the other way: a TLS etcd with spec.tls.enabled false.
  auto tls_observed = observed_for(set, desired, &live);
  auto back = plan_etcd(plain_set, plain, tls_observed);
  REQUIRE(back.errors.size() == 1);
  CHECK(back.errors[0].find("serves https") != std::string::npos);
}

TEST_CASE("etcd TLS: an external etcd over https: Patroni's etcd3, its files copied to each Patroni host",
          "[etcd][tls][plan]") {
  namespace x509 = providers::crypto;
  ManifestDir dir;
  auto ca = x509::create_ca("corp etcd CA", now_s() - std::chrono::hours{1}, now_s() + std::chrono::days{30});
  REQUIRE(ca);
  auto client = x509::issue_leaf(*ca, {.common_name = "patroni", .dns_names = {}, .ip_addresses = {},
                                       .not_before = now_s() - std::chrono::hours{1},
                                       .not_after = now_s() + std::chrono::days{20}});
  REQUIRE(client);
  dir.write("tls/ca.crt", ca->certificate_pem);
  dir.write("tls/client.crt", client->certificate_pem);
  dir.write("tls/client.key", client->key_pem);
  std::filesystem::permissions(dir.path() / "tls/client.key", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  dir.write("hosts.yaml", hosts_yaml());
  dir.write("etcd.yaml", k_etcd_head + "  endpoints: [\"https://10.0.0.2:2379\", \"https://10.0.0.3:2379\"]\n"
                                       "  tls: {caFile: tls/ca.crt, certFile: tls/client.crt, keyFile: tls/client.key}\n");
  dir.write("cluster.yaml", k_cluster_c);
  auto loaded = dir.load();
  for (const auto& d : loaded.diagnostics) INFO(d.str());
  REQUIRE_FALSE(has_errors(loaded.diagnostics));
  auto desired = compiled(loaded.manifests);
  REQUIRE(desired.external_etcds.size() == 1);
  CHECK(desired.external_etcds[0].endpoints == std::vector<std::string>{"10.0.0.2:2379", "10.0.0.3:2379"});
  CHECK(desired.clusters[0].members[0].patroni_config["etcd3"] ==
        nlohmann::json{{"hosts", {"10.0.0.2:2379", "10.0.0.3:2379"}},
                       {"protocol", "https"},
                       {"cacert", "/etc/patroni/etcd-tls/dcs/ca.crt"},
                       {"cert", "/etc/patroni/etcd-tls/dcs/client.crt"},
                       {"key", "/etc/patroni/etcd-tls/dcs/client.key"}});
  auto probe = probe_for(desired);
  CHECK(std::find(probe.files.begin(), probe.files.end(), "/etc/patroni/etcd-tls/dcs/client.key") != probe.files.end());

  ObservedState observed;
  for (const auto& h : loaded.manifests.hosts) observed.hosts[h.metadata.name] = testing::debian_host(h.metadata.name);
  auto plan = plan_etcd(loaded.manifests, desired, observed);
  CHECK(plan.errors.empty());
  REQUIRE(steps_of(plan.changes) == std::vector<std::string>{"etcd-write-certificate pg-1", "etcd-write-certificate pg-2",
                                                             "etcd-write-certificate pg-3"});
  CHECK(plan.changes[0].after.rfind("CN=patroni, until ", 0) == 0);
  const auto& step = std::get<steps::EtcdWriteCertificate>(plan.changes[0].step);
  CHECK(step.given.ca_file == (dir.path() / "tls/ca.crt").generic_string());
  // The files there: nothing to copy; a changed key on the controller is copied again.
  for (auto& [name, h] : observed.hosts) {
    h.files["/etc/patroni/etcd-tls/dcs/ca.crt"] = ca->certificate_pem;
    h.files["/etc/patroni/etcd-tls/dcs/client.crt"] = client->certificate_pem;
    h.files["/etc/patroni/etcd-tls/dcs/client.key"] = client->key_pem;
  }
  CHECK(plan_etcd(loaded.manifests, desired, observed).changes.empty());
  observed.hosts.at("pg-2").files["/etc/patroni/etcd-tls/dcs/client.key"] = "old key";
  plan = plan_etcd(loaded.manifests, desired, observed);
  REQUIRE(steps_of(plan.changes) == std::vector<std::string>{"etcd-write-certificate pg-2"});
  CHECK(plan.changes[0].reason.rfind("differ from ", 0) == 0);
}

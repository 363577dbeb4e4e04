#include <catch2/catch.hpp>

#include "reconciler/placement.hpp"

using namespace pgc;
using namespace pgc::reconciler;
using manifests::Role;

namespace {

manifests::Host host(const std::string& name, const std::string& address,
                     std::map<std::string, std::string> labels = {{"pgconverge.io/lab", "true"}}) {
  manifests::Host h;
  h.api_version = "pgconverge.io/v1";
  h.kind = "Host";
  h.metadata.name = name;
  h.metadata.namespace_ = "default";
  h.metadata.labels = std::move(labels);
  h.address = address;
  return h;
}

manifests::SGCluster cluster(const std::string& name, int instances,
                             std::map<std::string, std::string> node_selector = {{"pgconverge.io/lab", "true"}}) {
  manifests::SGCluster c;
  c.api_version = "stackgres.io/v1";
  c.kind = "SGCluster";
  c.metadata.name = name;
  c.metadata.namespace_ = "failover";
  c.instances = instances;
  c.postgres_version = "15";
  c.node_selector = std::move(node_selector);
  c.locations.set("", SourceLocation{"sgcluster.yaml", 1, 1});
  c.locations.set("spec.instances", SourceLocation{"sgcluster.yaml", 9, 3});
  c.locations.set("spec.pods.scheduling.nodeSelector", SourceLocation{"sgcluster.yaml", 14, 7});
  return c;
}

std::vector<std::string> names(const SlotHosts& hosts) {
  std::vector<std::string> out;
  for (const auto* h : hosts) out.push_back(h->metadata.name);
  return out;
}

std::vector<manifests::Host> numbered_hosts(int n) {
  std::vector<manifests::Host> out;
  for (int i = 1; i <= n; ++i) out.push_back(host("pg-" + std::to_string(i), "10.250.0." + std::to_string(10 + i)));
  return out;
}

}  // namespace

TEST_CASE("placement: natural order puts pg-2 before pg-10") {
  CHECK(natural_less("pg-2", "pg-10"));
  CHECK_FALSE(natural_less("pg-10", "pg-2"));
  CHECK(natural_less("pg-1", "pg-2"));
  CHECK(natural_less("pg-9", "pg-10"));
  CHECK(natural_less("a", "b"));
  CHECK(natural_less("pg", "pg-1"));
  CHECK(natural_less("db-100", "pg-1"));
  CHECK(natural_less("pg-02", "pg-2"));  // equal as numbers: plain order decides, never both ways
  CHECK_FALSE(natural_less("pg-2", "pg-02"));
  CHECK_FALSE(natural_less("pg-1", "pg-1"));
  CHECK(natural_less("pg-99999999999999999999", "pg-100000000000000000000"));
}

TEST_CASE("placement: slots are the main group first, then each group in order with its role") {
  auto c = cluster("c", 6);
  c.replication.role = Role::ha;
  c.replication.groups = {{"ro", Role::readonly, 2, std::nullopt}, {"", Role::none, 1, std::nullopt}};
  auto slots = member_slots(c);
  REQUIRE(slots.size() == 6);
  for (int i = 0; i < 6; ++i) CHECK(slots[static_cast<std::size_t>(i)].index == i);
  CHECK(slots[0].group.empty());
  CHECK(slots[0].role == Role::ha);
  CHECK(slots[2].group.empty());
  CHECK(slots[2].role == Role::ha);
  CHECK(slots[3].group == "ro");
  CHECK(slots[3].role == Role::readonly);
  CHECK(slots[4].group == "ro");
  CHECK(slots[5].group == "group-2");  // the default name counts from 1 by array position
  CHECK(slots[5].role == Role::none);
}

TEST_CASE("placement: nodeSelector needs every label to match") {
  std::vector<manifests::Host> hosts{
      host("pg-1", "10.0.0.11", {{"zone", "a"}, {"tier", "db"}}),
      host("pg-2", "10.0.0.12", {{"zone", "a"}}),
      host("pg-3", "10.0.0.13", {{"zone", "a"}, {"tier", "db"}, {"extra", "x"}}),
      host("pg-4", "10.0.0.14", {{"zone", "b"}, {"tier", "db"}}),
  };
  auto c = cluster("c", 2, {{"zone", "a"}, {"tier", "db"}});
  auto placed = place_cluster(c, hosts, {});
  REQUIRE(placed);
  CHECK(names(*placed) == std::vector<std::string>{"pg-1", "pg-3"});
}

TEST_CASE("placement: without nodeSelector, hosts labelled pgconverge.io/cluster: <name>") {
  std::vector<manifests::Host> hosts{
      host("pg-1", "10.0.0.11", {{"pgconverge.io/cluster", "other"}}),
      host("pg-2", "10.0.0.12", {{"pgconverge.io/cluster", "sync-cluster"}}),
      host("pg-3", "10.0.0.13", {{"pgconverge.io/lab", "true"}}),
      host("pg-4", "10.0.0.14", {{"pgconverge.io/cluster", "sync-cluster"}}),
  };
  auto c = cluster("sync-cluster", 2, {});
  CHECK(selector_description(c) == "label {pgconverge.io/cluster: \"sync-cluster\"}");
  auto placed = place_cluster(c, hosts, {});
  REQUIRE(placed);
  CHECK(names(*placed) == std::vector<std::string>{"pg-2", "pg-4"});
}

TEST_CASE("placement: the first hosts in natural name order take the slots in order") {
  std::vector<manifests::Host> hosts{host("pg-10", "10.0.0.20"), host("pg-2", "10.0.0.12"), host("pg-1", "10.0.0.11"),
                                     host("pg-3", "10.0.0.13")};
  auto placed = place_cluster(cluster("c", 3), hosts, {});
  REQUIRE(placed);
  CHECK(names(*placed) == std::vector<std::string>{"pg-1", "pg-2", "pg-3"});
}

TEST_CASE("placement: sticky, a member never moves because a host was added before it") {
  auto hosts = numbered_hosts(3);
  auto first = place_cluster(cluster("c", 3), hosts, {});
  REQUIRE(first);
  CHECK(names(*first) == std::vector<std::string>{"pg-1", "pg-2", "pg-3"});

  // pg-0 sorts first; everything remembered stays put.
  hosts.push_back(host("pg-0", "10.250.0.10"));
  auto again = place_cluster(cluster("c", 3), hosts, {{0, "pg-1"}, {1, "pg-2"}, {2, "pg-3"}});
  REQUIRE(again);
  CHECK(names(*again) == std::vector<std::string>{"pg-1", "pg-2", "pg-3"});

  // Only slot 0 is remembered (on pg-3): it keeps pg-3, the others take pg-0 then pg-1.
  auto partial = place_cluster(cluster("c", 3), hosts, {{0, "pg-3"}});
  REQUIRE(partial);
  CHECK(names(*partial) == std::vector<std::string>{"pg-3", "pg-0", "pg-1"});
}

TEST_CASE("placement: a remembered host that no longer matches gives up its slot") {
  auto hosts = numbered_hosts(4);
  hosts[1].metadata.labels.clear();  // pg-2 leaves the pool
  // Slot 1 moves; pg-3 still holds scaled-down slot 2's data, so the clean pg-4 is taken first.
  auto placed = place_cluster(cluster("c", 2), hosts, {{0, "pg-1"}, {1, "pg-2"}, {2, "pg-3"}});
  REQUIRE(placed);
  CHECK(names(*placed) == std::vector<std::string>{"pg-1", "pg-4"});
}

TEST_CASE("placement: scaling up reuses the host a member was scaled down from") {
  auto hosts = numbered_hosts(4);
  auto placed = place_cluster(cluster("c", 3), hosts, {{0, "pg-1"}, {1, "pg-2"}, {2, "pg-4"}});
  REQUIRE(placed);
  CHECK(names(*placed) == std::vector<std::string>{"pg-1", "pg-2", "pg-4"});
}

TEST_CASE("placement: too few hosts is an error at spec.instances naming cluster, count and hosts") {
  auto placed = place_cluster(cluster("sync-cluster", 4), numbered_hosts(3), {});
  REQUIRE_FALSE(placed);
  CHECK(placed.error().str() ==
        "sgcluster.yaml:9:3: spec.instances: cluster \"sync-cluster\" wants 4 hosts but only 3 match nodeSelector "
        "{pgconverge.io/lab: \"true\"}: pg-1, pg-2, pg-3");
  CHECK(placed.error().severity == Severity::error);
}

TEST_CASE("placement: no matching host at all says so") {
  auto by_selector = place_cluster(cluster("sync-cluster", 4), {}, {});
  REQUIRE_FALSE(by_selector);
  CHECK(by_selector.error().message ==
        "cluster \"sync-cluster\" wants 4 hosts but no Host matches nodeSelector {pgconverge.io/lab: \"true\"}");
  auto by_label = place_cluster(cluster("sync-cluster", 1), numbered_hosts(2), {});
  REQUIRE(by_label);
  auto one = place_cluster(cluster("sync-cluster", 2, {}),
                           {host("pg-1", "10.0.0.11", {{"pgconverge.io/cluster", "sync-cluster"}})}, {});
  REQUIRE_FALSE(one);
  CHECK(one.error().message ==
        "cluster \"sync-cluster\" wants 2 hosts but only 1 is labelled {pgconverge.io/cluster: \"sync-cluster\"}: pg-1");
  auto none = place_cluster(cluster("sync-cluster", 1, {}), numbered_hosts(2), {});
  REQUIRE_FALSE(none);
  CHECK(none.error().message ==
        "cluster \"sync-cluster\" wants 1 host but no Host is labelled {pgconverge.io/cluster: \"sync-cluster\"}");
}

TEST_CASE("placement: zero instances need no host") {
  auto placed = place_cluster(cluster("c", 0), {}, {});
  REQUIRE(placed);
  CHECK(placed->empty());
}

TEST_CASE("placement: two clusters may not share a host") {
  manifests::ManifestSet set;
  set.hosts = numbered_hosts(4);
  set.clusters.push_back(cluster("a", 2));
  set.clusters.push_back(cluster("b", 2));
  auto placements = place_all(set, {});
  CHECK(placements.by_cluster.contains("a"));
  CHECK_FALSE(placements.by_cluster.contains("b"));
  REQUIRE(placements.diagnostics.size() == 2);
  CHECK(placements.diagnostics[0].str() ==
        "sgcluster.yaml:14:7: spec.pods.scheduling.nodeSelector: host pg-1 is already used by cluster \"a\" (a host "
        "runs one cluster: both would need PostgreSQL port 5432 and Patroni port 8008)");

  // Disjoint pools are fine.
  set.clusters[1].node_selector = {{"pool", "b"}};
  set.hosts[2].metadata.labels = {{"pool", "b"}};
  set.hosts[3].metadata.labels = {{"pool", "b"}};
  auto disjoint = place_all(set, {});
  CHECK(disjoint.diagnostics.empty());
  CHECK(names(disjoint.by_cluster.at("a")) == std::vector<std::string>{"pg-1", "pg-2"});
  CHECK(names(disjoint.by_cluster.at("b")) == std::vector<std::string>{"pg-3", "pg-4"});
}

TEST_CASE("placement: place_all applies each cluster's history") {
  manifests::ManifestSet set;
  set.hosts = numbered_hosts(3);
  set.hosts.push_back(host("pg-0", "10.250.0.10"));
  set.clusters.push_back(cluster("c", 2));
  auto placements = place_all(set, {{"c", {{0, "pg-2"}, {1, "pg-3"}}}, {"gone", {{0, "pg-1"}}}});
  CHECK(placements.diagnostics.empty());
  CHECK(names(placements.by_cluster.at("c")) == std::vector<std::string>{"pg-2", "pg-3"});
}

TEST_CASE("placement: history moves the placement only when it places a slot elsewhere than from scratch") {
  manifests::ManifestSet set;
  set.hosts = numbered_hosts(4);
  set.clusters.push_back(cluster("c", 2));
  // Members where a fresh placement puts them: a compile with this history changes nothing.
  CHECK_FALSE(history_moves_placement(set, {}));
  CHECK_FALSE(history_moves_placement(set, {{"c", {{0, "pg-1"}}}}));
  CHECK_FALSE(history_moves_placement(set, {{"c", {{0, "pg-1"}, {1, "pg-2"}}}}));
  // A member that sits elsewhere keeps its host.
  CHECK(history_moves_placement(set, {{"c", {{1, "pg-3"}}}}));
  // A scaled-down member's host (slot 2) comes last, so slot 1 goes to pg-3, not pg-2.
  CHECK(history_moves_placement(set, {{"c", {{0, "pg-1"}, {2, "pg-2"}}}}));
}

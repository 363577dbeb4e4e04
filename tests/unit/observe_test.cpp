#include <catch2/catch.hpp>

#include "core_fixtures.hpp"
#include "reconciler/observe.hpp"

using namespace pgc::reconciler;

TEST_CASE("observe: the host probe's output is parsed and contents come back byte for byte") {
  // "a: 1\nb: 'x y'\n" in base64
  auto host = parse_host_probe("h1",
                               "pkg patroni 1\npkg postgresql-15 0\n"
                               "svc patroni@15-c active enabled\n"
                               "file /etc/patroni/15-c.yml 1 YTogMQpiOiAneCB5Jwo=\n"
                               "file /etc/patroni/15-d.yml 0\n"
                               "dir /var/lib/postgresql/15/c 1\nend\n");
  REQUIRE(host);
  CHECK(host->packages == std::map<std::string, bool>{{"patroni", true}, {"postgresql-15", false}});
  CHECK(host->services.at("patroni@15-c") == "active");
  CHECK(host->service_enabled.at("patroni@15-c") == "enabled");
  CHECK(host->files.at("/etc/patroni/15-c.yml") == std::optional<std::string>("a: 1\nb: 'x y'\n"));
  CHECK(host->files.at("/etc/patroni/15-d.yml") == std::nullopt);
  CHECK(host->data_dirs.at("/var/lib/postgresql/15/c"));
}

TEST_CASE("observe: a truncated or garbled probe is an error, not an empty host") {
  CHECK(parse_host_probe("h1", "pkg patroni 1\n").error().message == "host h1: probe: output ended early");
  CHECK(parse_host_probe("h1", "bash: dpkg-query: not found\nend\n").error().message ==
        "host h1: probe: unexpected output line: bash: dpkg-query: not found");
}

TEST_CASE("observe: probe arguments come in kind/value pairs for every cluster's files and services") {
  auto c = pgc::testing::make_cluster(2, pgc::manifests::ReplicationMode::async);
  DesiredState desired{{c}};
  auto probe = probe_for(desired);
  CHECK(probe.files == std::vector<std::string>{"/etc/patroni/15-c.yml"});
  CHECK(probe.services == std::vector<std::string>{"patroni@15-c"});
  CHECK(probe.data_dirs == std::vector<std::string>{"/var/lib/postgresql/15/c"});
  auto args = host_probe_args(probe);
  CHECK(args.size() == 2 * (probe.packages.size() + 3));
  CHECK(args[0] == "pkg");
}

TEST_CASE("observe: placement history comes from the member names in configs found on hosts") {
  auto c = pgc::testing::make_cluster(2, pgc::manifests::ReplicationMode::async);
  auto secrets = pgc::testing::fixed_secrets();
  std::map<std::string, ObservedHost> hosts;
  hosts["h9"].files["/etc/patroni/15-c.yml"] = "scope: c\nname: c-1\n";
  hosts["h1"].files["/etc/patroni/15-c.yml"] = "scope: other\nname: c-0\n";  // another cluster's scope
  auto history = placement_from(DesiredState{{c}}, hosts);
  CHECK(history == PlacementHistory{{"c", {{1, "h9"}}}});
}

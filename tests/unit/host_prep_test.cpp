#include <catch2/catch.hpp>

#include "core_fixtures.hpp"
#include "reconciler/host_prep.hpp"
#include "reconciler/observe.hpp"
#include "reconciler/plan.hpp"

using namespace pgc;
using namespace pgc::reconciler;
using manifests::ReplicationMode;

namespace {

struct Fixture {
  DesiredState desired;
  manifests::ManifestSet manifests;
  ObservedState observed;

  explicit Fixture(int n = 2) {
    auto c = testing::make_cluster(n, ReplicationMode::sync);
    c.packages = {"postgresql-15", "postgresql-client-15", "patroni", "python3-etcd"};
    for (auto& m : c.members) m.patroni_config["postgresql"]["listen"] = m.address + ",127.0.0.1:5432";
    for (const auto& m : c.members) {
      manifests::Host h;
      h.metadata.name = m.host;
      h.address = m.address;
      manifests.hosts.push_back(h);
      ObservedHost oh;
      oh.name = m.host;
      oh.reachable = true;
      oh.os = testing::debian12();
      oh.has_apt = true;
      oh.apt_lists = true;
      for (const auto& p : c.packages) oh.packages[p] = true;
      observed.hosts[m.host] = oh;
    }
    desired.clusters.push_back(c);
  }
  ObservedHost& host(const std::string& name) { return observed.hosts.at(name); }
  HostPreparation prepare() const { return plan_host_preparation(manifests, desired, observed); }
};

std::vector<std::string> steps_of(const HostPreparation& p, const std::string& host) {
  std::vector<std::string> out;
  for (const auto& c : p.changes)
    if (c.host == host) out.push_back(to_string(c.step));
  return out;
}

}  // namespace

TEST_CASE("host prep: a prepared Debian host needs nothing") {
  Fixture f;
  auto p = f.prepare();
  CHECK(p.changes.empty());
  CHECK(p.blockers.empty());
}

TEST_CASE("host prep: missing packages are one install per host, with the versions apt would take") {
  Fixture f;
  f.host("h1").packages["patroni"] = false;
  f.host("h1").packages["postgresql-15"] = false;
  f.host("h1").candidates = {{"patroni", "3.0.2-1"}, {"postgresql-15", "15.18-0+deb12u1"}};
  auto p = f.prepare();
  REQUIRE(p.changes.size() == 1);
  const auto& c = p.changes[0];
  CHECK(is<steps::InstallPackages>(c.step));
  CHECK(c.host == "h1");
  CHECK(c.after == "patroni 3.0.2-1, postgresql-15 15.18-0+deb12u1");
  CHECK(std::get<steps::InstallPackages>(c.step).packages == std::vector<std::string>{"patroni", "postgresql-15"});
  CHECK(!std::get<steps::InstallPackages>(c.step).update);
  CHECK(p.blockers.empty());
}

TEST_CASE("host prep: a package no source has blocks the host, naming host, package and the fix") {
  Fixture f;
  f.desired.clusters[0].packages = {"postgresql-17", "patroni"};
  f.host("h2").packages = {{"patroni", true}, {"postgresql-17", false}};
  f.host("h1").packages = {{"patroni", true}, {"postgresql-17", true}};
  auto p = f.prepare();
  CHECK(steps_of(p, "h2").empty());
  REQUIRE(p.blockers.contains("h2"));
  const auto& msg = p.blockers.at("h2").at(0);
  CHECK_THAT(msg, Catch::StartsWith("host h2: package postgresql-17 (apt does not know it) is not available from its "
                                     "package sources. PostgreSQL 17 is not in"));
  CHECK_THAT(msg, Catch::Contains("packageRepositories: [pgdg]"));
  CHECK_THAT(msg, Catch::Contains("Debian GNU/Linux 12 (bookworm)"));
  CHECK_FALSE(p.blockers.contains("h1"));

  SECTION("a known package without a candidate says so, and the fix for non-PostgreSQL packages is the sources") {
    f.desired.clusters[0].packages = {"postgresql-15", "pgbouncer"};
    f.host("h2").packages = {{"postgresql-15", true}, {"pgbouncer", false}};
    f.host("h2").candidates = {{"pgbouncer", ""}};
    f.host("h1").packages = {{"postgresql-15", true}, {"pgbouncer", true}};
    auto q = f.prepare();
    REQUIRE(q.blockers.contains("h2"));
    CHECK_THAT(q.blockers.at("h2").at(0), Catch::Contains("no installation candidate"));
    CHECK_THAT(q.blockers.at("h2").at(0), Catch::Contains("Fix the host's apt sources"));
  }
}

TEST_CASE("host prep: without package lists, or with a repository to add, apply updates first and checks then") {
  Fixture f;
  f.host("h1").apt_lists = false;
  f.host("h1").packages["patroni"] = false;  // apt knows nothing yet: no candidates
  auto p = f.prepare();
  CHECK(p.blockers.empty());
  REQUIRE(p.changes.size() == 1);
  CHECK(std::get<steps::InstallPackages>(p.changes[0].step).update);
  CHECK_THAT(p.changes[0].reason, Catch::Contains("apt has no package lists"));

  SECTION("pgdg declared and not configured: the repository comes first, then the install with an update") {
    f.host("h1").apt_lists = true;
    f.manifests.hosts[0].package_repositories = {"pgdg"};
    f.host("h1").repositories["pgdg"] = false;
    auto q = f.prepare();
    CHECK(steps_of(q, "h1") == std::vector<std::string>{"configure-repository", "install-packages"});
    CHECK(std::get<steps::InstallPackages>(q.changes[1].step).update);
    CHECK(q.blockers.empty());
  }
  SECTION("pgdg already configured: nothing to add") {
    f.manifests.hosts[0].package_repositories = {"pgdg"};
    f.host("h1").repositories["pgdg"] = true;
    f.host("h1").packages["patroni"] = true;
    f.host("h1").apt_lists = true;
    CHECK(f.prepare().changes.empty());
  }
}

TEST_CASE("host prep: unsupported or unknown OS blocks the host with a clear reason") {
  Fixture f;
  SECTION("RHEL family: planned, not supported") {
    f.host("h1").os = {"rocky", "9.3", "rhel centos fedora", "Rocky Linux 9.3 (Blue Onyx)", ""};
    auto p = f.prepare();
    REQUIRE(p.blockers.contains("h1"));
    CHECK_THAT(p.blockers.at("h1")[0], Catch::Contains("unsupported OS Rocky Linux 9.3 (Blue Onyx) (ID=rocky)"));
    CHECK_THAT(p.blockers.at("h1")[0], Catch::Contains("dnf"));
  }
  SECTION("something else") {
    f.host("h1").os = {"alpine", "3.19", "", "Alpine Linux v3.19", ""};
    CHECK_THAT(f.prepare().blockers.at("h1")[0], Catch::Contains("supports Debian and Ubuntu"));
  }
  SECTION("no os-release") {
    f.host("h1").os = {};
    CHECK_THAT(f.prepare().blockers.at("h1")[0], Catch::Contains("no /etc/os-release"));
  }
  SECTION("Ubuntu is Debian family") {
    f.host("h1").os = {"ubuntu", "24.04", "debian", "Ubuntu 24.04.1 LTS", "noble"};
    CHECK(f.prepare().blockers.empty());
  }
  SECTION("Debian without apt") {
    f.host("h1").has_apt = false;
    CHECK_THAT(f.prepare().blockers.at("h1")[0], Catch::Contains("without apt-get"));
  }
}

TEST_CASE("host prep: Debian's own 15/main is stopped and disabled, its data kept; other clusters are left alone") {
  Fixture f;
  f.host("h1").debian_clusters = {
      {"15", "main", 5432, true, "auto", "/var/lib/postgresql/15/main"},
      {"15", "reports", 5433, true, "auto", "/var/lib/postgresql/15/reports"},
      {"15", "old", 5432, false, "disabled", "/var/lib/postgresql/15/old"},
  };
  f.host("h2").debian_clusters = {{"15", "main", 5432, false, "disabled", "/var/lib/postgresql/15/main"}};
  auto p = f.prepare();
  REQUIRE(p.changes.size() == 1);
  const auto& c = p.changes[0];
  CHECK(is<steps::StopDebianCluster>(c.step));
  CHECK(c.host == "h1");
  CHECK(c.subject == "host h1: Debian's cluster 15/main");
  CHECK(c.before == "running, start.conf auto");
  CHECK_THAT(c.after, Catch::Contains("data kept in /var/lib/postgresql/15/main"));
  CHECK_THAT(c.reason, Catch::Contains("port 5432"));
  CHECK(std::get<steps::StopDebianCluster>(c.step).version == "15");
  CHECK(std::get<steps::StopDebianCluster>(c.step).cluster == "main");

  SECTION("a non-main cluster on a member's port is stopped too") {
    f.host("h1").debian_clusters = {{"15", "legacy", 5432, true, "manual", "/srv/pg"}};
    auto q = f.prepare();
    REQUIRE(q.changes.size() == 1);
    CHECK(q.changes[0].subject == "host h1: Debian's cluster 15/legacy");
  }
}

TEST_CASE("plan: a blocked host leaves its whole cluster unplanned, with the reason as the cluster's error") {
  Fixture f;
  f.host("h2").os = {"rocky", "9", "rhel", "Rocky Linux 9", ""};
  auto secrets = testing::fixed_secrets();
  for (auto& [name, h] : f.observed.hosts) {
    h.files[f.desired.clusters[0].members[0].config_path] = std::nullopt;
    h.data_dirs["/var/lib/postgresql/15/c"] = false;
  }
  auto plan = diff(f.manifests, f.desired, f.observed, {{"c", secrets}});
  REQUIRE(plan.clusters.size() == 1);
  CHECK(plan.clusters[0].changes.empty());
  REQUIRE_FALSE(plan.clusters[0].errors.empty());
  CHECK_THAT(plan.clusters[0].errors.back(), Catch::Contains("host h2: unsupported OS"));
  CHECK(plan.has_errors());

  SECTION("host changes only the blocked cluster needs are not planned either") {
    f.host("h1").debian_clusters = {{"15", "main", 5432, true, "auto", "/var/lib/postgresql/15/main"}};
    f.host("h1").packages["patroni"] = false;
    f.host("h1").candidates["patroni"] = "3.0.2-1";
    auto blocked = diff(f.manifests, f.desired, f.observed, {{"c", secrets}});
    CHECK(blocked.host_changes.empty());
  }
}

TEST_CASE("observe: the probe reports OS, package manager, candidates and Debian's clusters") {
  auto host = parse_host_probe("h1",
                               "os debian- 12- - bookworm- Debian GNU/Linux 12 (bookworm)\n"
                               "pm 1 0 1\n"
                               "pkg patroni 0\n"
                               "cand patroni 3.0.2-1\n"
                               "cand pgbouncer (none)\n"
                               "repo pgdg 0\n"
                               "pgcl 15 main 5432 1 auto /var/lib/postgresql/15/main\n"
                               "end\n");
  REQUIRE(host);
  CHECK(host->os.id == "debian");
  CHECK(host->os.version_id == "12");
  CHECK(host->os.id_like.empty());
  CHECK(host->os.codename == "bookworm");
  CHECK(host->os.pretty_name == "Debian GNU/Linux 12 (bookworm)");
  CHECK(host->has_apt);
  CHECK_FALSE(host->has_dnf);
  CHECK(host->apt_lists);
  CHECK(host->candidates.at("patroni") == "3.0.2-1");
  CHECK(host->candidates.at("pgbouncer").empty());
  CHECK(host->repositories.at("pgdg") == false);
  REQUIRE(host->debian_clusters.size() == 1);
  CHECK(host->debian_clusters[0].online);
  CHECK(host->debian_clusters[0].data_dir == "/var/lib/postgresql/15/main");

  auto ubuntu = parse_host_probe("h2", "os ubuntu- 24.04- debian- noble- Ubuntu 24.04.1 LTS\npm 1 0 0\nend\n");
  REQUIRE(ubuntu);
  CHECK(ubuntu->os.id_like == "debian");
  CHECK(is_debian_family(ubuntu->os));
  CHECK(ubuntu->os.pretty_name == "Ubuntu 24.04.1 LTS");
  auto rhel = parse_host_probe("h3", "os rocky- 9.3- rhel,centos,fedora- - Rocky Linux 9.3 (Blue Onyx)\nend\n");
  REQUIRE(rhel);
  CHECK(rhel->os.id_like == "rhel centos fedora");
  CHECK(is_rhel_family(rhel->os));
  CHECK(rhel->os.pretty_name == "Rocky Linux 9.3 (Blue Onyx)");
  auto bare = parse_host_probe("h4", "os - - - -\nend\n");  // no /etc/os-release
  REQUIRE(bare);
  CHECK(bare->os.id.empty());
}

TEST_CASE("host prep: the profile's memory and the volume size are checked against each member host") {
  constexpr long long gib = 1024LL * 1024 * 1024;
  Fixture f;
  auto& c = f.desired.clusters[0];
  c.profile_name = "size-s";
  c.memory_bytes = 2 * gib;
  c.cpus = 4;
  c.volume_bytes = 10 * gib;
  for (auto& [name, h] : f.observed.hosts) {
    h.cpus = 8;
    h.memory_bytes = 16 * gib;
    h.filesystems["/var/lib/postgresql/15/c"] = {100 * gib, 200 * gib};
    h.data_dirs["/var/lib/postgresql/15/c"] = false;
  }
  CHECK(f.prepare().blockers.empty());
  CHECK(f.prepare().warnings.empty());

  SECTION("less memory than the profile refuses the host") {
    f.host("h2").memory_bytes = gib;
    auto p = f.prepare();
    REQUIRE(p.blockers.contains("h2"));
    CHECK(p.blockers.at("h2").at(0) ==
          "host h2 (member c-1): has 1.0 GiB of memory, SGInstanceProfile size-s declares 2.0 GiB (PostgreSQL's "
          "shared_buffers and effective_cache_size are sized from it): give the host more memory or declare a "
          "smaller profile");
  }
  SECTION("fewer CPUs is a warning on the cluster") {
    f.host("h1").cpus = 2;
    auto p = f.prepare();
    CHECK(p.blockers.empty());
    REQUIRE(p.warnings.contains("c"));
    CHECK(p.warnings.at("c").at(0) == "host h1 (member c-0): has 2 CPU(s), SGInstanceProfile size-s declares 4");
  }
  SECTION("a new member without room for the volume is refused; an existing one is warned about") {
    f.host("h1").filesystems["/var/lib/postgresql/15/c"] = {5 * gib, 8 * gib};
    auto p = f.prepare();
    REQUIRE(p.blockers.contains("h1"));
    CHECK_THAT(p.blockers.at("h1").at(0),
               Catch::Contains("the filesystem holding /var/lib/postgresql/15/c has 5.0 GiB free of 8.0 GiB, "
                               "pods.persistentVolume.size declares 10.0 GiB"));
    f.host("h1").data_dirs["/var/lib/postgresql/15/c"] = true;
    auto q = f.prepare();
    CHECK(q.blockers.empty());
    REQUIRE(q.warnings.contains("c"));
  }
}

TEST_CASE("observe: the probe reports CPUs, memory and the data directory's filesystem") {
  auto host = parse_host_probe("h1", "res 2 24576000\nfs /var/lib/postgresql/15/c 1048576 2097152\nend\n");
  REQUIRE(host);
  CHECK(host->cpus == 2);
  CHECK(host->memory_bytes == 24576000LL * 1024);
  CHECK(host->filesystems.at("/var/lib/postgresql/15/c") == std::pair<long long, long long>{1073741824LL, 2147483648LL});
}

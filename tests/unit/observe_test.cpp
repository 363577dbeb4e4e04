#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "core_fixtures.hpp"
#include "reconciler/observe.hpp"
#include "reconciler/world.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/shell_output.hpp"
#include "util/strings.hpp"

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

namespace {
// A Patroni client whose every call fails: the fakes below answer only what they are for.
class UnusedPatroni : public pgc::providers::PatroniClient {
 public:
  pgc::Result<nlohmann::json> cluster() override { return pgc::fail("unused"); }
  pgc::Result<nlohmann::json> patroni() override { return pgc::fail("unused"); }
  pgc::Result<nlohmann::json> config() override { return pgc::fail("unused"); }
  pgc::Result<nlohmann::json> patch_config(const nlohmann::json&) override { return pgc::fail("unused"); }
  pgc::Result<pgc::providers::HttpResponse> reload() override { return pgc::fail("unused"); }
  pgc::Result<pgc::providers::HttpResponse> restart(bool) override { return pgc::fail("unused"); }
  pgc::Result<pgc::providers::HttpResponse> switchover(const std::string&, const std::string&) override {
    return pgc::fail("unused");
  }
  pgc::Result<pgc::providers::HttpResponse> request(const std::string&, const std::string&,
                                                    const std::optional<nlohmann::json>&) override {
    return pgc::fail("unused");
  }
};

// Patroni answering JSON objects of the wrong shape (what a broken or future Patroni may send).
class OddPatroni final : public UnusedPatroni {
 public:
  explicit OddPatroni(nlohmann::json cluster) : cluster_(std::move(cluster)) {}
  pgc::Result<nlohmann::json> cluster() override { return cluster_; }
  pgc::Result<nlohmann::json> patroni() override { return nlohmann::json{{"database_system_identifier", 7}}; }
  pgc::Result<nlohmann::json> config() override { return nlohmann::json{{"synchronous_mode", "quorum"}}; }

 private:
  nlohmann::json cluster_;
};

class OddWorld final : public World {
 public:
  explicit OddWorld(nlohmann::json cluster) : cluster_(std::move(cluster)) {}
  pgc::Result<std::unique_ptr<pgc::providers::RemoteHost>> connect(const pgc::manifests::Host&) override {
    return pgc::fail("unused");
  }
  std::unique_ptr<pgc::providers::PatroniClient> patroni(const pgc::providers::PatroniEndpoint&) override {
    return std::make_unique<OddPatroni>(cluster_);
  }
  pgc::Result<pgc::providers::PgObservation> postgres(const pgc::providers::PgConnection&) override {
    return pgc::fail("unused");
  }
  pgc::Result<bool> dcs_has_any(const std::vector<std::string>&, const std::vector<std::string>&,
                                   const std::optional<pgc::providers::EtcdTls>&) override {
    return pgc::fail("unused");
  }

 private:
  nlohmann::json cluster_;
};
}  // namespace

TEST_CASE("observe: Patroni JSON of the wrong shape is read as absent fields, never a crash") {
  auto c = pgc::testing::make_cluster(2, pgc::manifests::ReplicationMode::sync);
  for (const auto& odd : {nlohmann::json{{"pause", "yes"}, {"members", "x"}}, nlohmann::json{{"members", {1, "a"}}},
                          nlohmann::json{{"members", {{{"name", 5}, {"port", "5432"}, {"role", nullptr},
                                                       {"timeline", "2"}, {"lag", "unknown"},
                                                       {"pending_restart", "yes"}}}}}}) {
    OddWorld world(odd);
    ObservedCluster oc;
    REQUIRE_NOTHROW(oc = observe_cluster(c, {"10.0.0.11"}, nullptr, world, false, 1));
    CHECK(oc.api_reachable);
    CHECK_FALSE(oc.paused);
    CHECK(oc.leader() == nullptr);
    for (const auto& m : oc.members) {
      CHECK(m.name.empty());
      CHECK(m.port == 0);
      CHECK_FALSE(m.timeline);
      CHECK_FALSE(m.pending_restart);
    }
    CHECK(oc.system_identifier.empty());
  }
}

namespace {
// A healthy two-member cluster that counts the REST requests it answers.
class CountingPatroni final : public UnusedPatroni {
 public:
  CountingPatroni(std::vector<std::string>& calls, std::mutex& mutex) : calls_(calls), mutex_(mutex) {}
  pgc::Result<nlohmann::json> cluster() override {
    count("GET /cluster");
    return nlohmann::json::parse(R"({"members": [
      {"name": "c-0", "host": "10.0.0.11", "role": "leader", "state": "running"},
      {"name": "c-1", "host": "10.0.0.12", "role": "replica", "state": "streaming"}]})");
  }
  pgc::Result<nlohmann::json> patroni() override {
    count("GET /patroni");
    return nlohmann::json{{"database_system_identifier", "1"}};
  }
  pgc::Result<nlohmann::json> config() override {
    count("GET /config");
    return nlohmann::json{{"loop_wait", 1}};
  }

 private:
  void count(const char* request) {  // the observation may ask two at once
    std::lock_guard lock(mutex_);
    calls_.push_back(request);
  }
  std::vector<std::string>& calls_;
  std::mutex& mutex_;
};

class CountingWorld final : public World {
 public:
  std::vector<std::string> calls;
  std::mutex mutex;
  pgc::Result<std::unique_ptr<pgc::providers::RemoteHost>> connect(const pgc::manifests::Host&) override {
    return pgc::fail("unused");
  }
  std::unique_ptr<pgc::providers::PatroniClient> patroni(const pgc::providers::PatroniEndpoint&) override {
    return std::make_unique<CountingPatroni>(calls, mutex);
  }
  pgc::Result<pgc::providers::PgObservation> postgres(const pgc::providers::PgConnection& c) override {
    pgc::providers::PgObservation out;
    out.in_recovery = c.host != "10.0.0.11";
    out.system_identifier = c.host == "10.0.0.11" ? "7301" : "7302";  // the leader's counts
    return out;
  }
  pgc::Result<bool> dcs_has_any(const std::vector<std::string>&, const std::vector<std::string>&,
                                   const std::optional<pgc::providers::EtcdTls>&) override {
    return pgc::fail("unused");
  }
};
}  // namespace

TEST_CASE("observe: one observation asks Patroni twice (GET /cluster, GET /config, at once); the identity comes from PostgreSQL") {
  // Each REST request is a TLS handshake through the host's SSH (docs/performance.md): the
  // cluster's system identifier rides on the leader's PostgreSQL round trip instead of GET /patroni.
  auto c = pgc::testing::make_cluster(2, pgc::manifests::ReplicationMode::sync);
  auto secrets = pgc::testing::fixed_secrets();
  CountingWorld world;
  auto oc = observe_cluster(c, {"10.0.0.11", "10.0.0.12"}, &secrets, world, true, 2);
  CHECK(oc.api_reachable);
  std::sort(world.calls.begin(), world.calls.end());  // asked at once: either may come first
  CHECK(world.calls == std::vector<std::string>{"GET /cluster", "GET /config"});
  CHECK(oc.system_identifier == "7301");
  CHECK(oc.dcs_config == nlohmann::json{{"loop_wait", 1}});

  world.calls.clear();
  auto members = observe_members(c, {"10.0.0.11", "10.0.0.12"}, &secrets, world);
  CHECK(world.calls == std::vector<std::string>{"GET /cluster"});
  REQUIRE(members.leader() != nullptr);
  CHECK(members.leader()->host == "10.0.0.11");
}

namespace {
// Answers GET /cluster only while GET /config is in flight too (and the other way round): asked
// one after the other, the first gives up after 2 s and the observation fails.
class TogetherPatroni final : public UnusedPatroni {
 public:
  pgc::Result<nlohmann::json> cluster() override {
    if (!meet()) return pgc::fail("GET /config was not asked at the same time");
    return nlohmann::json::parse(R"({"members": [{"name": "c-0", "host": "10.0.0.11", "role": "leader", "state": "running"}]})");
  }
  pgc::Result<nlohmann::json> config() override {
    if (!meet()) return pgc::fail("GET /cluster was not asked at the same time");
    return nlohmann::json{{"loop_wait", 1}};
  }

 private:
  bool meet() {
    std::unique_lock lock(mutex_);
    ++arrived_;
    changed_.notify_all();
    return changed_.wait_for(lock, std::chrono::seconds(2), [&] { return arrived_ >= 2; });
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  int arrived_ = 0;
};

class TogetherWorld final : public World {
 public:
  pgc::Result<std::unique_ptr<pgc::providers::RemoteHost>> connect(const pgc::manifests::Host&) override {
    return pgc::fail("unused");
  }
  std::unique_ptr<pgc::providers::PatroniClient> patroni(const pgc::providers::PatroniEndpoint&) override {
    return std::make_unique<TogetherPatroni>();
  }
  pgc::Result<pgc::providers::PgObservation> postgres(const pgc::providers::PgConnection&) override {
    return pgc::fail("unused");
  }
  pgc::Result<bool> dcs_has_any(const std::vector<std::string>&, const std::vector<std::string>&,
                                const std::optional<pgc::providers::EtcdTls>&) override {
    return pgc::fail("unused");
  }
};
}  // namespace

TEST_CASE("observe: GET /cluster and GET /config are in flight together (their TLS waits overlap)") {
  auto c = pgc::testing::make_cluster(1, pgc::manifests::ReplicationMode::async);
  auto secrets = pgc::testing::fixed_secrets();
  TogetherWorld world;
  auto oc = observe_cluster(c, {"10.0.0.11"}, &secrets, world, false, 1);
  INFO(oc.error);
  CHECK(oc.api_reachable);
  CHECK(oc.dcs_config == nlohmann::json{{"loop_wait", 1}});
  REQUIRE(oc.leader() != nullptr);
}

TEST_CASE("observed: synchronous_standby_names values give their member names") {
  CHECK(standby_names("").empty());
  CHECK(standby_names("  ").empty());
  CHECK(standby_names("*") == std::vector<std::string>{"*"});
  CHECK(standby_names("\"guard-2\"") == std::vector<std::string>{"guard-2"});
  CHECK(standby_names("c1") == std::vector<std::string>{"c1"});
  CHECK(standby_names("Node1") == std::vector<std::string>{"node1"});  // unquoted folds to lower case
  CHECK(standby_names("2 (\"c-1\",\"c-2\")") == std::vector<std::string>{"c-1", "c-2"});
  CHECK(standby_names("FIRST 1 (a, \"B\")") == std::vector<std::string>{"a", "B"});
  CHECK(standby_names("ANY 1 (\"x\"\"y\")") == std::vector<std::string>{"x\"y"});
}

namespace {
// Seen on the lab (strict suite, CI): sync (non-strict), both replicas stopped within Patroni's
// 2 s window — /sync empty, the leader still names c-2, nobody streams.
ObservedCluster stuck_names() {
  auto c = pgc::testing::make_cluster(3, pgc::manifests::ReplicationMode::sync, 1);
  auto oc = pgc::testing::healthy(c, 0);
  oc.members.resize(1);
  oc.postgres["c-0"].sync_states.clear();
  oc.postgres["c-0"].synchronous_standby_names = "\"c-2\"";
  return oc;
}
}  // namespace

TEST_CASE("observed: standby names nobody streams while /sync is empty are stale in non-strict sync") {
  CHECK(stuck_names().stale_standby_names() == std::vector<std::string>{"c-2"});
}

TEST_CASE("observed: standby names are not stale while one streams, /sync names one, or in strict or async") {
  auto streams = stuck_names();
  streams.postgres["c-0"].sync_states.emplace_back("c-2", "async");  // Patroni's 2 s window: it will become sync
  CHECK(streams.stale_standby_names().empty());

  auto recorded = stuck_names();
  ObservedMember m;
  m.name = "c-2";
  m.role = "sync_standby";
  m.state = "stopped";
  recorded.members.push_back(m);  // /sync still names it: Patroni's next loop releases it itself
  CHECK(recorded.stale_standby_names().empty());

  auto strict = stuck_names();
  strict.dcs_config["synchronous_mode_strict"] = true;  // strict blocks by design
  CHECK(strict.stale_standby_names().empty());

  auto async = stuck_names();
  async.dcs_config["synchronous_mode"] = false;
  CHECK(async.stale_standby_names().empty());

  auto star = stuck_names();
  star.postgres["c-0"].synchronous_standby_names = "*";  // the other release (§5.5), planned separately
  CHECK(star.stale_standby_names().empty());

  auto unreachable = stuck_names();
  unreachable.postgres["c-0"].reachable = false;
  CHECK(unreachable.stale_standby_names().empty());
}

namespace {

// The probe script run by the local sh with a stand-in `systemctl` first on PATH; its svc lines.
std::vector<std::string> probed_services(const std::string& systemctl_body, const std::string& args,
                                         int* calls = nullptr) {
  pgc::test::TempDir dir;
  auto fake = dir.write("bin/systemctl", "#!/bin/sh\necho call >>\"$0.calls\"\n" + systemctl_body);
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  auto script = dir.write("probe.sh", host_probe_script());
  auto out = pgc::test::shell_output("PATH=" + pgc::shell_quote((dir.path() / "bin").string()) + ":$PATH sh " +
                                     pgc::shell_quote(script.string()) + " " + args + " 2>/dev/null");
  std::vector<std::string> lines;
  for (const auto& line : pgc::split(out, '\n'))
    if (line.rfind("svc ", 0) == 0) lines.push_back(line);
  if (calls) {
    std::ifstream in(fake.string() + ".calls");
    *calls = 0;
    for (std::string call; std::getline(in, call);) ++*calls;
  }
  return lines;
}

}  // namespace

TEST_CASE("observe: the probe reads every unit's state in one systemctl show, in the order asked") {
  // As systemd prints it: one block per unit, blank-line separated; properties in its own order
  // (here UnitFileState first for one unit); a unit systemd does not know has no UnitFileState.
  const std::string show = R"SH(
[ "$1 $2 $3 $4 $5" = "show -p ActiveState -p UnitFileState" ] || exit 9
shift 5; first=1
for u in "$@"; do
  [ "$first" = 1 ] || echo; first=0
  case "$u" in
    a.service) printf 'ActiveState=active\nUnitFileState=enabled\n' ;;
    b.service) printf 'UnitFileState=disabled\nActiveState=failed\n' ;;
    *) printf 'ActiveState=inactive\nUnitFileState=\n' ;;
  esac
done
)SH";
  int calls = 0;
  CHECK(probed_services(show, "svc a.service svc gone.service svc b.service", &calls) ==
        std::vector<std::string>{"svc a.service active enabled", "svc gone.service inactive unknown",
                                 "svc b.service failed disabled"});
  CHECK(calls == 1);
  CHECK(probed_services(show, "svc b.service") == std::vector<std::string>{"svc b.service failed disabled"});
  CHECK(probed_services(show, "pkg patroni", &calls).empty());
  CHECK(calls == 0);
  // No systemd answering (not booted with it, no systemctl): every unit unknown, none left out.
  CHECK(probed_services("echo 'System has not been booted with systemd' >&2; exit 1\n",
                        "svc a.service svc b.service") ==
        std::vector<std::string>{"svc a.service unknown unknown", "svc b.service unknown unknown"});
}

TEST_CASE("observe: the probe reads managed files byte for byte, and no link another user could swap") {
  pgc::test::TempDir dir;
  auto script = dir.write("probe.sh", host_probe_script());
  // Every length around base64's 3-byte groups and uuencode's 45-byte lines, and every byte.
  std::vector<std::string> contents;
  for (std::size_t n : {0U, 1U, 2U, 3U, 44U, 45U, 46U, 90U, 91U, 1000U}) {
    std::string text;
    for (std::size_t i = 0; i < n; ++i) text += static_cast<char>((i * 37 + n) % 256);
    contents.push_back(text);
  }
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  contents.push_back(all);
  std::string args;
  for (std::size_t i = 0; i < contents.size(); ++i)
    args += " file " + pgc::shell_quote(dir.write("f" + std::to_string(i), contents[i]).string());
  // A directory anyone may change (like a user's own): a link there to a root-only file is not
  // followed, whoever runs the probe. Absent files read as absent.
  auto open_dir = dir.path() / "open";
  std::filesystem::create_directory(open_dir);
  std::filesystem::permissions(open_dir, std::filesystem::perms::all);
  auto secret = dir.write("secret", "root only\n");
  std::filesystem::create_symlink(secret, open_dir / "link");
  args += " file " + pgc::shell_quote((open_dir / "link").string());
  args += " file " + pgc::shell_quote((dir.path() / "missing").string());
  auto out = pgc::test::shell_output("sh " + pgc::shell_quote(script.string()) + args + " 2>/dev/null");
  auto host = parse_host_probe("h", out);
  REQUIRE(host);
  for (std::size_t i = 0; i < contents.size(); ++i) {
    auto path = (dir.path() / ("f" + std::to_string(i))).string();
    INFO(path);
    REQUIRE(host->files.count(path) == 1);
    REQUIRE(host->files.at(path).has_value());
    CHECK(*host->files.at(path) == contents[i]);
  }
  REQUIRE(host->files.count((open_dir / "link").string()) == 1);
  CHECK_FALSE(host->files.at((open_dir / "link").string()).has_value());
  REQUIRE(host->files.count((dir.path() / "missing").string()) == 1);
  CHECK_FALSE(host->files.at((dir.path() / "missing").string()).has_value());
}

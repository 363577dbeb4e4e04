// serve's `ownership:` section (load_serve_config) and reconciler::Ownership against an in-memory
// fake of the etcd client: create-if-absent, other owners, re-taking keys after a new lease,
// fencing when keepalives fail, revoke on stop.

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "providers/crypto/x509.hpp"
#include "reconciler/ownership.hpp"
#include "reconciler/serve.hpp"
#include "tests/support/temp_dir.hpp"

using namespace std::chrono_literals;
using pgc::Result;
using pgc::providers::EtcdClient;
using pgc::providers::EtcdCreate;
using pgc::providers::EtcdKeyValue;
using pgc::reconciler::EventLog;
using pgc::reconciler::load_serve_config;
using pgc::reconciler::LogFormat;
using pgc::reconciler::Ownership;
using pgc::reconciler::OwnershipConfig;
using pgc::test::TempDir;

namespace {

std::filesystem::path ownership_config(const TempDir& dir, const std::string& ownership) {
  auto path = dir.path() / "serve.yaml";
  std::ofstream(path) << "source: {url: /srv/manifests}\nstateDir: " << (dir.path() / "state").string()
                      << "\nlisten: \"\"\nownership: " << ownership << "\n";
  return path;
}

// etcd in memory: leases with a liveness flag the test flips, keys bound to leases.
struct FakeEtcd {
  std::mutex mutex;
  std::int64_t next_lease = 100;
  std::int64_t revision = 1;
  std::map<std::int64_t, bool> leases;  // id → alive
  std::map<std::string, EtcdKeyValue> keys;
  bool down = false;
  int revokes = 0;

  void expire(std::int64_t lease) {
    std::lock_guard lock(mutex);
    leases[lease] = false;
    std::erase_if(keys, [&](const auto& kv) { return kv.second.lease == lease; });
  }
};

class FakeClient final : public EtcdClient {
 public:
  explicit FakeClient(FakeEtcd& etcd) : etcd_(etcd) {}
  Result<std::int64_t> grant(std::chrono::seconds) override {
    std::lock_guard lock(etcd_.mutex);
    if (etcd_.down) return pgc::fail("etcd 127.0.0.1:2379: POST /v3/lease/grant: connection refused");
    auto id = etcd_.next_lease++;
    etcd_.leases[id] = true;
    return id;
  }
  Result<std::int64_t> keepalive(std::int64_t lease) override {
    std::lock_guard lock(etcd_.mutex);
    if (etcd_.down) return pgc::fail("etcd 127.0.0.1:2379: POST /v3/lease/keepalive: connection refused");
    return etcd_.leases[lease] ? 4 : 0;
  }
  Result<bool> revoke(std::int64_t lease) override {
    std::lock_guard lock(etcd_.mutex);
    ++etcd_.revokes;
    bool was = etcd_.leases[lease];
    etcd_.leases[lease] = false;
    std::erase_if(etcd_.keys, [&](const auto& kv) { return kv.second.lease == lease; });
    return was;
  }
  Result<EtcdCreate> create(const std::string& key, const std::string& value, std::int64_t lease) override {
    std::lock_guard lock(etcd_.mutex);
    if (etcd_.down) return pgc::fail("etcd 127.0.0.1:2379: POST /v3/kv/txn: connection refused");
    if (auto it = etcd_.keys.find(key); it != etcd_.keys.end()) return EtcdCreate{false, it->second};
    etcd_.keys[key] = {key, value, lease, ++etcd_.revision};
    return EtcdCreate{true, std::nullopt};
  }
  Result<bool> replace(const std::string& key, const std::string& value, std::int64_t lease,
                       std::int64_t mod_revision) override {
    std::lock_guard lock(etcd_.mutex);
    auto it = etcd_.keys.find(key);
    if (it == etcd_.keys.end() || it->second.mod_revision != mod_revision) return false;
    it->second = {key, value, lease, ++etcd_.revision};
    return true;
  }
  Result<std::optional<EtcdKeyValue>> get(const std::string& key) override {
    std::lock_guard lock(etcd_.mutex);
    auto it = etcd_.keys.find(key);
    if (it == etcd_.keys.end()) return std::optional<EtcdKeyValue>();
    return std::optional<EtcdKeyValue>(it->second);
  }

 private:
  FakeEtcd& etcd_;
};

OwnershipConfig config(const std::string& instance) { return {{"127.0.0.1:2379"}, instance, 2s}; }

const std::vector<std::pair<std::string, std::string>> k_clusters{{"", ""}, {"default", "alpha"}, {"default", "beta"}};

}  // namespace

TEST_CASE("serve config: ownership fields") {
  TempDir dir;
  auto ok = load_serve_config(ownership_config(dir, "{etcd: [\"10.250.5.2:2379\", \"etcd-2:2379\"], instance: serve-a, leaseTtl: 4s}"));
  REQUIRE(ok);
  REQUIRE(ok->ownership);
  CHECK(ok->ownership->etcd == std::vector<std::string>{"10.250.5.2:2379", "etcd-2:2379"});
  CHECK(ok->ownership->instance == "serve-a");
  CHECK(ok->ownership->lease_ttl == 4s);

  auto defaults = load_serve_config(ownership_config(dir, "{etcd: [\"10.250.5.2:2379\"]}"));
  REQUIRE(defaults);
  CHECK(defaults->ownership->lease_ttl == 10s);
  CHECK(defaults->ownership->instance.ends_with("-" + std::to_string(::getpid())));

  auto none = load_serve_config(ownership_config(dir, "null"));
  REQUIRE(none);
  CHECK_FALSE(none->ownership);
}

TEST_CASE("serve config: ownership errors name the file and the field") {
  TempDir dir;
  auto expect = [&](const std::string& yaml, const std::string& message) {
    auto file = ownership_config(dir, yaml);
    auto r = load_serve_config(file);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == file.string() + ": " + message);
  };
  expect("{instance: a}", "ownership.etcd: must be a non-empty list of etcd endpoints (host:port)");
  expect("{etcd: [\"10.250.5.2\"]}",
         "ownership.etcd[0]: \"10.250.5.2\" is not host:port, http://host:port or https://host:port");
  expect("{etcd: [2379]}", "ownership.etcd[0]: must be a string host:port");
  expect("{etcd: [\"e:2379\"], leaseTtl: 1s}", "ownership.leaseTtl: must be at least 2000ms");
  expect("{etcd: [\"e:2379\"], leaseTtl: 4500ms}", "ownership.leaseTtl: must be whole seconds (etcd leases count in seconds)");
  expect("{etcd: [\"e:2379\"], leaseTTL: 4s}", "ownership.leaseTTL: unknown field (did you mean 'leaseTtl'?)");
}

TEST_CASE("serve config: ownership over https: the CA, a client certificate and key, checked at start") {
  TempDir dir;
  namespace x509 = pgc::providers::crypto;
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  auto ca = x509::create_ca("etcd CA", now - 1h, now + 24h);
  auto other = x509::create_ca("other CA", now - 1h, now + 24h);
  REQUIRE(ca);
  REQUIRE(other);
  auto client = x509::issue_leaf(*ca, {.common_name = "serve", .dns_names = {}, .ip_addresses = {},
                                       .not_before = now - 1h, .not_after = now + 24h});
  REQUIRE(client);
  auto write = [&](const std::string& name, const std::string& text) {
    auto path = dir.path() / name;
    std::ofstream(path) << text;
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    return path.string();
  };
  auto ca_file = write("ca.crt", ca->certificate_pem);
  auto cert_file = write("client.crt", client->certificate_pem);
  auto key_file = write("client.key", client->key_pem);
  auto other_key = write("other.key", other->key_pem);
  auto tls = [&](const std::string& key) {
    return "{etcd: [\"https://10.250.5.2:2379\"], tls: {caFile: " + ca_file + ", certFile: " + cert_file +
           ", keyFile: " + key + "}}";
  };
  auto ok = load_serve_config(ownership_config(dir, tls(key_file)));
  REQUIRE(ok);
  CHECK(ok->ownership->etcd == std::vector<std::string>{"10.250.5.2:2379"});
  REQUIRE(ok->ownership->tls);
  CHECK(ok->ownership->tls->ca_pem == ca->certificate_pem);
  CHECK(ok->ownership->tls->key_pem == client->key_pem);

  auto expect = [&](const std::string& yaml, const std::string& message) {
    auto file = ownership_config(dir, yaml);
    auto r = load_serve_config(file);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == file.string() + ": " + message);
  };
  expect(tls(other_key), "ownership.tls.keyFile: " + other_key + " is not the key of " + cert_file +
                             ": the private key does not match the certificate");
  expect("{etcd: [\"https://e:2379\"]}", "ownership.tls.caFile: https:// endpoints need the CA that signed etcd's certificate");
  expect("{etcd: [\"https://e:2379\", \"e:2379\"], tls: {caFile: " + ca_file + "}}",
         "ownership.etcd: mixes https:// with plain endpoints: give every endpoint one scheme");
  expect("{etcd: [\"e:2379\"], tls: {caFile: " + ca_file + "}}", "ownership.tls: needs https:// endpoints in ownership.etcd");
  expect("{etcd: [\"https://e:2379\"], tls: {caFile: " + dir.path().string() + "/missing.crt}}",
         "ownership.tls.caFile: cannot read " + dir.path().string() + "/missing.crt: No such file or directory");
}

TEST_CASE("ownership: each cluster goes to the first instance; the other skips it and logs the owner") {
  FakeEtcd etcd;
  std::ostringstream log_a, log_b;
  EventLog la(log_a, LogFormat::text), lb(log_b, LogFormat::text);
  Ownership a(config("serve-a"), std::make_unique<FakeClient>(etcd), la, nullptr);
  Ownership b(config("serve-b"), std::make_unique<FakeClient>(etcd), lb, nullptr);
  auto mine_a = a.acquire({{"", ""}, {"default", "alpha"}});
  REQUIRE(mine_a);
  CHECK(*mine_a == std::set<std::string>{"", "alpha"});
  auto mine_b = b.acquire(k_clusters);
  REQUIRE(mine_b);
  CHECK(*mine_b == std::set<std::string>{"beta"});
  CHECK(log_b.str().find("cluster-owned-elsewhere cluster=default/alpha instance=serve-b owner=serve-a") !=
        std::string::npos);
  CHECK(etcd.keys.at("/pgconverge/owners/default/alpha").value == "serve-a");
  // again: the same answer, and nothing more logged
  auto before = log_b.str();
  CHECK(*b.acquire(k_clusters) == std::set<std::string>{"beta"});
  CHECK(log_b.str() == before);
  CHECK(*a.acquire(k_clusters) == std::set<std::string>{"", "alpha"});

  // a's lease goes (killed): its keys vanish and b takes them on its next pass
  etcd.expire(100);  // a's lease, granted first
  CHECK(*b.acquire(k_clusters) == std::set<std::string>{"", "alpha", "beta"});
  b.stop();
  CHECK(etcd.keys.empty());  // the revoke released every key
  CHECK(etcd.revokes == 1);
}

TEST_CASE("ownership: without keepalives for ttl/2 the instance is fenced until a new lease") {
  FakeEtcd etcd;
  std::ostringstream out;
  EventLog log(out, LogFormat::text);
  Ownership a(config("serve-a"), std::make_unique<FakeClient>(etcd), log, nullptr);
  REQUIRE(*a.acquire(k_clusters) == std::set<std::string>{"", "alpha", "beta"});
  std::this_thread::sleep_for(300ms);
  CHECK_FALSE(a.halt());
  {
    std::lock_guard lock(etcd.mutex);
    etcd.down = true;
  }
  auto start = std::chrono::steady_clock::now();
  while (!a.halt() && std::chrono::steady_clock::now() - start < 3s) std::this_thread::sleep_for(20ms);
  CHECK(a.halt());
  CHECK(a.fenced());
  CHECK(std::chrono::steady_clock::now() - start < 1500ms);  // ttl/2 = 1s after the last keepalive
  CHECK(out.str().find("fenced instance=serve-a") != std::string::npos);
  auto refused = a.acquire(k_clusters);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("no etcd lease") != std::string::npos);
  {
    std::lock_guard lock(etcd.mutex);
    etcd.down = false;
  }
  // A new lease; the keys still held under the old lease are taken over by replace.
  auto again = a.acquire(k_clusters);
  REQUIRE(again);
  CHECK(*again == std::set<std::string>{"", "alpha", "beta"});
  CHECK(etcd.keys.at("/pgconverge/owners/default/alpha").lease == 101);
  CHECK_FALSE(a.halt());
}

TEST_CASE("ownership: the daemon's stop flag halts applying") {
  FakeEtcd etcd;
  std::ostringstream out;
  EventLog log(out, LogFormat::text);
  std::atomic<bool> stop{false};
  Ownership a(config("serve-a"), std::make_unique<FakeClient>(etcd), log, &stop);
  REQUIRE(a.acquire(k_clusters));
  CHECK_FALSE(a.halt());
  stop = true;
  std::this_thread::sleep_for(300ms);
  CHECK(a.halt());
}

// providers/etcd against a real etcd 3.4 started here on 127.0.0.1 (own data dir, free ports),
// and against a silent TCP server for the timeout.

#include <catch2/catch.hpp>
#include "tests/support/catch_session.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "providers/crypto/x509.hpp"
#include "providers/etcd/etcd_client.hpp"
#include "tests/integration/support/fake_tcp_server.hpp"
#include "tests/integration/support/test_support.hpp"

using namespace std::chrono_literals;
using pgc::providers::EtcdOptions;
using pgc::providers::make_etcd_client;

namespace {

// A throwaway etcd; killed (by its own pid) and its data removed on destruction.
// With tls (a CA and the server's certificate and key): https client URL, client certificates
// from that CA required (--client-cert-auth), as the etcd pgconverge runs is configured.
struct EtcdServerTls {
  pgc::providers::crypto::KeyAndCertificate ca;
  pgc::providers::crypto::KeyAndCertificate server;
};

class LocalEtcd {
 public:
  explicit LocalEtcd(const EtcdServerTls* tls = nullptr) : dir_("pgc-etcd-it") {
    client_port_ = pgc::test::free_loopback_port();
    int peer = pgc::test::free_loopback_port();
    std::string client = std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(client_port_);
    std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    std::string tls_flags;
    if (tls) {
      write(dir_.path() / "ca.crt", tls->ca.certificate_pem);
      write(dir_.path() / "server.crt", tls->server.certificate_pem);
      write(dir_.path() / "server.key", tls->server.key_pem);
      tls_flags = " --cert-file " + pgc::test::q(dir_.path() / "server.crt") + " --key-file " +
                  pgc::test::q(dir_.path() / "server.key") + " --trusted-ca-file " +
                  pgc::test::q(dir_.path() / "ca.crt") + " --client-cert-auth";
    }
    auto out = pgc::test::sh("etcd --name it --data-dir " + pgc::test::q(dir_.path() / "data") +
                             " --listen-client-urls " + client + " --advertise-client-urls " + client +
                             " --listen-peer-urls " + peer_url + " --initial-advertise-peer-urls " + peer_url +
                             " --initial-cluster it=" + peer_url + tls_flags + " >" +
                             pgc::test::q(dir_.path() / "log") + " 2>&1 & echo $!");
    pid_ = std::stoi(out);
    for (int i = 0; i < 100 && !pgc::test::port_open(client_port_); ++i) std::this_thread::sleep_for(100ms);
    if (!pgc::test::port_open(client_port_)) throw std::runtime_error("etcd did not start: " + pgc::test::slurp(dir_.path() / "log"));
  }
  ~LocalEtcd() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  [[nodiscard]] std::string endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }

 private:
  static void write(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path) << text;
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  pgc::test::TempDir dir_;
  int client_port_ = 0;
  pid_t pid_ = 0;
};

LocalEtcd* g_etcd = nullptr;

}  // namespace

TEST_CASE("endpoints must be host:port") {
  CHECK_FALSE(make_etcd_client({{"10.0.0.1"}, 1s, {}, {}}));
  CHECK_FALSE(make_etcd_client({{"10.0.0.1:http"}, 1s, {}, {}}));
  CHECK_FALSE(make_etcd_client({{":2379"}, 1s, {}, {}}));
  CHECK_FALSE(make_etcd_client({{}, 1s, {}, {}}));
  CHECK(make_etcd_client({{"[::1]:2379", "etcd.example:2379"}, 1s, {}, {}}));
}

TEST_CASE("create-if-absent with a lease, keepalive, replace, revoke") {
  auto client = std::move(*make_etcd_client({{g_etcd->endpoint()}, 2s, {}, {}}));
  auto a = client->grant(10s);
  auto b = client->grant(10s);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a != *b);
  auto first = client->create("/it/owners/default/one", "instance-a", *a);
  REQUIRE(first);
  CHECK(first->created);
  auto second = client->create("/it/owners/default/one", "instance-b", *b);
  REQUIRE(second);
  CHECK_FALSE(second->created);
  REQUIRE(second->existing);
  CHECK(second->existing->value == "instance-a");
  CHECK(second->existing->lease == *a);
  auto ttl = client->keepalive(*a);
  REQUIRE(ttl);
  CHECK(*ttl > 0);
  CHECK(*ttl <= 10);
  // replace only at the revision seen
  CHECK_FALSE(*client->replace("/it/owners/default/one", "instance-b", *b, second->existing->mod_revision + 1000));
  CHECK(*client->replace("/it/owners/default/one", "instance-a", *b, second->existing->mod_revision));
  auto got = client->get("/it/owners/default/one");
  REQUIRE(got);
  REQUIRE(*got);
  CHECK((*got)->lease == *b);
  // revoking the key's lease deletes the key; a revoked lease's keepalive says 0
  auto revoked = client->revoke(*b);
  REQUIRE(revoked);
  CHECK(*revoked);
  got = client->get("/it/owners/default/one");
  REQUIRE(got);
  CHECK_FALSE(*got);
  auto gone = client->keepalive(*b);
  REQUIRE(gone);
  CHECK(*gone == 0);
  revoked = client->revoke(*b);  // already gone: not an error
  REQUIRE(revoked);
  CHECK_FALSE(*revoked);
  // a key absent again can be created by the other lease
  auto again = client->create("/it/owners/default/one", "instance-a", *a);
  REQUIRE(again);
  CHECK(again->created);
  client->revoke(*a);
}

TEST_CASE("a lease that is not kept alive expires with its keys") {
  auto client = std::move(*make_etcd_client({{g_etcd->endpoint()}, 2s, {}, {}}));
  auto lease = client->grant(2s);
  REQUIRE(lease);
  REQUIRE(client->create("/it/owners/default/expiring", "x", *lease)->created);
  auto start = std::chrono::steady_clock::now();
  while (*client->get("/it/owners/default/expiring") && std::chrono::steady_clock::now() - start < 10s)
    std::this_thread::sleep_for(200ms);
  auto waited = std::chrono::steady_clock::now() - start;
  CHECK_FALSE(*client->get("/it/owners/default/expiring"));
  CHECK(waited >= 1s);
  CHECK(waited < 5s);
}

TEST_CASE("a dead endpoint is skipped, a silent one times out, both named") {
  int dead = pgc::test::free_loopback_port();
  auto client = std::move(*make_etcd_client({{"127.0.0.1:" + std::to_string(dead), g_etcd->endpoint()}, 2s, {}, {}}));
  CHECK(client->grant(5s));
  pgc::test::FakeTcpServer silent(pgc::test::hold_silently);
  auto stuck = std::move(*make_etcd_client({{"127.0.0.1:" + std::to_string(silent.port())}, 500ms, {}, {}}));
  auto start = std::chrono::steady_clock::now();
  auto r = stuck->grant(5s);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("127.0.0.1:" + std::to_string(silent.port())) != std::string::npos);
  CHECK(r.error().message.find("timed out") != std::string::npos);
  CHECK(took < 2s);
  auto none = std::move(*make_etcd_client({{"127.0.0.1:" + std::to_string(dead)}, 1s, {}, {}}));
  auto refused = none->keepalive(1);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("POST /v3/lease/keepalive") != std::string::npos);
}

TEST_CASE("over TLS: a client certificate from etcd's CA is answered; none, another CA's, plain http are not") {
  namespace x509 = pgc::providers::crypto;
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  auto leaf = [&](const x509::KeyAndCertificate& ca, const std::string& cn) {
    return *x509::issue_leaf(ca, {.common_name = cn, .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"},
                                  .not_before = now - 1h, .not_after = now + 24h});
  };
  auto ca = *x509::create_ca("it etcd CA", now - 1h, now + 24h);
  auto other = *x509::create_ca("other CA", now - 1h, now + 24h);
  EtcdServerTls tls{ca, leaf(ca, "etcd")};
  LocalEtcd etcd(&tls);
  auto client_of = [&](std::optional<pgc::providers::EtcdTls> t) {
    return std::move(*make_etcd_client({{etcd.endpoint()}, 2s, {}, std::move(t)}));
  };
  auto mine = leaf(ca, "pgconverge");
  auto good = client_of(pgc::providers::EtcdTls{ca.certificate_pem, mine.certificate_pem, mine.key_pem});
  auto lease = good->grant(5s);
  REQUIRE(lease);
  CHECK(good->revoke(*lease));

  auto none = client_of(pgc::providers::EtcdTls{ca.certificate_pem, "", ""});
  auto refused = none->grant(5s);
  REQUIRE_FALSE(refused);
  INFO(refused.error().message);
  auto stranger = leaf(other, "stranger");
  CHECK_FALSE(client_of(pgc::providers::EtcdTls{ca.certificate_pem, stranger.certificate_pem, stranger.key_pem})->grant(5s));
  // etcd's certificate checked against the CA given: another CA's trust refuses it.
  auto wrong_trust = client_of(pgc::providers::EtcdTls{other.certificate_pem, mine.certificate_pem, mine.key_pem})->grant(5s);
  REQUIRE_FALSE(wrong_trust);
  CHECK(wrong_trust.error().message.find("127.0.0.1:" ) != std::string::npos);
  CHECK_FALSE(client_of(std::nullopt)->grant(5s));  // plain http to the https port
}

int main(int argc, char** argv) {
  if (auto missing = pgc::test::missing_tool({"etcd"})) return pgc::test::skip_suite(*missing);
  LocalEtcd etcd;
  g_etcd = &etcd;
  return pgc::test::run_catch(argc, argv);
}

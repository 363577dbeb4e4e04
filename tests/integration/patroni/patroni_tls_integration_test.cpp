// The Patroni REST client over verified https (PatroniEndpoint::tls) against a real TLS server
// the test runs on 127.0.0.1 (tests/integration/http/tls_test_server.hpp, libssl) answering
// /cluster the way Patroni's http.server does (HTTP/1.0, body ended by the close), with a member
// certificate from providers/crypto: https preferred → answered in TLS; a member still on plain
// http (its new config not reloaded) → one fallback, answered; TLS being turned off (plain first)
// against a member still on TLS → answered in TLS; a wrong CA or name → a permanent error naming
// the endpoint and OpenSSL's reason, and not one plain request reaches the server (it counts
// them); the timeout covers both attempts. Also the figure of the report: 100 GET /cluster over
// TLS and in plain against the same server. Needs nothing but the loopback interface.

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <iostream>
#include <string>

#include "providers/crypto/x509.hpp"
#include "providers/patroni/patroni_client.hpp"
#include "tests/integration/http/tls_test_server.hpp"

using namespace std::chrono_literals;
namespace crypto = pgc::providers::crypto;
using pgc::providers::make_patroni_client;
using pgc::providers::PatroniEndpoint;
using pgc::providers::PatroniTls;
using pgc::test::TlsTestServer;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* k_password = "rest-api-password-never-shown";
constexpr const char* k_cluster = R"({"members":[{"name":"member-1","role":"leader"}]})";

struct Pki {
  crypto::KeyAndCertificate ca;
  crypto::KeyAndCertificate other_ca;
  crypto::KeyAndCertificate member;  // CN member-1, DNS member-1, IP 127.0.0.1
};

const Pki& pki() {
  static const Pki made = [] {
    auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    auto ca = crypto::create_ca("pgconverge test CA", now - 1h, now + 24h);
    auto other = crypto::create_ca("another CA", now - 1h, now + 24h);
    REQUIRE(ca);
    REQUIRE(other);
    auto member = crypto::issue_leaf(*ca, {"member-1", {"member-1"}, {"127.0.0.1"}, now - 1h, now + 24h});
    REQUIRE(member);
    return Pki{*ca, *other, *member};
  }();
  return made;
}

TlsTestServer::Options server(TlsTestServer::Mode mode) {
  TlsTestServer::Options o;
  o.mode = mode;
  o.certificate_pem = pki().member.certificate_pem;
  o.key_pem = pki().member.key_pem;
  o.body = k_cluster;
  return o;
}

PatroniEndpoint endpoint(const TlsTestServer& s, bool prefer = true, std::string ca = pki().ca.certificate_pem) {
  PatroniEndpoint e;
  e.address = "127.0.0.1";
  e.port = s.port();
  e.username = "pgconverge";
  e.password = k_password;
  e.timeout = 1000ms;
  e.tls = PatroniTls{std::move(ca), "127.0.0.1", prefer};
  return e;
}

}  // namespace

TEST_CASE("https preferred: answered in TLS, nothing in plain") {
  TlsTestServer s(server(TlsTestServer::Mode::either));
  auto cluster = make_patroni_client(endpoint(s))->cluster();
  INFO((cluster ? "" : cluster.error().message));
  REQUIRE(cluster);
  CHECK((*cluster)["members"][0]["name"] == "member-1");
  CHECK(s.tls_requests() == 1);
  CHECK(s.plain_requests() == 0);
  CHECK(s.connections() == 1);
}

TEST_CASE("A JSON answer ends at its value, not at Patroni's late close (~40 ms per request over TLS)") {
  auto options = server(TlsTestServer::Mode::tls);
  options.close_after = 3000ms;  // far beyond the endpoint's 1 s timeout
  TlsTestServer s(options);
  auto start = Clock::now();
  auto cluster = make_patroni_client(endpoint(s))->cluster();
  auto took = Clock::now() - start;
  INFO((cluster ? "" : cluster.error().message));
  REQUIRE(cluster.has_value());
  CHECK((*cluster)["members"][0]["name"] == "member-1");
  CHECK(took < 1000ms);  // waiting for the close would end at the timeout, with an error
}

TEST_CASE("A member still on plain http: one fallback, answered") {
  TlsTestServer s(server(TlsTestServer::Mode::plain));
  auto client = make_patroni_client(endpoint(s));
  auto cluster = client->cluster();
  INFO((cluster ? "" : cluster.error().message));
  REQUIRE(cluster);
  CHECK((*cluster)["members"][0]["role"] == "leader");
  CHECK(s.plain_requests() == 1);
  CHECK(s.connections() == 2);
  // An unsafe call falls back the same way (the request never reached the member in TLS).
  auto reload = client->reload();
  REQUIRE(reload);
  CHECK(reload->status == 200);
  CHECK(s.plain_requests() == 2);
}

TEST_CASE("TLS being turned off (plain first): a member still on TLS answers in TLS") {
  TlsTestServer s(server(TlsTestServer::Mode::tls));
  auto cluster = make_patroni_client(endpoint(s, false))->cluster();
  INFO((cluster ? "" : cluster.error().message));
  REQUIRE(cluster);
  CHECK(s.tls_requests() == 1);
  CHECK(s.connections() == 2);
}

TEST_CASE("Plain first against a plain member: one connection") {
  TlsTestServer s(server(TlsTestServer::Mode::either));
  REQUIRE(make_patroni_client(endpoint(s, false))->cluster());
  CHECK(s.plain_requests() == 1);
  CHECK(s.connections() == 1);
}

TEST_CASE("A certificate that fails verification: permanent, never retried in plain http") {
  TlsTestServer s(server(TlsTestServer::Mode::either));
  auto where = "patroni 127.0.0.1:" + std::to_string(s.port());
  SECTION("a wrong CA") {
    auto cluster = make_patroni_client(endpoint(s, true, pki().other_ca.certificate_pem))->cluster();
    REQUIRE_FALSE(cluster);
    CHECK(cluster.error().message ==
          where + ": GET /cluster: TLS: certificate verify failed: unable to get local issuer certificate");
    CHECK(cluster.error().is_permanent());
    CHECK(cluster.error().permanent == pgc::k_tls_verify);
  }
  SECTION("a name the certificate does not hold, on an unsafe call with a password") {
    auto e = endpoint(s);
    e.tls->server_name = "10.0.0.5";
    auto restart = make_patroni_client(e)->restart(true);
    REQUIRE_FALSE(restart);
    CHECK(restart.error().message ==
          where + ": POST /restart: TLS: IP address mismatch: certificate is not for 10.0.0.5");
    CHECK(restart.error().is_permanent());
    CHECK(restart.error().describe().find(k_password) == std::string::npos);
  }
  CHECK(s.plain_requests() == 0);
  CHECK(s.tls_requests() == 0);
  CHECK(s.connections() == 1);
}

TEST_CASE("The timeout covers both attempts") {
  TlsTestServer s(server(TlsTestServer::Mode::silent));
  auto start = Clock::now();
  auto cluster = make_patroni_client(endpoint(s))->cluster();
  auto took = Clock::now() - start;
  REQUIRE_FALSE(cluster);
  CHECK(cluster.error().message == "patroni 127.0.0.1:" + std::to_string(s.port()) + ": GET /cluster: timed out after 1s");
  CHECK_FALSE(cluster.error().is_permanent());
  CHECK(took < 1000ms + pgc::test::k_tls_timing_margin);
}

TEST_CASE("Figure: 100 GET /cluster over TLS and in plain against the same server") {
  TlsTestServer s(server(TlsTestServer::Mode::either));
  auto time_calls = [&](bool tls) {
    auto e = endpoint(s, tls);
    if (!tls) e.tls.reset();
    auto client = make_patroni_client(e);
    auto start = Clock::now();
    for (int i = 0; i < 100; ++i) REQUIRE(client->cluster());
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  };
  auto plain = time_calls(false);
  auto tls = time_calls(true);
  auto ms = [](std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1000.0; };
  std::cout << "100 GET /cluster: plain " << ms(plain) << " ms, TLS " << ms(tls) << " ms ("
            << (tls - plain).count() / 100 << " us per call for the handshake)\n";
  CHECK(s.tls_requests() == 100);
  CHECK(s.plain_requests() == 100);
}

// The shared HTTP client's TLS (providers/http/http_client) against a real TLS server the test
// starts (tls_test_server.hpp: OpenSSL's libssl on 127.0.0.1 or a unix socket) with certificates
// made by providers/crypto the way member certificates are (EC P-256, CN and DNS = the member's
// name, IP = 127.0.0.1): verified over TCP (by address and by DNS name, sent as SNI) and over a
// unix socket; refused — tls_verify, and the server never sees a request — for a wrong CA, a
// name or address the certificate does not hold, an expired certificate; tls_plain against a
// plain HTTP server; a plain request to a TLS server; the deadline against a server that never
// handshakes. Needs nothing but the loopback interface.

#include <catch2/catch.hpp>

#include <csignal>
#include <chrono>
#include <string>

#include "providers/crypto/x509.hpp"
#include "providers/http/http_client.hpp"
#include "tests/integration/http/tls_test_server.hpp"
#include "tests/support/temp_dir.hpp"

using namespace std::chrono_literals;
namespace http_client = pgc::providers::http_client;
namespace crypto = pgc::providers::crypto;
using http_client::Failure;
using pgc::test::TlsTestServer;
using Clock = std::chrono::steady_clock;

namespace {

struct Pki {
  crypto::KeyAndCertificate ca;
  crypto::KeyAndCertificate other_ca;
  crypto::KeyAndCertificate member;   // CN member-1, DNS member-1, IP 127.0.0.1
  crypto::KeyAndCertificate expired;  // the same names, expired yesterday
};

const Pki& pki() {
  static const Pki made = [] {
    auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    auto ca = crypto::create_ca("pgconverge test CA", now - 1h, now + 24h);
    auto other = crypto::create_ca("another CA", now - 1h, now + 24h);
    REQUIRE(ca);
    REQUIRE(other);
    crypto::LeafRequest leaf{"member-1", {"member-1"}, {"127.0.0.1"}, now - 1h, now + 24h};
    auto member = crypto::issue_leaf(*ca, leaf);
    leaf.not_before = now - 48h;
    leaf.not_after = now - 24h;
    auto expired = crypto::issue_leaf(*ca, leaf);
    REQUIRE(member);
    REQUIRE(expired);
    return Pki{*ca, *other, *member, *expired};
  }();
  return made;
}

TlsTestServer::Options tls_server(const crypto::KeyAndCertificate& certificate = pki().member) {
  TlsTestServer::Options o;
  o.certificate_pem = certificate.certificate_pem;
  o.key_pem = certificate.key_pem;
  return o;
}

http_client::Request get(int port, std::string server_name = "127.0.0.1", std::string ca = pki().ca.certificate_pem) {
  http_client::Request r;
  r.host = "127.0.0.1";
  r.port = static_cast<unsigned short>(port);
  r.method = "GET";
  r.target = "/cluster";
  r.tls.emplace();
  r.tls->ca_pem = std::move(ca);
  r.tls->server_name = std::move(server_name);
  return r;
}

http_client::Response call(const http_client::Request& r, std::chrono::milliseconds timeout = 3000ms) {
  return http_client::call(r, Clock::now() + timeout, {});
}

}  // namespace

TEST_CASE("TLS verified by address: the answer, and no SNI for an address") {
  TlsTestServer server(tls_server());
  auto r = call(get(server.port()));
  INFO(r.message);
  CHECK(r.failure == Failure::none);
  CHECK(r.status == 200);
  CHECK(r.body == R"({"members":[]})");  // HTTP/1.0, ended by a close without close_notify
  CHECK(server.tls_requests() == 1);
  CHECK(server.server_names() == std::vector<std::string>{""});
}

TEST_CASE("TLS verified by DNS name, sent as SNI; a server that sends close_notify") {
  auto options = tls_server();
  options.close_notify = true;
  TlsTestServer server(options);
  auto r = call(get(server.port(), "member-1"));
  INFO(r.message);
  CHECK(r.failure == Failure::none);
  CHECK(r.body == R"({"members":[]})");
  CHECK(server.server_names() == std::vector<std::string>{"member-1"});
}

TEST_CASE("TLS over a unix socket (a tunnel's), verified against the member's address") {
  pgc::test::TempDir dir;
  auto options = tls_server();
  options.unix_socket = (dir.path() / "tunnel.sock").string();
  TlsTestServer server(options);
  auto r = get(8008);
  r.unix_socket = options.unix_socket;
  auto answer = call(r);
  INFO(answer.message);
  CHECK(answer.failure == Failure::none);
  CHECK(answer.body == R"({"members":[]})");
  CHECK(server.tls_requests() == 1);
}

TEST_CASE("A certificate that fails verification: tls_verify, OpenSSL's reason, no request sent") {
  SECTION("signed by another CA") {
    TlsTestServer server(tls_server());
    auto r = call(get(server.port(), "127.0.0.1", pki().other_ca.certificate_pem));
    CHECK(r.failure == Failure::tls_verify);
    CHECK(r.message == "certificate verify failed: unable to get local issuer certificate");
    CHECK(server.tls_requests() == 0);
  }
  SECTION("not for the address expected") {
    TlsTestServer server(tls_server());
    auto r = call(get(server.port(), "127.0.0.2"));
    CHECK(r.failure == Failure::tls_verify);
    CHECK(r.message == "IP address mismatch: certificate is not for 127.0.0.2");
    CHECK(server.tls_requests() == 0);
  }
  SECTION("not for the DNS name expected") {
    TlsTestServer server(tls_server());
    auto r = call(get(server.port(), "member-2"));
    CHECK(r.failure == Failure::tls_verify);
    CHECK(r.message == "hostname mismatch: certificate is not for member-2");
    CHECK(server.tls_requests() == 0);
  }
  SECTION("the address as a DNS name is not an iPAddress match") {
    TlsTestServer server(tls_server());
    auto r = call(get(server.port(), "member-1.example"));
    CHECK(r.failure == Failure::tls_verify);
    CHECK(server.tls_requests() == 0);
  }
  SECTION("expired") {
    TlsTestServer server(tls_server(pki().expired));
    auto r = call(get(server.port()));
    CHECK(r.failure == Failure::tls_verify);
    CHECK(r.message == "certificate verify failed: certificate has expired");
    CHECK(server.tls_requests() == 0);
  }
  SECTION("over a unix socket too") {
    pgc::test::TempDir dir;
    auto options = tls_server();
    options.unix_socket = (dir.path() / "tunnel.sock").string();
    TlsTestServer server(options);
    auto r = get(8008, "127.0.0.1", pki().other_ca.certificate_pem);
    r.unix_socket = options.unix_socket;
    auto answer = call(r);
    CHECK(answer.failure == Failure::tls_verify);
    CHECK(server.tls_requests() == 0);
  }
}

TEST_CASE("No CA or no name to verify against: refused before connecting") {
  TlsTestServer server(tls_server());
  CHECK(call(get(server.port(), "")).failure == Failure::tls_handshake);
  CHECK(call(get(server.port(), "127.0.0.1", "")).failure == Failure::tls_handshake);
  auto garbage = call(get(server.port(), "127.0.0.1", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"));
  CHECK(garbage.failure == Failure::tls_handshake);
  CHECK(server.connections() == 0);
}

TEST_CASE("TLS asked, the server speaks plain HTTP: tls_plain") {
  TlsTestServer::Options options;
  options.mode = TlsTestServer::Mode::plain;
  TlsTestServer server(options);
  auto r = call(get(server.port()));
  INFO(r.message);
  CHECK(r.failure == Failure::tls_plain);
  CHECK(server.plain_requests() == 0);
  // The same server answers a plain request.
  auto plain = get(server.port());
  plain.tls.reset();
  CHECK(call(plain).status == 200);
  CHECK(server.plain_requests() == 1);
}

TEST_CASE("Plain HTTP asked, the server wants TLS") {
  SECTION("an OpenSSL server drops the request unread: closed or reset (best effort)") {
    TlsTestServer server(tls_server());
    auto r = get(server.port());
    r.tls.reset();
    auto answer = call(r);
    INFO(answer.message);
    CHECK((answer.failure == Failure::closed || answer.failure == Failure::reset ||
           answer.failure == Failure::tls_expected));
  }
  SECTION("a server that answers with a TLS alert: tls_expected") {
    TlsTestServer::Options options;
    options.mode = TlsTestServer::Mode::tls_alert;
    TlsTestServer server(options);
    auto r = get(server.port());
    r.tls.reset();
    auto answer = call(r);
    INFO(answer.message);
    CHECK(answer.failure == Failure::tls_expected);
  }
}

TEST_CASE("The deadline holds against a server that accepts and never handshakes") {
  TlsTestServer::Options options;
  options.mode = TlsTestServer::Mode::silent;
  TlsTestServer server(options);
  auto start = Clock::now();
  auto r = call(get(server.port()), 500ms);
  auto took = Clock::now() - start;
  CHECK(r.failure == Failure::timeout);
  CHECK(took >= 500ms);
  CHECK(took < 500ms + pgc::test::k_tls_timing_margin);
}

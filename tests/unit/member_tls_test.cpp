// reconciler/member_tls: whether a member's TLS files on its host are as wanted (present, for its
// names, signed by the cluster's CA, its own key, the cluster's CA file, not due for renewal) and
// what a write-certificate step writes. Real certificates (providers/crypto), no host.

#include <catch2/catch.hpp>

#include <chrono>

#include "providers/crypto/x509.hpp"
#include "reconciler/cluster_ca.hpp"
#include "reconciler/member_tls.hpp"

// A namespace of its own: a unity build batches test files, and these directives stay here.
namespace pgc::member_tls_test {

using namespace pgc::reconciler;
using namespace std::chrono;
namespace x509 = pgc::providers::crypto;

namespace {

sys_seconds tls_now() { return floor<seconds>(system_clock::now()); }

struct Fixture {
  DesiredCluster cluster;
  x509::KeyAndCertificate ca;
  ObservedHost host;

  Fixture() {
    cluster.name = "c";
    cluster.namespace_ = "default";
    cluster.ssl.enabled = true;
    cluster.ssl.duration = seconds{days{395}};
    cluster.ssl.renew_before = ssl_renew_before(cluster.ssl.duration);
    DesiredMember m;
    m.name = "c-0";
    m.address = "10.0.0.1";
    m.certificate = member_certificate("c-0", "10.0.0.1");
    m.tls = tls_files(15, "c");
    cluster.members.push_back(m);
    ca = *x509::create_ca("pgconverge CA default/c", tls_now() - days{1}, tls_now() + days{3650});
  }
  const DesiredMember& member() const { return cluster.members.front(); }

  // The files a write-certificate step would write, put on the host.
  void install(const MemberTlsContent& content) {
    host.files[member().tls.certificate] = content.certificate;
    host.files[member().tls.private_key] = content.private_key;
    host.files[member().tls.ca] = content.ca;
  }
  MemberTlsContent issued(sys_seconds now = tls_now()) {
    auto content = member_tls_content(cluster, member(), &ca, now);
    REQUIRE(content.has_value());
    return *content;
  }
  CertificatePlan plan(const std::string& ca_pem) {
    return plan_member_certificate(cluster, member(), host, ca_pem, tls_now());
  }
};

}  // namespace

TEST_CASE("member_tls: absent files are written; issued ones are then left alone") {
  Fixture f;
  auto absent = f.plan(f.ca.certificate_pem);
  CHECK(absent.write);
  CHECK(absent.reason == "absent");
  CHECK(absent.before == "(none)");
  CHECK(absent.after.starts_with("CN=c-0, until "));

  auto content = f.issued();
  CHECK(content.ca == f.ca.certificate_pem);
  CHECK(x509::verify_certificate(content.certificate, f.ca.certificate_pem, tls_now()).has_value());
  CHECK(x509::check_key_matches(content.private_key, content.certificate).has_value());
  auto info = x509::read_certificate(content.certificate);
  REQUIRE(info.has_value());
  CHECK(info->subject_cn == "c-0");
  CHECK(info->ip_addresses == std::vector<std::string>{"10.0.0.1", "127.0.0.1"});
  f.install(content);
  auto ok = f.plan(f.ca.certificate_pem);
  CHECK_FALSE(ok.write);
  CHECK(ok.reason.empty());
  CHECK(ok.before.starts_with("CN=c-0, until "));

  // TLS off: nothing to write, whatever is there.
  f.cluster.ssl.enabled = false;
  f.host.files.clear();
  CHECK_FALSE(f.plan(f.ca.certificate_pem).write);
}

TEST_CASE("member_tls: due for renewal once the threshold is crossed") {
  Fixture f;
  // Issued 380 days ago for 395 days: 15 days left, under the 395/12 ≈ 33-day threshold.
  f.install(f.issued(tls_now() - days{380}));
  auto due = f.plan(f.ca.certificate_pem);
  CHECK(due.write);
  CHECK(due.reason.starts_with("expires "));
  CHECK(due.reason.ends_with("renewed 32 days before"));
  // 40 days left: not yet.
  Fixture g;
  g.install(g.issued(tls_now() - days{355}));
  CHECK_FALSE(g.plan(g.ca.certificate_pem).write);
}

TEST_CASE("member_tls: another CA, another member's certificate, a foreign key or CA file are written again") {
  Fixture f;
  f.install(f.issued());

  SECTION("the cluster's CA is new (state dir lost)") {
    CHECK(f.plan("").reason == "the cluster's CA is new");
    auto other = *x509::create_ca("other", tls_now() - days{1}, tls_now() + days{10});
    CHECK(f.plan(other.certificate_pem).write);
  }
  SECTION("a certificate for another member") {
    Fixture other;
    other.ca = f.ca;
    other.cluster.members.front().certificate = member_certificate("c-1", "10.0.0.2");
    f.host.files[f.member().tls.certificate] = other.issued().certificate;
    auto plan = f.plan(f.ca.certificate_pem);
    CHECK(plan.write);
    CHECK(plan.reason == "issued for other names (CN=c-1)");
  }
  SECTION("a key that is not the certificate's") {
    f.host.files[f.member().tls.private_key] = f.issued().private_key;
    CHECK(f.plan(f.ca.certificate_pem).reason == "the key is not the certificate's");
  }
  SECTION("a CA file that is not the cluster's") {
    f.host.files[f.member().tls.ca] = x509::create_ca("x", tls_now(), tls_now() + days{1})->certificate_pem;
    CHECK(f.plan(f.ca.certificate_pem).reason == "the CA file is not the cluster's CA");
  }
  SECTION("a file that is not a certificate") {
    f.host.files[f.member().tls.certificate] = std::string("garbage");
    CHECK(f.plan(f.ca.certificate_pem).reason == "the certificate on the host does not parse");
  }
  SECTION("one file missing") {
    f.host.files[f.member().tls.ca] = std::nullopt;
    CHECK(f.plan(f.ca.certificate_pem).reason == "absent");
  }
}

TEST_CASE("member_tls: the last certificate of a chain is its CA") {
  auto a = x509::create_ca("a", tls_now(), tls_now() + days{1})->certificate_pem;
  auto b = x509::create_ca("b", tls_now(), tls_now() + days{1})->certificate_pem;
  CHECK(last_certificate_block(a + b) == b);
  CHECK(last_certificate_block(a) == a);
  CHECK(last_certificate_block("no certificate").empty());
}

}  // namespace pgc::member_tls_test

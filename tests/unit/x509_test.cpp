// X.509 with real OpenSSL objects: issue → read → verify round trips, and each way a certificate
// given by a user can be wrong (another CA, expired, not yet valid, a key of another, garbage).

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "providers/crypto/x509.hpp"

// A namespace of its own: a unity build batches test files, and these directives stay here.
namespace pgc::x509_test {

using namespace pgc::providers::crypto;
using namespace std::chrono;

namespace {

CertTime x509_now() { return time_point_cast<seconds>(system_clock::now()); }

KeyAndCertificate make_ca(const char* cn = "pgconverge test CA") {
  auto ca = create_ca(cn, x509_now() - hours{1}, x509_now() + days{3650});
  REQUIRE(ca.has_value());
  return *ca;
}

LeafRequest member_request() {
  return LeafRequest{.common_name = "pg-1",
                     .dns_names = {"pg-1", "pg-1.example.internal"},
                     .ip_addresses = {"10.0.0.11", "fd00::11"},
                     .not_before = x509_now() - hours{1},
                     .not_after = x509_now() + days{395}};
}

}  // namespace

TEST_CASE("x509: a CA is a self-signed EC certificate marked CA") {
  auto ca = make_ca();
  CHECK(ca.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
  CHECK(ca.certificate_pem.starts_with("-----BEGIN CERTIFICATE-----"));
  auto info = read_certificate(ca.certificate_pem);
  REQUIRE(info.has_value());
  CHECK(info->subject_cn == "pgconverge test CA");
  CHECK(info->issuer_cn == "pgconverge test CA");
  CHECK(info->is_ca);
  CHECK(info->serial_hex.size() >= 30);
  CHECK(check_key_matches(ca.key_pem, ca.certificate_pem).has_value());
  CHECK(verify_certificate(ca.certificate_pem, ca.certificate_pem, x509_now()).has_value());
}

TEST_CASE("x509: a member certificate round trips: issue, read, key matches, verifies against its CA") {
  auto ca = make_ca();
  auto request = member_request();
  auto leaf = issue_leaf(ca, request);
  REQUIRE(leaf.has_value());
  auto info = read_certificate(leaf->certificate_pem);
  REQUIRE(info.has_value());
  CHECK(info->subject_cn == "pg-1");
  CHECK(info->issuer_cn == "pgconverge test CA");
  CHECK(info->dns_names == std::vector<std::string>{"pg-1", "pg-1.example.internal"});
  CHECK(info->ip_addresses == std::vector<std::string>{"10.0.0.11", "fd00::11"});
  CHECK(info->not_before == request.not_before);
  CHECK(info->not_after == request.not_after);
  CHECK_FALSE(info->is_ca);
  CHECK(check_key_matches(leaf->key_pem, leaf->certificate_pem).has_value());
  auto verified = verify_certificate(leaf->certificate_pem, ca.certificate_pem, x509_now());
  CHECK(verified.has_value());
  if (!verified) UNSCOPED_INFO(verified.error().message);
}

TEST_CASE("x509: serials are random: two leaves for the same request differ") {
  auto ca = make_ca();
  auto a = issue_leaf(ca, member_request());
  auto b = issue_leaf(ca, member_request());
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(read_certificate(a->certificate_pem)->serial_hex != read_certificate(b->certificate_pem)->serial_hex);
  CHECK(a->key_pem != b->key_pem);
}

TEST_CASE("x509: a certificate from another CA does not verify") {
  auto ca = make_ca();
  auto other = make_ca("another CA");
  auto leaf = issue_leaf(other, member_request());
  REQUIRE(leaf.has_value());
  auto verified = verify_certificate(leaf->certificate_pem, ca.certificate_pem, x509_now());
  REQUIRE_FALSE(verified.has_value());
  CHECK_THAT(verified.error().message, Catch::Contains("not signed by the CA") && Catch::Contains("another CA"));
  // A CA with the same name but another key is another CA too.
  auto twin = make_ca("pgconverge test CA");
  auto from_twin = issue_leaf(twin, member_request());
  REQUIRE(from_twin.has_value());
  CHECK_FALSE(verify_certificate(from_twin->certificate_pem, ca.certificate_pem, x509_now()).has_value());
  // A bundle holding the right CA among others verifies.
  CHECK(verify_certificate(leaf->certificate_pem, ca.certificate_pem + other.certificate_pem, x509_now()).has_value());
}

TEST_CASE("x509: expired and not-yet-valid certificates are told apart, with the date") {
  auto ca = make_ca();
  auto request = member_request();
  request.not_before = sys_days{2020y / 1 / 1};
  request.not_after = sys_days{2021y / 1 / 1};
  auto old = issue_leaf(ca, request);
  REQUIRE(old.has_value());
  auto expired = verify_certificate(old->certificate_pem, ca.certificate_pem, sys_days{2022y / 6 / 1});
  REQUIRE_FALSE(expired.has_value());
  CHECK(expired.error().message == "the certificate expired on 2021-01-01 00:00:00 UTC");
  auto early = verify_certificate(old->certificate_pem, ca.certificate_pem, sys_days{2019y / 6 / 1});
  REQUIRE_FALSE(early.has_value());
  CHECK(early.error().message == "the certificate is not valid before 2020-01-01 00:00:00 UTC");
  // The same certificate at a time inside its validity, but the CA is not yet valid then.
  auto inside = verify_certificate(old->certificate_pem, ca.certificate_pem, sys_days{2020y / 6 / 1});
  REQUIRE_FALSE(inside.has_value());
  CHECK_THAT(inside.error().message, Catch::Contains("certificate 2 of its chain") && Catch::Contains("not yet valid"));
}

TEST_CASE("x509: a key of another certificate is detected") {
  auto ca = make_ca();
  auto a = issue_leaf(ca, member_request());
  auto b = issue_leaf(ca, member_request());
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  auto mismatch = check_key_matches(b->key_pem, a->certificate_pem);
  REQUIRE_FALSE(mismatch.has_value());
  CHECK(mismatch.error().message == "the private key does not match the certificate");
  // The CA's key must match its certificate to issue.
  auto broken_ca = KeyAndCertificate{a->key_pem, ca.certificate_pem};
  auto refused = issue_leaf(broken_ca, member_request());
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message == "the CA key does not match the CA certificate");
}

TEST_CASE("x509: garbage PEM is a clear error that never echoes the text") {
  auto bad = read_certificate("not a certificate SECRET-WORD");
  REQUIRE_FALSE(bad.has_value());
  CHECK_THAT(bad.error().message, Catch::StartsWith("no PEM certificate found"));
  CHECK_THAT(bad.error().message, !Catch::Contains("SECRET-WORD"));
  auto truncated = read_certificate("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n");
  REQUIRE_FALSE(truncated.has_value());
  CHECK_THAT(truncated.error().message, Catch::StartsWith("no PEM certificate found"));
  auto key = read_private_key("-----BEGIN PRIVATE KEY-----\nSECRET-WORD\n-----END PRIVATE KEY-----\n");
  REQUIRE_FALSE(key.has_value());
  CHECK_THAT(key.error().message, Catch::StartsWith("no unencrypted PEM private key found"));
  CHECK_THAT(key.error().message, !Catch::Contains("SECRET-WORD"));
  // A certificate where a key belongs, and the other way round.
  auto ca = make_ca();
  CHECK_FALSE(read_private_key(ca.certificate_pem).has_value());
  CHECK_FALSE(read_certificate(ca.key_pem).has_value());
  CHECK(read_private_key(ca.key_pem).has_value());
  // A good certificate followed by garbage in a PEM block is an error naming the block.
  auto chain = read_certificates(ca.certificate_pem + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  REQUIRE_FALSE(chain.has_value());
  CHECK_THAT(chain.error().message, Catch::StartsWith("certificate 2 does not parse"));
}

TEST_CASE("x509: an encrypted private key is refused, never prompted for") {
  // openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -pass pass:x
  const char* encrypted =
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
      "MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAh1JY2oXdPisQICCAAw\n"
      "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEDu43n0c8nwo23YJr0oP1+MEgZD7\n"
      "EVNkwLjPbXtQ4Tsoq+1nyDZ/+ZBrjzWpWwDODolMlJ1NjLR672MV1dJR+foFzljS\n"
      "d8IcWxACNJv2ueQqrE88zwlsr8LlCx64I+OZ8qt6Ff7U5n9KBH/qDc11JbQ0vjmo\n"
      "upvn55kbz5WvzRQYNJzyj8V3USTZma6Jbl8fnIY8XHUcpOuBzDnYA0/A+fO9iwU=\n"
      "-----END ENCRYPTED PRIVATE KEY-----\n";
  CHECK_FALSE(read_private_key(encrypted).has_value());
}

TEST_CASE("x509: a chain verifies through its intermediates; bad requests are refused") {
  auto ca = make_ca();
  auto leaf = issue_leaf(ca, member_request());
  REQUIRE(leaf.has_value());
  // The leaf followed by its CA: the CA in the chain is not a trust anchor by itself.
  auto other = make_ca("another CA");
  CHECK_FALSE(verify_certificate(leaf->certificate_pem + ca.certificate_pem, other.certificate_pem, x509_now()).has_value());
  CHECK(verify_certificate(leaf->certificate_pem + ca.certificate_pem, ca.certificate_pem, x509_now()).has_value());

  auto request = member_request();
  request.ip_addresses = {"10.0.0.300"};
  auto bad_ip = issue_leaf(ca, request);
  REQUIRE_FALSE(bad_ip.has_value());
  CHECK(bad_ip.error().message == "'10.0.0.300' is not an IP address");
  request = member_request();
  request.not_after = request.not_before;
  CHECK_FALSE(issue_leaf(ca, request).has_value());
  CHECK(format_cert_time(sys_days{2026y / 12 / 7} + hours{11} + minutes{5}) == "2026-12-07 11:05:00 UTC");
}

}  // namespace pgc::x509_test

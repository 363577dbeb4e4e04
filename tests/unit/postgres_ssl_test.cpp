// reconciler/postgres_ssl: spec.postgres.ssl compiled, and the checks of the files a user names,
// against real certificates made with providers/crypto's x509 and real files in a temp dir.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <string>

#include "manifests_fixtures.hpp"
#include "providers/crypto/x509.hpp"
#include "reconciler/postgres_ssl.hpp"
#include "reconciler/render.hpp"

// A namespace of its own: a unity build batches test files, and these directives stay here.
namespace pgc::postgres_ssl_test {

using namespace pgc;
using namespace std::chrono;
namespace x509 = pgc::providers::crypto;
using pgc::testing::ManifestDir;
namespace test = pgc::test;

namespace {

sys_seconds ssl_now() { return floor<seconds>(system_clock::now()); }

std::string cluster_yaml(const std::string& ssl) {
  return "apiVersion: stackgres.io/v1\n"
         "kind: SGCluster\n"
         "metadata:\n"
         "  name: c\n"
         "spec:\n"
         "  instances: 1\n"
         "  postgres:\n"
         "    version: '15'\n"
         "    ssl:\n" +
         ssl;
}

const std::string k_selectors =
    "      certificateSecretKeySelector: {name: tls, key: member.crt}\n"
    "      privateKeySecretKeySelector: {name: tls, key: member.key}\n";

// A CA and a member certificate (valid from an hour ago for a year) written as tls/member.crt
// (the certificate then the CA) and tls/member.key (0600).
struct Material {
  x509::KeyAndCertificate ca;
  x509::KeyAndCertificate member;
};
Material write_material(const ManifestDir& dir, sys_seconds not_before = ssl_now() - hours{1},
                        sys_seconds not_after = ssl_now() + days{365}) {
  auto ca = x509::create_ca("test CA", ssl_now() - days{1}, ssl_now() + days{3650});
  REQUIRE(ca.has_value());
  auto member = x509::issue_leaf(*ca, {.common_name = "c-0", .dns_names = {}, .ip_addresses = {"10.0.0.11"},
                                       .not_before = not_before, .not_after = not_after});
  REQUIRE(member.has_value());
  dir.write("tls/member.crt", member->certificate_pem + ca->certificate_pem);
  auto key = dir.write("tls/member.key", member->key_pem);
  std::filesystem::permissions(key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return {*ca, *member};
}

// Loads dir (one SGCluster, c.yaml) and compiles its ssl at now; the diagnostics as printed.
struct Compiled {
  reconciler::DesiredSsl ssl;
  std::vector<std::string> printed;
};
Compiled compile_dir(const ManifestDir& dir, sys_seconds now = ssl_now()) {
  auto loaded = dir.load();
  REQUIRE(loaded.manifests.clusters.size() == 1);
  manifests::LoadResult result;
  auto ssl = reconciler::compile_ssl(loaded.manifests.clusters[0], now, result.diagnostics);
  return {ssl, dir.printed(result)};
}

}  // namespace

TEST_CASE("postgres_ssl: absent means enabled with pgconverge's CA, StackGres's duration and renewal") {
  ManifestDir dir;
  dir.write("c.yaml", cluster_yaml("      enabled: true\n"));
  auto compiled = compile_dir(dir);
  CHECK(compiled.printed.empty());
  CHECK(compiled.ssl.enabled);
  CHECK(compiled.ssl.generated());
  CHECK(compiled.ssl.duration == days{395});
  CHECK(compiled.ssl.renew_before == seconds{days{395}} / 12);  // 32.9 days
  CHECK(reconciler::ssl_renew_before(days{6}) == days{1});  // at least a day
}

TEST_CASE("postgres_ssl: a member's certificate names its member and its host's address") {
  auto by_ip = reconciler::member_certificate("c-0", "10.0.0.11");
  CHECK(by_ip.subject_cn == "c-0");
  // Patroni checks a member's own timeline over localhost with sslmode=verify-full.
  CHECK(by_ip.dns_names == std::vector<std::string>{"c-0", "localhost"});
  CHECK(by_ip.ip_addresses == std::vector<std::string>{"10.0.0.11", "127.0.0.1"});
  CHECK(reconciler::member_certificate("c-1", "fd00::12").ip_addresses == std::vector<std::string>{"fd00::12", "127.0.0.1"});
  auto by_name = reconciler::member_certificate("c-2", "db3.example.internal");
  CHECK(by_name.dns_names == std::vector<std::string>{"c-2", "db3.example.internal", "localhost"});
  CHECK(by_name.ip_addresses == std::vector<std::string>{"127.0.0.1"});
  CHECK(reconciler::format_utc(sys_days{2026y / 12 / 7} + hours{11} + minutes{5}) == "2026-12-07 11:05:00 UTC");
}

TEST_CASE("postgres_ssl: enabled false turns TLS off and reads no file") {
  ManifestDir dir;
  dir.write("c.yaml", cluster_yaml("      enabled: false\n" + k_selectors));  // the files do not exist
  auto compiled = compile_dir(dir);
  CHECK(compiled.printed.empty());
  CHECK_FALSE(compiled.ssl.enabled);
  CHECK_FALSE(compiled.ssl.generated());
}

TEST_CASE("postgres_ssl: given files are found next to the manifest and pass when right") {
  ManifestDir dir;
  dir.write("c.yaml", cluster_yaml("      duration: P6D\n" + k_selectors));
  write_material(dir);
  auto compiled = compile_dir(dir);
  CHECK(compiled.printed.empty());
  CHECK_FALSE(compiled.ssl.generated());
  CHECK(compiled.ssl.certificate_file == (dir.path() / "tls/member.crt").generic_string());
  CHECK(compiled.ssl.private_key_file == (dir.path() / "tls/member.key").generic_string());
  CHECK(compiled.ssl.given.subject_cn == "c-0");
  CHECK(compiled.ssl.given.issuer_cn == "test CA");
  CHECK(compiled.ssl.renew_before == days{1});  // 1/12th of 6 days is less than a day
  CHECK(compiled.ssl.duration == days{6});
  // render -o json shows what the given certificate says and where the key is, never the key.
  reconciler::DesiredState state;
  state.clusters.emplace_back();
  state.clusters[0].name = "c";
  state.clusters[0].ssl = compiled.ssl;
  auto text = reconciler::render(state, reconciler::RenderFormat::json);
  auto doc = nlohmann::json::parse(text);
  CHECK(doc["clusters"][0]["ssl"]["subject"] == "CN=c-0");
  CHECK(doc["clusters"][0]["ssl"]["certificates"] == "given");
  CHECK(doc["clusters"][0]["ssl"]["notAfter"] == reconciler::format_utc(compiled.ssl.given.not_after));
  CHECK_THAT(text, !Catch::Contains("PRIVATE KEY") && !Catch::Contains("BEGIN CERTIFICATE"));
  CHECK(reconciler::selector_path({"/etc/pgconverge/tls", "c.crt"}, "m/c.yaml") == "/etc/pgconverge/tls/c.crt");
  CHECK(reconciler::selector_path({"../tls", "c.crt"}, "repo/clusters/c.yaml") == "repo/tls/c.crt");
}

TEST_CASE("postgres_ssl: each wrong file is an error at its selector naming the file") {
  ManifestDir dir;
  dir.write("c.yaml", cluster_yaml(k_selectors));
  auto material = write_material(dir);
  const std::string cert_at = "c.yaml:10:7: spec.postgres.ssl.certificateSecretKeySelector: tls/member.crt";
  const std::string key_at = "c.yaml:11:7: spec.postgres.ssl.privateKeySecretKeySelector: ";

  SECTION("expired, and not yet valid, at the time of the check") {
    auto later = compile_dir(dir, ssl_now() + days{400});
    REQUIRE(later.printed.size() == 1);
    CHECK_THAT(later.printed[0], Catch::StartsWith(cert_at + ": the certificate expired on "));
    auto earlier = compile_dir(dir, ssl_now() - days{2});
    REQUIRE(earlier.printed.size() == 1);
    CHECK_THAT(earlier.printed[0], Catch::StartsWith(cert_at + ": the certificate is not valid before "));
  }
  SECTION("a key readable by everyone") {
    std::filesystem::permissions(dir.path() / "tls/member.key", std::filesystem::perms::others_read,
                                 std::filesystem::perm_options::add);
    auto compiled = compile_dir(dir);
    REQUIRE(compiled.printed.size() == 1);
    CHECK(compiled.printed[0] == key_at + "tls/member.key is readable by every user: a private key must not be (chmod 600 it)");
  }
  SECTION("the key of another certificate") {
    auto other = x509::issue_leaf(material.ca, {.common_name = "x", .dns_names = {}, .ip_addresses = {},
                                                .not_before = ssl_now() - hours{1}, .not_after = ssl_now() + days{2}});
    REQUIRE(other.has_value());
    dir.write("tls/member.key", other->key_pem);
    auto compiled = compile_dir(dir);
    REQUIRE(compiled.printed.size() == 1);
    CHECK(compiled.printed[0] == key_at + "tls/member.key is not the key of tls/member.crt: the private key does not "
                                          "match the certificate");
  }
  SECTION("a chain whose CA did not sign the certificate") {
    auto other_ca = x509::create_ca("other CA", ssl_now() - days{1}, ssl_now() + days{10});
    REQUIRE(other_ca.has_value());
    dir.write("tls/member.crt", material.member.certificate_pem + other_ca->certificate_pem);
    auto compiled = compile_dir(dir);
    REQUIRE(compiled.printed.size() == 1);
    CHECK_THAT(compiled.printed[0], Catch::StartsWith(cert_at + ": the certificate is not signed by the CA"));
  }
  SECTION("a missing file, and a certificate without its CA") {
    std::filesystem::remove(dir.path() / "tls/member.key");
    dir.write("tls/member.crt", material.member.certificate_pem);
    auto compiled = compile_dir(dir);
    REQUIRE(compiled.printed.size() == 2);
    CHECK(compiled.printed[0] == cert_at + " holds one certificate and no CA: put the certificate of the CA that "
                                           "signed it (CN 'test CA') after it, as a certificate chain");
    CHECK(compiled.printed[1] == key_at + "cannot read tls/member.key: No such file or directory");
  }
  SECTION("a name out of the manifest's directory, or a link out of it") {
    auto escape = [&](const std::string& selectors) {
      dir.write("c.yaml", cluster_yaml(selectors));
      return compile_dir(dir).printed;
    };
    auto absolute = escape("      certificateSecretKeySelector: {name: /root/.ssh, key: id_rsa.crt}\n"
                           "      privateKeySecretKeySelector: {name: /etc/pgconverge/tls/../../../root/.ssh, key: id_rsa}\n");
    REQUIRE(absolute.size() == 2);
    CHECK(absolute[0] == "c.yaml:10:7: spec.postgres.ssl.certificateSecretKeySelector: an absolute name must be below "
                         "/etc/pgconverge/tls (got \"/root/.ssh\"): a manifest may not name any file the controller can read");
    CHECK_THAT(absolute[1], Catch::EndsWith("privateKeySecretKeySelector: name may not hold '..': the files are below "
                                            "the manifest's directory or below /etc/pgconverge/tls"));
    std::filesystem::create_directories(dir.path() / "outside");
    auto other = test::TempDir();
    auto target = other.write("stolen.key", material.member.key_pem);
    std::filesystem::remove(dir.path() / "tls/member.key");
    std::filesystem::create_symlink(target, dir.path() / "tls/member.key");
    auto linked = escape(k_selectors);
    REQUIRE(linked.size() == 1);
    CHECK_THAT(linked[0], Catch::StartsWith("c.yaml:11:7: spec.postgres.ssl.privateKeySecretKeySelector: ") &&
                              Catch::EndsWith("tls/member.key leads out of the manifest's directory through a link"));
  }
}

}  // namespace pgc::postgres_ssl_test

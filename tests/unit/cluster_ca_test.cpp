// reconciler/cluster_ca: the cluster CA created once in a real temp state dir (0600, one file),
// reused, a damaged one reported rather than replaced; member certificates it signs verify.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "providers/crypto/x509.hpp"
#include "reconciler/cluster_ca.hpp"
#include "tests/support/temp_dir.hpp"

// A namespace of its own: a unity build batches test files, and these directives stay here.
namespace pgc::cluster_ca_test {

using namespace pgc;
using namespace std::chrono;
namespace x509 = pgc::providers::crypto;
namespace fs = std::filesystem;

namespace {
sys_seconds ca_now() { return floor<seconds>(system_clock::now()); }
}  // namespace

TEST_CASE("cluster_ca: created once, 0600, then read back unchanged") {
  test::TempDir state;
  reconciler::ClusterCaStore store(state.path());
  auto path = store.path_for("failover", "sync-cluster");
  CHECK(path == state.path() / "tls" / "failover.sync-cluster.ca.pem");
  auto first = store.ensure("failover", "sync-cluster", ca_now());
  REQUIRE(first.has_value());
  REQUIRE(fs::exists(path));
  CHECK((fs::status(path).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  auto info = x509::read_certificate(first->certificate_pem);
  REQUIRE(info.has_value());
  CHECK(info->subject_cn == "pgconverge CA failover/sync-cluster");
  CHECK(info->is_ca);
  auto again = store.ensure("failover", "sync-cluster", ca_now());
  REQUIRE(again.has_value());
  CHECK(again->certificate_pem == first->certificate_pem);
  CHECK(again->key_pem == first->key_pem);
  // Another cluster has its own CA.
  auto other = store.ensure("failover", "other", ca_now());
  REQUIRE(other.has_value());
  CHECK(other->certificate_pem != first->certificate_pem);
}

TEST_CASE("cluster_ca: a damaged or exposed CA file is an error, never replaced") {
  test::TempDir state;
  reconciler::ClusterCaStore store(state.path());
  auto created = store.ensure("default", "c", ca_now());
  REQUIRE(created.has_value());
  auto path = store.path_for("default", "c");

  SECTION("readable by everyone") {
    fs::permissions(path, fs::perms::others_read, fs::perm_options::add);
    auto refused = store.ensure("default", "c", ca_now());
    REQUIRE_FALSE(refused.has_value());
    CHECK_THAT(refused.error().message, Catch::Contains("is readable by every user"));
  }
  SECTION("a key of another CA") {
    auto stranger = x509::create_ca("x", ca_now(), ca_now() + days{1});
    REQUIRE(stranger.has_value());
    std::ofstream(path, std::ios::trunc) << stranger->key_pem << created->certificate_pem;
    auto refused = store.ensure("default", "c", ca_now());
    REQUIRE_FALSE(refused.has_value());
    CHECK_THAT(refused.error().message, Catch::StartsWith("state dir: the cluster CA: ") &&
                                            Catch::EndsWith("the private key does not match the certificate"));
  }
  SECTION("truncated") {
    std::ofstream(path, std::ios::trunc) << created->key_pem;
    auto refused = store.ensure("default", "c", ca_now());
    REQUIRE_FALSE(refused.has_value());
    CHECK_THAT(refused.error().message, Catch::Contains("not a CA file"));
    CHECK_THAT(refused.error().message, !Catch::Contains("PRIVATE KEY-----"));
  }
  // Whatever was wrong, the file is still there as it was: nothing replaced it.
  CHECK(fs::exists(path));
}

TEST_CASE("cluster_ca: member certificates verify against the CA and renew by the threshold") {
  test::TempDir state;
  auto ca = reconciler::ClusterCaStore(state.path()).ensure("default", "c", ca_now());
  REQUIRE(ca.has_value());
  auto member = reconciler::member_certificate("c-1", "10.0.0.12");
  auto issued = reconciler::issue_member_certificate(*ca, member, ca_now(), days{395});
  REQUIRE(issued.has_value());
  auto info = x509::read_certificate(issued->certificate_pem);
  REQUIRE(info.has_value());
  CHECK(info->subject_cn == "c-1");
  CHECK(info->ip_addresses == std::vector<std::string>{"10.0.0.12", "127.0.0.1"});
  CHECK(info->not_after == ca_now() + days{395});
  CHECK(x509::verify_certificate(issued->certificate_pem, ca->certificate_pem, ca_now()).has_value());
  CHECK(x509::check_key_matches(issued->key_pem, issued->certificate_pem).has_value());

  auto renew_before = reconciler::ssl_renew_before(days{395});
  CHECK_FALSE(reconciler::needs_renewal(info->not_after, ca_now(), renew_before));
  CHECK_FALSE(reconciler::needs_renewal(info->not_after, info->not_after - renew_before - seconds{1}, renew_before));
  CHECK(reconciler::needs_renewal(info->not_after, info->not_after - renew_before, renew_before));
  CHECK(reconciler::needs_renewal(info->not_after, info->not_after + days{1}, renew_before));
}

}  // namespace pgc::cluster_ca_test

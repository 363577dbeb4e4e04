// The cluster CA in the state dir. The key and certificate share one file so that the atomic
// write (util/atomic_file) makes them appear together; a file that does not read back as a
// matching pair is reported, never overwritten: a new CA would silently invalidate every member
// certificate it signed.

#include "reconciler/cluster_ca.hpp"

#include "util/atomic_file.hpp"
#include "util/file_permissions.hpp"

namespace pgc::reconciler {
namespace {

namespace x509 = providers::crypto;

constexpr const char* k_key_begin = "-----BEGIN PRIVATE KEY-----";
constexpr const char* k_certificate_begin = "-----BEGIN CERTIFICATE-----";

// The file's text split into the key block and the certificate block.
Result<x509::KeyAndCertificate> split_ca_file(const std::string& text) {
  auto key_at = text.find(k_key_begin);
  auto certificate_at = text.find(k_certificate_begin);
  if (key_at == std::string::npos || certificate_at == std::string::npos || key_at > certificate_at)
    return fail("not a CA file: a private key then a certificate");
  return x509::KeyAndCertificate{text.substr(key_at, certificate_at - key_at), text.substr(certificate_at)};
}

Result<x509::KeyAndCertificate> read_ca(const std::filesystem::path& path) {
  auto everyone = readable_by_everyone(path.string());
  PGC_TRY(everyone);
  if (*everyone) return fail(path.string() + " is readable by every user; chmod 600 it");
  auto text = read_whole_file(path);
  if (!text) return fail(path.string() + ": " + text.error().message);
  auto ca = split_ca_file(*text);
  if (!ca) return fail(path.string() + ": " + ca.error().message);
  if (auto matches = x509::check_key_matches(ca->key_pem, ca->certificate_pem); !matches)
    return fail(path.string() + ": " + matches.error().message);
  return ca;
}

}  // namespace

std::filesystem::path ClusterCaStore::path_for(const std::string& ns, const std::string& cluster) const {
  return dir_ / "tls" / (ns + "." + cluster + ".ca.pem");
}

Result<std::optional<x509::KeyAndCertificate>> ClusterCaStore::load_at(const std::filesystem::path& path,
                                                                        const std::string& what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<x509::KeyAndCertificate>{};
  auto ca = read_ca(path);
  if (!ca) return std::unexpected(ca.error().with_context("state dir: " + what));
  return std::optional<x509::KeyAndCertificate>(std::move(*ca));
}

Result<x509::KeyAndCertificate> ClusterCaStore::ensure_at(const std::filesystem::path& path,
                                                          const std::string& common_name, const std::string& what,
                                                          std::chrono::sys_seconds now) {
  auto existing = load_at(path, what);
  PGC_TRY(existing);
  if (*existing) return std::move(**existing);
  auto ca = x509::create_ca(common_name, now - std::chrono::minutes{1}, now + k_cluster_ca_validity);
  if (!ca) return std::unexpected(ca.error().with_context("creating " + what));
  auto written = write_file_atomically(path, ca->key_pem + ca->certificate_pem,
                                       std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  if (!written) return std::unexpected(written.error().with_context("state dir"));
  return ca;
}

Result<std::optional<x509::KeyAndCertificate>> ClusterCaStore::load(const std::string& ns,
                                                                     const std::string& cluster) const {
  return load_at(path_for(ns, cluster), "the cluster CA");
}

Result<x509::KeyAndCertificate> ClusterCaStore::ensure(const std::string& ns, const std::string& cluster,
                                                       std::chrono::sys_seconds now) const {
  return ensure_at(path_for(ns, cluster), "pgconverge CA " + ns + "/" + cluster, "the cluster CA", now);
}

std::filesystem::path ClusterCaStore::etcd_path_for(const std::string& etcd) const {
  return dir_ / "tls" / "etcd" / (etcd + ".ca.pem");
}

Result<std::optional<x509::KeyAndCertificate>> ClusterCaStore::load_etcd(const std::string& etcd) const {
  return load_at(etcd_path_for(etcd), "the CA of etcd " + etcd);
}

Result<x509::KeyAndCertificate> ClusterCaStore::ensure_etcd(const std::string& etcd,
                                                            std::chrono::sys_seconds now) const {
  return ensure_at(etcd_path_for(etcd), "pgconverge etcd CA " + etcd, "the CA of etcd " + etcd, now);
}

Result<x509::KeyAndCertificate> issue_member_certificate(const x509::KeyAndCertificate& ca,
                                                         const MemberCertificate& member,
                                                         std::chrono::sys_seconds now, std::chrono::seconds duration) {
  x509::LeafRequest request{.common_name = member.subject_cn,
                            .dns_names = member.dns_names,
                            .ip_addresses = member.ip_addresses,
                            .not_before = now - std::chrono::minutes{1},
                            .not_after = now + duration};
  auto issued = x509::issue_leaf(ca, request);
  if (!issued) return std::unexpected(issued.error().with_context("the certificate of " + member.subject_cn));
  return issued;
}

bool needs_renewal(std::chrono::sys_seconds not_after, std::chrono::sys_seconds now,
                   std::chrono::seconds renew_before) {
  return now + renew_before >= not_after;
}

}  // namespace pgc::reconciler

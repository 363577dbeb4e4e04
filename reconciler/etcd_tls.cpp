#include "reconciler/etcd_tls.hpp"

#include <algorithm>

#include "reconciler/cluster_ca.hpp"
#include "reconciler/postgres_ssl.hpp"

namespace pgc::reconciler {
namespace x509 = providers::crypto;

namespace {

const std::optional<std::string>* observed_file(const ObservedHost& host, const std::string& path) {
  auto found = host.files.find(path);
  return found == host.files.end() || !found->second ? nullptr : &found->second;
}

std::vector<std::string> sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

// Why files already there are not as wanted; empty when they are.
std::string certificate_problem(const EtcdCertificate& wanted, const x509::CertificateInfo& info,
                                const std::string& certificate, const std::string& key, const std::string& ca_file,
                                const std::string& ca_pem, std::chrono::sys_seconds now) {
  if (ca_pem.empty()) return "the etcd's CA is new";
  if (info.subject_cn != wanted.common_name || sorted(info.dns_names) != sorted(wanted.dns_names) ||
      sorted(info.ip_addresses) != sorted(wanted.ip_addresses))
    return "issued for other names (CN=" + info.subject_cn + ")";
  if (!x509::verify_certificate(certificate, ca_pem, now)) return "not signed by the etcd's CA, or not valid now";
  if (!x509::check_key_matches(key, certificate)) return "the key is not the certificate's";
  if (ca_file != ca_pem) return "the CA file is not the etcd's CA";
  if (needs_renewal(info.not_after, now, k_etcd_renew_before))
    return "expires " + x509::format_cert_time(info.not_after) + ": renewed " +
           std::to_string(k_etcd_renew_before.count()) + " days before";
  return "";
}

// Where a spec.tls file is on the controller, or an error at field when it may not be named.
std::optional<std::string> tls_file_path(const manifests::EtcdCluster& e, const std::string& field,
                                         const std::string& value, Diagnostics& diagnostics) {
  std::filesystem::path p(value);
  manifests::SecretKeySelector selector{.name = p.has_parent_path() ? p.parent_path().string() : ".",
                                        .key = p.filename().string()};
  const std::string manifest_file = e.locations.at("").file;
  std::string path = selector_path(selector, manifest_file);
  if (auto ok = check_confined(selector, path, manifest_file); !ok) {
    diagnostics.push_back(Diagnostic{Severity::error, e.locations.at(field), field, ok.error().message});
    return std::nullopt;
  }
  return path;
}

// The checks of one etcd's files, the first problem of each at its field.
void check_external_files(const manifests::EtcdCluster& e, const ExternalEtcdTls& out, std::chrono::sys_seconds now,
                          Diagnostics& diagnostics) {
  auto error = [&](const std::string& field, std::string message) {
    diagnostics.push_back(Diagnostic{Severity::error, e.locations.at(field), field, std::move(message)});
  };
  auto ca = read_pem_file(out.ca_file);
  bool ca_ok = false;
  if (!ca) error("spec.tls.caFile", ca.error().message);
  else if (auto read = x509::read_certificates(*ca); !read) error("spec.tls.caFile", out.ca_file + ": " + read.error().message);
  else ca_ok = true;
  if (out.certificate_file.empty()) return;
  auto certificate = read_pem_file(out.certificate_file);
  auto key = read_key_file(out.key_file);
  if (!certificate) error("spec.tls.certFile", certificate.error().message);
  else if (auto read = x509::read_certificate(*certificate); !read)
    error("spec.tls.certFile", out.certificate_file + ": " + read.error().message);
  else if (ca_ok)
    if (auto verified = x509::verify_certificate(*certificate, *ca, now); !verified)
      error("spec.tls.certFile", out.certificate_file + ": " + verified.error().message);
  if (!key) return error("spec.tls.keyFile", key.error().message);
  if (!certificate) return;
  if (auto match = x509::check_key_matches(*key, *certificate); !match)
    error("spec.tls.keyFile", out.key_file + " is not the key of " + out.certificate_file + ": " + match.error().message);
}

}  // namespace

std::vector<ExternalEtcdTls> compile_external_etcds(const manifests::ManifestSet& manifests, std::chrono::sys_seconds now,
                                                    Diagnostics& diagnostics) {
  std::vector<ExternalEtcdTls> out;
  for (const auto& e : manifests.etcd_clusters) {
    if (e.managed() || !e.https_endpoints() || e.tls_ca_file.empty()) continue;
    ExternalEtcdTls d{.name = e.metadata.name};
    for (const auto& endpoint : e.endpoints) d.endpoints.push_back(manifests::etcd_endpoint_address(endpoint));
    auto ca = tls_file_path(e, "spec.tls.caFile", e.tls_ca_file, diagnostics);
    std::optional<std::string> certificate, key;
    if (!e.tls_certificate_file.empty() && !e.tls_key_file.empty()) {
      certificate = tls_file_path(e, "spec.tls.certFile", e.tls_certificate_file, diagnostics);
      key = tls_file_path(e, "spec.tls.keyFile", e.tls_key_file, diagnostics);
      if (!certificate || !key) continue;
      d.certificate_file = *certificate;
      d.key_file = *key;
    }
    if (!ca) continue;
    d.ca_file = *ca;
    check_external_files(e, d, now, diagnostics);
    out.push_back(std::move(d));
  }
  return out;
}

Result<providers::EtcdTls> external_etcd_client(const ExternalEtcdTls& etcd) {
  providers::EtcdTls tls;
  auto ca = read_pem_file(etcd.ca_file);
  PGC_TRY(ca);
  tls.ca_pem = *ca;
  if (etcd.certificate_file.empty()) return tls;
  auto certificate = read_pem_file(etcd.certificate_file);
  PGC_TRY(certificate);
  auto key = read_key_file(etcd.key_file);
  PGC_TRY(key);
  tls.certificate_pem = *certificate;
  tls.key_pem = *key;
  return tls;
}

Result<providers::EtcdTls> read_etcd_client_files(const std::string& ca_file, const std::string& certificate_file,
                                                  const std::string& key_file, std::chrono::sys_seconds now) {
  providers::EtcdTls tls;
  auto ca = read_pem_file(ca_file);
  if (!ca) return fail("caFile: " + ca.error().message);
  if (auto read = x509::read_certificates(*ca); !read) return fail("caFile: " + ca_file + ": " + read.error().message);
  tls.ca_pem = *ca;
  if (certificate_file.empty() && key_file.empty()) return tls;
  auto certificate = read_pem_file(certificate_file);
  if (!certificate) return fail("certFile: " + certificate.error().message);
  if (auto ok = x509::verify_certificate(*certificate, *ca, now); !ok)
    return fail("certFile: " + certificate_file + ": " + ok.error().message);
  auto key = read_key_file(key_file);
  if (!key) return fail("keyFile: " + key.error().message);
  if (auto ok = x509::check_key_matches(*key, *certificate); !ok)
    return fail("keyFile: " + key_file + " is not the key of " + certificate_file + ": " + ok.error().message);
  tls.certificate_pem = *certificate;
  tls.key_pem = *key;
  return tls;
}

std::string certificate_summary(const std::string& pem) {
  auto info = x509::read_certificate(pem);
  return info ? "CN=" + info->subject_cn + ", until " + x509::format_cert_time(info->not_after) : std::string();
}

EtcdCertificate etcd_member_certificate(const DesiredEtcd& etcd, const DesiredEtcdMember& member) {
  EtcdCertificate out{.files = etcd.member_tls(), .common_name = member.name};
  out.ip_addresses = {member.address, "127.0.0.1"};
  out.ip_addresses.erase(std::unique(out.ip_addresses.begin(), out.ip_addresses.end()), out.ip_addresses.end());
  return out;
}

EtcdCertificate etcd_patroni_certificate(const DesiredEtcd& etcd, const std::string& host) {
  return EtcdCertificate{.files = etcd.patroni_tls(), .common_name = "patroni@" + host};
}

CertificatePlan plan_etcd_certificate(const EtcdCertificate& wanted, const ObservedHost& host, const std::string& ca_pem,
                                      std::chrono::sys_seconds now) {
  CertificatePlan plan;
  const auto* cert = observed_file(host, wanted.files.certificate);
  const auto* key = observed_file(host, wanted.files.private_key);
  const auto* ca = observed_file(host, wanted.files.ca);
  std::optional<x509::CertificateInfo> info;
  if (cert)
    if (auto read = x509::read_certificate(**cert)) info = *read;
  plan.before = info ? "CN=" + info->subject_cn + ", until " + x509::format_cert_time(info->not_after) : "(none)";
  plan.after = "CN=" + wanted.common_name + ", until " +
               x509::format_cert_time(now + std::chrono::duration_cast<std::chrono::seconds>(k_etcd_certificate_validity)) +
               ", signed by the etcd's CA";
  if (!cert || !key || !ca) plan.reason = "absent";
  else if (!info) plan.reason = "the certificate on the host does not parse";
  else plan.reason = certificate_problem(wanted, *info, **cert, **key, **ca, ca_pem, now);
  plan.write = !plan.reason.empty();
  return plan;
}

Result<MemberTlsContent> etcd_certificate_content(const EtcdCertificate& wanted, const x509::KeyAndCertificate& ca,
                                                  std::chrono::sys_seconds now) {
  MemberCertificate member{wanted.common_name, wanted.dns_names, wanted.ip_addresses};
  auto issued = issue_member_certificate(ca, member, now, k_etcd_certificate_validity);
  if (!issued) return std::unexpected(issued.error().with_context("etcd"));
  return MemberTlsContent{.certificate = issued->certificate_pem, .private_key = issued->key_pem, .ca = ca.certificate_pem};
}

Result<providers::EtcdTls> pgconverge_etcd_client(const x509::KeyAndCertificate& ca, std::chrono::sys_seconds now) {
  x509::LeafRequest request{.common_name = "pgconverge",
                            .dns_names = {},
                            .ip_addresses = {},
                            .not_before = now - std::chrono::minutes{1},
                            .not_after = now + std::chrono::hours{1}};
  auto issued = x509::issue_leaf(ca, request);
  if (!issued) return std::unexpected(issued.error().with_context("pgconverge's etcd client certificate"));
  return providers::EtcdTls{.ca_pem = ca.certificate_pem,
                            .certificate_pem = issued->certificate_pem,
                            .key_pem = issued->key_pem};
}

}  // namespace pgc::reconciler

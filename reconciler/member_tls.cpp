#include "reconciler/member_tls.hpp"

#include <algorithm>

#include "reconciler/cluster_ca.hpp"
#include "util/atomic_file.hpp"

namespace pgc::reconciler {
namespace x509 = providers::crypto;

namespace {

const std::optional<std::string>* observed_file(const ObservedHost& host, const std::string& path) {
  auto found = host.files.find(path);
  return found == host.files.end() ? nullptr : &found->second;
}

std::string summary(const x509::CertificateInfo& info) {
  return "CN=" + info.subject_cn + ", until " + x509::format_cert_time(info.not_after);
}

// A given file on the controller, or why not in the words the manifest errors use.
Result<std::string> read_text(const std::string& path) {
  auto text = read_whole_file(path);
  if (!text) return fail(path + ": cannot be read");
  return text;
}

template <typename T>
bool same_names(std::vector<T> a, std::vector<T> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

// Why the files pgconverge's CA issued are not as wanted; empty when they are.
std::string generated_problem(const DesiredCluster& cluster, const DesiredMember& m, const x509::CertificateInfo& info,
                              const std::string& certificate, const std::string& key, const std::string& ca_file,
                              const std::string& ca_pem, std::chrono::sys_seconds now) {
  if (ca_pem.empty()) return "the cluster's CA is new";
  if (info.subject_cn != m.certificate.subject_cn || !same_names(info.dns_names, m.certificate.dns_names) ||
      !same_names(info.ip_addresses, m.certificate.ip_addresses))
    return "issued for other names (CN=" + info.subject_cn + ")";
  if (!x509::verify_certificate(certificate, ca_pem, now)) return "not signed by the cluster's CA, or not valid now";
  if (!x509::check_key_matches(key, certificate)) return "the key is not the certificate's";
  if (ca_file != ca_pem) return "the CA file is not the cluster's CA";
  if (needs_renewal(info.not_after, now, cluster.ssl.renew_before))
    return "expires " + x509::format_cert_time(info.not_after) + ": renewed " +
           std::to_string(std::chrono::duration_cast<std::chrono::hours>(cluster.ssl.renew_before).count() / 24) +
           " days before";
  return "";
}

}  // namespace

std::string last_certificate_block(const std::string& pem) {
  static const std::string begin = "-----BEGIN CERTIFICATE-----";
  static const std::string end = "-----END CERTIFICATE-----";
  auto at = pem.rfind(begin);
  if (at == std::string::npos) return "";
  auto stop = pem.find(end, at);
  if (stop == std::string::npos) return "";
  return pem.substr(at, stop + end.size() - at) + "\n";
}

std::string read_given_chain(const std::string& path) {
  auto text = read_text(path);
  return text ? *text : std::string();
}

CertificatePlan plan_member_certificate(const DesiredCluster& cluster, const DesiredMember& m, const ObservedHost& host,
                                        const std::string& ca_pem, std::chrono::sys_seconds now) {
  CertificatePlan plan;
  if (!cluster.ssl.enabled || m.tls.dir.empty()) return plan;
  const auto* cert = observed_file(host, m.tls.certificate);
  const auto* key = observed_file(host, m.tls.private_key);
  const auto* ca = observed_file(host, m.tls.ca);
  std::optional<x509::CertificateInfo> info;
  if (cert && *cert) {
    if (auto read = x509::read_certificate(**cert)) info = *read;
  }
  plan.before = info ? summary(*info) : "(none)";
  if (cluster.ssl.generated()) {
    plan.after = "CN=" + m.certificate.subject_cn + ", until " +
                 x509::format_cert_time(now + std::chrono::duration_cast<std::chrono::seconds>(cluster.ssl.duration)) +
                 ", signed by the cluster's CA";
  } else {
    plan.after = "CN=" + cluster.ssl.given.subject_cn + ", until " + x509::format_cert_time(cluster.ssl.given.not_after);
  }
  if (!cert || !*cert || !key || !*key || !ca || !*ca) {
    plan.write = true;
    plan.reason = "absent";
    return plan;
  }
  if (!info) {
    plan.write = true;
    plan.reason = "the certificate on the host does not parse";
    return plan;
  }
  if (cluster.ssl.generated()) {
    plan.reason = generated_problem(cluster, m, *info, **cert, **key, **ca, ca_pem, now);
    plan.write = !plan.reason.empty();
    return plan;
  }
  // Given files: the host holds exactly them.
  auto want_cert = read_text(cluster.ssl.certificate_file);
  auto want_key = read_text(cluster.ssl.private_key_file);
  if (!want_cert || !want_key || **cert != *want_cert || **key != *want_key ||
      **ca != last_certificate_block(*want_cert)) {
    plan.write = true;
    plan.reason = "differ from " + cluster.ssl.certificate_file;
  }
  return plan;
}

Result<MemberTlsContent> member_tls_content(const DesiredCluster& cluster, const DesiredMember& m,
                                            const x509::KeyAndCertificate* ca, std::chrono::sys_seconds now) {
  MemberTlsContent content;
  if (cluster.ssl.generated()) {
    if (ca == nullptr) return fail("internal: no CA to issue the certificate of " + m.name);
    auto issued = issue_member_certificate(*ca, m.certificate, now,
                                           std::chrono::duration_cast<std::chrono::seconds>(cluster.ssl.duration));
    PGC_TRY(issued);
    content.certificate = issued->certificate_pem;
    content.private_key = issued->key_pem;
    content.ca = ca->certificate_pem;
    return content;
  }
  auto cert = read_text(cluster.ssl.certificate_file);
  PGC_TRY(cert);
  auto key = read_text(cluster.ssl.private_key_file);
  PGC_TRY(key);
  content.certificate = *cert;
  content.private_key = *key;
  content.ca = last_certificate_block(*cert);
  // Checked again: the files may have changed since they were compiled.
  if (auto matches = x509::check_key_matches(content.private_key, content.certificate); !matches)
    return fail(cluster.ssl.private_key_file + ": " + matches.error().message);
  if (auto valid = x509::verify_certificate(content.certificate, content.ca, now); !valid)
    return fail(cluster.ssl.certificate_file + ": " + valid.error().message);
  return content;
}

}  // namespace pgc::reconciler

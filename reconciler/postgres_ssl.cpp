// spec.postgres.ssl compiled, and the checks of the certificate files a user names: each a clear
// error at the selector's field that names the file, so that nothing is applied with a
// certificate PostgreSQL or a replica would refuse. The files' text is never printed.

#include "reconciler/postgres_ssl.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <tuple>
#include <vector>

#include "providers/crypto/x509.hpp"
#include "util/atomic_file.hpp"
#include "util/expected.hpp"
#include "util/file_permissions.hpp"
#include "util/net_address.hpp"

namespace pgc::reconciler {
namespace {

namespace fs = std::filesystem;
namespace x509 = providers::crypto;

constexpr std::uintmax_t k_max_pem_bytes = 1 << 20;
const std::string k_ssl_field = "spec.postgres.ssl";
const std::string k_certificate_field = k_ssl_field + ".certificateSecretKeySelector";
const std::string k_key_field = k_ssl_field + ".privateKeySecretKeySelector";

// The certificates of the chain file, and the PEM of the CA the first must be signed by: the last
// certificate of the chain, or the first itself when it is alone and self-signed.
struct Chain {
  std::vector<x509::CertificateInfo> certificates;
  std::string ca_pem;
};
Result<Chain> read_chain(const std::string& path, const std::string& text) {
  auto certificates = x509::read_certificates(text);
  if (!certificates) return fail(path + ": " + certificates.error().message);
  const auto& leaf = certificates->front();
  if (certificates->size() == 1 && leaf.issuer_cn != leaf.subject_cn)
    return fail(path + " holds one certificate and no CA: put the certificate of the CA that signed it (CN '" +
                leaf.issuer_cn + "') after it, as a certificate chain");
  // The CA is the last PEM block: cut the text at its BEGIN line.
  auto begin = text.rfind("-----BEGIN CERTIFICATE-----");
  return Chain{std::move(*certificates), text.substr(begin == std::string::npos ? 0 : begin)};
}

// Every check of the given files, in the order a user fixes them; the first problem of each file.
void check_given_files(const manifests::SGCluster& cluster, DesiredSsl& out, std::chrono::sys_seconds now,
                       Diagnostics& diagnostics) {
  auto error = [&](const std::string& field, std::string message) {
    diagnostics.push_back(Diagnostic{Severity::error, cluster.locations.at(field), field, std::move(message)});
  };
  auto key_text = read_key_file(out.private_key_file);
  auto certificate_text = read_pem_file(out.certificate_file);
  std::optional<Chain> chain;
  if (!certificate_text) {
    error(k_certificate_field, certificate_text.error().message);
  } else if (auto read = read_chain(out.certificate_file, *certificate_text); !read) {
    error(k_certificate_field, read.error().message);
  } else {
    chain = std::move(*read);
    const auto& leaf = chain->certificates.front();
    out.given = CertificateSummary{leaf.subject_cn, leaf.issuer_cn, leaf.not_after};
    if (auto verified = x509::verify_certificate(*certificate_text, chain->ca_pem, now); !verified)
      error(k_certificate_field, out.certificate_file + ": " + verified.error().message);
  }
  if (!key_text) return error(k_key_field, key_text.error().message);
  if (!chain) return;
  if (auto match = x509::check_key_matches(*key_text, *certificate_text); !match)
    error(k_key_field, out.private_key_file + " is not the key of " + out.certificate_file + ": " +
                           match.error().message);
}

}  // namespace

// A PEM file's text, or why it cannot be used ("cannot read <path>: No such file or directory").
Result<std::string> read_pem_file(const std::string& path) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec) return fail("cannot read " + path + ": " + ec.message());
  if (status.type() == fs::file_type::not_found) return fail("cannot read " + path + ": no such file");
  if (!fs::is_regular_file(status)) return fail(path + " is not a regular file");
  if (auto size = fs::file_size(path, ec); !ec && size > k_max_pem_bytes)
    return fail(path + " is larger than 1 MiB: not a PEM certificate or key");
  auto text = read_whole_file(path);
  if (!text) return fail("cannot open " + path + " for reading");
  return text;
}

// The private key's file: readable, only by its owner, an unencrypted PEM key.
Result<std::string> read_key_file(const std::string& path) {
  auto text = read_pem_file(path);
  PGC_TRY(text);
  auto everyone = readable_by_everyone(path);
  PGC_TRY(everyone);
  if (*everyone) return fail(path + " is readable by every user: a private key must not be (chmod 600 it)");
  if (auto key = x509::read_private_key(*text); !key) return fail(path + ": " + key.error().message);
  return text;
}

MemberCertificate member_certificate(const std::string& member, const std::string& address) {
  MemberCertificate out{.subject_cn = member, .dns_names = {member}, .ip_addresses = {}};
  if (is_ipv4(address) || is_ipv6(address)) out.ip_addresses.push_back(address);
  else if (address != member) out.dns_names.push_back(address);
  // Patroni reads a member's own timeline over a replication connection to localhost with the
  // replication settings (sslmode=verify-full): the certificate names the loopback too.
  out.dns_names.emplace_back("localhost");
  out.ip_addresses.emplace_back("127.0.0.1");
  return out;
}

std::string format_utc(std::chrono::sys_seconds t) {
  using namespace std::chrono;
  auto day_start = floor<days>(t);
  year_month_day date{day_start};
  hh_mm_ss<seconds> time{t - day_start};
  auto two = [](long long n) { return (n < 10 ? "0" : "") + std::to_string(n); };
  return std::to_string(static_cast<int>(date.year())) + "-" + two(static_cast<unsigned>(date.month())) + "-" +
         two(static_cast<unsigned>(date.day())) + " " + two(time.hours().count()) + ":" +
         two(time.minutes().count()) + ":" + two(time.seconds().count()) + " UTC";
}

std::chrono::seconds ssl_renew_before(std::chrono::seconds duration) {
  return std::max<std::chrono::seconds>(std::chrono::days{1}, duration / 12);
}

std::string selector_path(const manifests::SecretKeySelector& selector, const std::string& manifest_file) {
  fs::path directory(selector.name);
  if (directory.is_relative()) directory = fs::path(manifest_file).parent_path() / directory;
  return (directory / selector.key).lexically_normal().generic_string();
}

namespace {

bool within(const fs::path& path, const fs::path& directory) {
  auto rel = path.lexically_relative(directory);
  return !rel.empty() && *rel.begin() != "..";
}

}  // namespace

Result<void> check_confined(const manifests::SecretKeySelector& selector, const std::string& path,
                            const std::string& manifest_file) {
  fs::path name(selector.name);
  const fs::path allowed_dir(k_ssl_files_dir);
  for (const auto& part : name)
    if (part == "..")
      return fail("name may not hold '..': the files are below the manifest's directory or below " +
                  allowed_dir.string());
  fs::path base = fs::path(manifest_file).parent_path();
  if (name.is_absolute() && !within(name.lexically_normal(), allowed_dir))
    return fail("an absolute name must be below " + allowed_dir.string() + " (got \"" + selector.name +
                "\"): a manifest may not name any file the controller can read");
  // Links resolved: a link planted in the manifests may not lead out of them.
  std::error_code ec;
  auto real = fs::canonical(path, ec);
  if (ec) return {};  // a missing file is reported by the read, with its reason
  auto real_base = fs::canonical(name.is_absolute() ? allowed_dir : (base.empty() ? fs::path(".") : base), ec);
  if (ec || !within(real, real_base))
    return fail(path + " leads out of " + (name.is_absolute() ? allowed_dir.string() : "the manifest's directory") +
                " through a link");
  return {};
}

DesiredSsl compile_ssl(const manifests::SGCluster& cluster, std::chrono::sys_seconds now, Diagnostics& diagnostics) {
  DesiredSsl out;
  out.enabled = cluster.ssl.enabled;
  out.duration = std::chrono::seconds{cluster.ssl.duration_seconds};
  out.renew_before = ssl_renew_before(out.duration);
  if (!out.enabled || !cluster.ssl.certificate || !cluster.ssl.private_key) return out;
  const std::string manifest_file = cluster.locations.at("").file;
  out.certificate_file = selector_path(*cluster.ssl.certificate, manifest_file);
  out.private_key_file = selector_path(*cluster.ssl.private_key, manifest_file);
  bool confined = true;
  for (auto [selector, path, field] : {std::tuple{&*cluster.ssl.certificate, &out.certificate_file, &k_certificate_field},
                                       std::tuple{&*cluster.ssl.private_key, &out.private_key_file, &k_key_field}}) {
    if (auto ok = check_confined(*selector, *path, manifest_file); !ok) {
      diagnostics.push_back(Diagnostic{Severity::error, cluster.locations.at(*field), *field, ok.error().message});
      confined = false;
    }
  }
  if (confined) check_given_files(cluster, out, now, diagnostics);
  return out;
}

TlsFiles tls_files(int postgres_major, const std::string& cluster) {
  TlsFiles files;
  files.dir = "/etc/patroni/tls/" + std::to_string(postgres_major) + "-" + cluster;
  files.certificate = files.dir + "/server.crt";
  files.private_key = files.dir + "/server.key";
  files.ca = files.dir + "/ca.crt";
  return files;
}

}  // namespace pgc::reconciler

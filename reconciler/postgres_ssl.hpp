#pragma once
// spec.postgres.ssl compiled: whether a cluster's PostgreSQL uses TLS, and where its member
// certificates come from — files the user names on the controller (read and checked here:
// parsed, key matching, valid now, signed by the CA of its chain), or pgconverge's CA. Plain data
// and a pure check apart from reading the named files.

#include <chrono>
#include <string>
#include <vector>

#include "manifests/model.hpp"
#include "util/expected.hpp"
#include "util/source_location.hpp"

namespace pgc::reconciler {

// What a certificate given by the user says, for render and plan (never its key).
struct CertificateSummary {
  std::string subject_cn;
  std::string issuer_cn;
  std::chrono::sys_seconds not_after{};
};

struct DesiredSsl {
  bool enabled = true;
  // The user's files on the controller, resolved (empty → pgconverge's CA issues a certificate
  // per member). certificate_file holds the certificate then its chain; its last certificate is
  // the CA the members verify each other with.
  std::string certificate_file;
  std::string private_key_file;
  CertificateSummary given;  // set when certificate_file is
  // How long a generated certificate is valid, and how long before its expiry it is renewed:
  // StackGres's rule, 1 day or, if more, 1/12th of the duration.
  std::chrono::seconds duration{manifests::k_default_ssl_duration_seconds};
  std::chrono::seconds renew_before{};

  [[nodiscard]] bool generated() const { return enabled && certificate_file.empty(); }
};

// The certificate a member's PostgreSQL presents when pgconverge's CA signs it: CN = the
// member's name, subjectAltNames = its host's address (an IP address or a DNS name) and the
// member's name, and localhost / 127.0.0.1 (Patroni checks its own member over loopback).
struct MemberCertificate {
  std::string subject_cn;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
};
MemberCertificate member_certificate(const std::string& member, const std::string& address);

// A member's TLS files on its host: one directory per cluster (root:postgres 0750), its
// certificate (then the chain, for given files), its key (root:postgres 0640, which PostgreSQL
// accepts for a root-owned key) and the CA the members verify each other with. PostgreSQL and
// Patroni's REST API present the same certificate; both load new files on a reload.
struct TlsFiles {
  std::string dir;
  std::string certificate;
  std::string private_key;
  std::string ca;
};
// /etc/patroni/tls/<major>-<cluster>/{server.crt,server.key,ca.crt}.
TlsFiles tls_files(int postgres_major, const std::string& cluster);

// "2026-12-07 11:05:00 UTC".
std::string format_utc(std::chrono::sys_seconds t);

// StackGres's renewal threshold for a certificate of this duration: max(1 day, duration / 12).
std::chrono::seconds ssl_renew_before(std::chrono::seconds duration);

// The one absolute directory a selector's name may point into: a manifest pusher may not make
// pgconverge read (and later copy to the hosts) any file the controller's user can read.
inline constexpr const char* k_ssl_files_dir = "/etc/pgconverge/tls";

// Where a SecretKeySelector's file is on the controller: name is a directory, absolute or
// relative to the directory of manifest_file; key a file name in it.
std::string selector_path(const manifests::SecretKeySelector& selector, const std::string& manifest_file);

// Ok when path (as selector_path gives it), links resolved, stays inside the directory of
// manifest_file or inside k_ssl_files_dir, and name holds no ".." component.
Result<void> check_confined(const manifests::SecretKeySelector& selector, const std::string& path,
                            const std::string& manifest_file);

// A PEM file a user names, read on the controller: its text, or why it cannot be used
// ("cannot read <path>: no such file", "<path> is not a regular file", larger than 1 MiB).
Result<std::string> read_pem_file(const std::string& path);
// A private key's file: as read_pem_file, readable by its owner only, an unencrypted PEM key.
Result<std::string> read_key_file(const std::string& path);

// Compiles cluster.spec.postgres.ssl. Given files are read and checked at time `now`: each
// problem (missing or unreadable file, key readable by everyone, no PEM, a key of another
// certificate, not yet valid or expired, not signed by its chain's CA, no CA) is an error in
// diagnostics at the selector's field, naming the file.
DesiredSsl compile_ssl(const manifests::SGCluster& cluster, std::chrono::sys_seconds now, Diagnostics& diagnostics);

}  // namespace pgc::reconciler

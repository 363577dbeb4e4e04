#pragma once
// The CA pgconverge keeps for a cluster whose spec.postgres.ssl asks for generated certificates:
// created once in the state dir (<state-dir>/tls/<namespace>.<cluster>.ca.pem, its key and
// certificate in one file, 0600, written atomically so a crash never leaves one without the
// other), reused by every later run, never printed; and the member certificates it signs.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "providers/crypto/x509.hpp"
#include "reconciler/postgres_ssl.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

// How long a CA pgconverge creates is valid: 10 years (its members' certificates are renewed
// well within it; the CA itself is not renewed by pgconverge).
inline constexpr std::chrono::days k_cluster_ca_validity{3650};

class ClusterCaStore {
 public:
  explicit ClusterCaStore(std::filesystem::path state_dir) : dir_(std::move(state_dir)) {}

  // The file holding the cluster's CA key and certificate.
  [[nodiscard]] std::filesystem::path path_for(const std::string& ns, const std::string& cluster) const;

  // The cluster's CA when its file exists (errors as ensure()'s), nullopt when it does not.
  [[nodiscard]] Result<std::optional<providers::crypto::KeyAndCertificate>> load(const std::string& ns,
                                                                                 const std::string& cluster) const;

  // The cluster's CA: read back when its file exists (an error, never a replacement, when the
  // file is damaged, its key does not match its certificate, or the file is readable by others),
  // created and saved otherwise (CN "pgconverge CA <namespace>/<cluster>", valid from now).
  [[nodiscard]] Result<providers::crypto::KeyAndCertificate> ensure(const std::string& ns, const std::string& cluster,
                                                                    std::chrono::sys_seconds now) const;

  // The CA of a managed EtcdCluster (a global kind): <state-dir>/tls/etcd/<name>.ca.pem, a
  // directory of its own so that it never shares a file with an SGCluster's CA; CN "pgconverge
  // etcd CA <name>". load and ensure as above.
  [[nodiscard]] std::filesystem::path etcd_path_for(const std::string& etcd) const;
  [[nodiscard]] Result<std::optional<providers::crypto::KeyAndCertificate>> load_etcd(const std::string& etcd) const;
  [[nodiscard]] Result<providers::crypto::KeyAndCertificate> ensure_etcd(const std::string& etcd,
                                                                         std::chrono::sys_seconds now) const;

 private:
  [[nodiscard]] static Result<std::optional<providers::crypto::KeyAndCertificate>> load_at(
      const std::filesystem::path& path, const std::string& what);
  [[nodiscard]] static Result<providers::crypto::KeyAndCertificate> ensure_at(const std::filesystem::path& path,
                                                                             const std::string& common_name,
                                                                             const std::string& what,
                                                                             std::chrono::sys_seconds now);
  std::filesystem::path dir_;
};

// A member certificate signed by ca: the member's CN and names, valid from now (less a minute of
// clock skew between the controller and the hosts) for duration.
[[nodiscard]] Result<providers::crypto::KeyAndCertificate> issue_member_certificate(
    const providers::crypto::KeyAndCertificate& ca, const MemberCertificate& member, std::chrono::sys_seconds now,
    std::chrono::seconds duration);

// Whether a certificate valid until not_after is due for renewal at now.
[[nodiscard]] bool needs_renewal(std::chrono::sys_seconds not_after, std::chrono::sys_seconds now,
                                 std::chrono::seconds renew_before);

}  // namespace pgc::reconciler

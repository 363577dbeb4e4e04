#pragma once
// A member's TLS files on its host (postgres_ssl.hpp's TlsFiles): whether they are as wanted —
// present, the certificate for this member (its name and address) signed by the cluster's CA, the
// key its own, the CA file the cluster's, and not due for renewal — or, for files the user names,
// exactly those files; and, at apply, the content to write. Pure apart from reading the user's
// files; never shows a key.

#include <chrono>
#include <optional>
#include <string>

#include "providers/crypto/x509.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

// Why a member's TLS files must be written (write), and what its certificate says before and
// after, for plan output ("CN=c-0, until 2027-01-05 10:00:00 UTC").
struct CertificatePlan {
  bool write = false;
  std::string reason;
  std::string before;  // "(none)" when absent
  std::string after;
};

// ca_certificate_pem: the certificate of the cluster's CA in the state dir; empty when it does not
// exist yet (every member's certificate is then issued by the new CA at apply).
CertificatePlan plan_member_certificate(const DesiredCluster& cluster, const DesiredMember& member,
                                        const ObservedHost& host, const std::string& ca_certificate_pem,
                                        std::chrono::sys_seconds now);

// The three files' text.
struct MemberTlsContent {
  std::string certificate;  // the member's certificate (then its chain, for given files)
  std::string private_key;
  std::string ca;
};

// What to write for member: a new certificate issued by ca (generated; ca must be set), or the
// user's files read again (given; the CA file is the chain's last certificate).
Result<MemberTlsContent> member_tls_content(const DesiredCluster& cluster, const DesiredMember& member,
                                            const providers::crypto::KeyAndCertificate* ca,
                                            std::chrono::sys_seconds now);

// The last PEM certificate block of text (a chain's CA); empty when there is none.
std::string last_certificate_block(const std::string& pem);

// The text of a certificate file the user names (compiled and checked already); empty when it
// cannot be read now.
std::string read_given_chain(const std::string& path);

}  // namespace pgc::reconciler

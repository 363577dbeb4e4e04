#pragma once
// The TLS files of a managed etcd (EtcdCluster spec.hosts, spec.tls.enabled): which certificates
// it needs (each member's, serving its peer and client URLs and used by the etcdctl pgconverge
// runs there; each Patroni host's client certificate), whether the files a host holds are as
// wanted, and their content at apply. Pure apart from the caller's CA; never shows a key.

#include <chrono>
#include <string>
#include <vector>

#include "providers/crypto/x509.hpp"
#include "manifests/model.hpp"
#include "providers/etcd/etcd_client.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/member_tls.hpp"
#include "reconciler/observed.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

// One certificate a host of a managed etcd holds, and where.
struct EtcdCertificate {
  EtcdTlsFiles files{};
  std::string common_name{};
  std::vector<std::string> dns_names{};
  std::vector<std::string> ip_addresses{};
};

// A member's certificate: CN the member's name; SANs its Host's address and 127.0.0.1 (etcdctl on
// the host asks the local client URL) — IP addresses only, as every client dials one: a dNSName
// SAN makes python-etcd (which injects pyOpenSSL into urllib3 where python3-openssl is installed)
// import the idna module, which Debian's patroni does not pull in, and Patroni then never
// reaches etcd ("No module named 'idna'").
EtcdCertificate etcd_member_certificate(const DesiredEtcd& etcd, const DesiredEtcdMember& member);
// The client certificate of Patroni on host (CN "patroni@<host>", no SAN: a client's names are
// not checked).
EtcdCertificate etcd_patroni_certificate(const DesiredEtcd& etcd, const std::string& host);

// Whether host's files hold wanted, issued by the etcd's CA (ca_pem: empty when the state dir has
// none yet: everything is issued at apply), with its key, not due for renewal.
CertificatePlan plan_etcd_certificate(const EtcdCertificate& wanted, const ObservedHost& host, const std::string& ca_pem,
                                      std::chrono::sys_seconds now);

// A new certificate for wanted, signed by ca, valid from now for k_etcd_certificate_validity.
Result<MemberTlsContent> etcd_certificate_content(const EtcdCertificate& wanted,
                                                  const providers::crypto::KeyAndCertificate& ca,
                                                  std::chrono::sys_seconds now);

// Compiles spec.tls of every EtcdCluster with https:// spec.endpoints (paths as spec.postgres.ssl's
// selectors: relative to the manifest's directory, or below /etc/pgconverge/tls). Each file is
// read and checked at now — missing or unreadable, key readable by everyone, not PEM, the key not
// the certificate's, the certificate not yet valid or expired, not signed by the CA file — each an
// error at its field naming the file.
std::vector<ExternalEtcdTls> compile_external_etcds(const manifests::ManifestSet& manifests,
                                                    std::chrono::sys_seconds now, Diagnostics& diagnostics);

// The files of an external etcd as a client presents them (read again: they may have changed).
Result<providers::EtcdTls> external_etcd_client(const ExternalEtcdTls& etcd);

// A client's files named in a configuration (serve's ownership.tls), read and checked at now:
// the error starts with the key of the file at fault ("keyFile: client.key is not the key of …").
// certificate_file and key_file may both be empty (no client certificate).
Result<providers::EtcdTls> read_etcd_client_files(const std::string& ca_file, const std::string& certificate_file,
                                                  const std::string& key_file, std::chrono::sys_seconds now);

// "CN=<subject>, until <notAfter>" of the first certificate of pem; empty when it does not parse.
std::string certificate_summary(const std::string& pem);

// pgconverge's own client certificate for a managed etcd (the DCS check before secrets are
// generated): issued in memory by the etcd's CA for each use (CN "pgconverge", valid an hour),
// never written anywhere — whoever holds the state dir holds the CA's key anyway.
Result<providers::EtcdTls> pgconverge_etcd_client(const providers::crypto::KeyAndCertificate& ca,
                                                  std::chrono::sys_seconds now);

}  // namespace pgc::reconciler

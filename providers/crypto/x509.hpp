#pragma once
// X.509 certificates for TLS between hosts over OpenSSL's libcrypto (no OpenSSL header here):
// a CA (EC P-256, self-signed), member certificates it signs, and the checks a certificate given
// by a user must pass (parsed, its key matching, valid at a time, signed by a CA). Every
// certificate and key crosses this interface as PEM text. Thread-safe; no global state.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.hpp"

namespace pgc::providers::crypto {

using CertTime = std::chrono::sys_seconds;

// A private key and the certificate for it, both PEM (the key unencrypted PKCS#8).
struct KeyAndCertificate {
  std::string key_pem;
  std::string certificate_pem;
};

// What a certificate says, as read from its PEM.
struct CertificateInfo {
  std::string subject_cn;                 // empty when the subject has no commonName
  std::string issuer_cn;                  // empty when the issuer has no commonName
  std::vector<std::string> dns_names;     // subjectAltName dNSName entries, in order
  std::vector<std::string> ip_addresses;  // subjectAltName iPAddress entries, printed ("10.0.0.1", "::1")
  CertTime not_before{};
  CertTime not_after{};
  bool is_ca = false;      // basicConstraints CA:TRUE
  std::string serial_hex;  // upper-case hexadecimal, as openssl x509 -serial prints it
};

// What a member certificate is issued for.
struct LeafRequest {
  std::string common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;  // textual IPv4 or IPv6 addresses
  CertTime not_before{};
  CertTime not_after{};
};

// A new CA: an EC P-256 key and a self-signed certificate (CN = common_name, basicConstraints
// CA:TRUE critical, keyUsage keyCertSign and cRLSign, a random 127-bit serial, SHA-256).
[[nodiscard]] Result<KeyAndCertificate> create_ca(std::string_view common_name, CertTime not_before,
                                                  CertTime not_after);

// A new EC P-256 key and a certificate for it signed by ca (CN and subjectAltNames from request,
// basicConstraints CA:FALSE, extendedKeyUsage serverAuth and clientAuth, a random serial). An
// error when ca's key does not match its certificate or an IP address does not parse.
[[nodiscard]] Result<KeyAndCertificate> issue_leaf(const KeyAndCertificate& ca, const LeafRequest& request);

// The first certificate of PEM text; an error when there is none or it does not parse.
[[nodiscard]] Result<CertificateInfo> read_certificate(std::string_view pem);

// Every certificate of PEM text (a chain or a CA bundle), in order; an error when there is none.
[[nodiscard]] Result<std::vector<CertificateInfo>> read_certificates(std::string_view pem);

// Ok when PEM text holds an unencrypted private key; an error otherwise (never echoing the text).
[[nodiscard]] Result<void> read_private_key(std::string_view key_pem);

// Ok when key_pem is the private key of the first certificate of certificate_pem.
[[nodiscard]] Result<void> check_key_matches(std::string_view key_pem, std::string_view certificate_pem);

// Ok when the first certificate of certificate_pem is valid at `at` (notBefore ≤ at ≤ notAfter)
// and chains to one of the certificates of ca_pem (the trust anchors; the certificates after the
// first in certificate_pem serve as intermediates). The error says which: not yet valid, expired
// (with the date), or not signed by the CA.
[[nodiscard]] Result<void> verify_certificate(std::string_view certificate_pem, std::string_view ca_pem,
                                              CertTime at);

// "2026-12-07 11:05:00 UTC".
[[nodiscard]] std::string format_cert_time(CertTime t);

}  // namespace pgc::providers::crypto

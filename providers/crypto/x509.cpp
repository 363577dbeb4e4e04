// X.509 over libcrypto. Every OpenSSL object lives in a unique_ptr; every failure drains the
// thread's OpenSSL error queue into the message (never a key's or certificate's text) so that a
// stale error never shows in a later, unrelated message.

#include "providers/crypto/x509.hpp"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <climits>
#include <ctime>
#include <cstdio>
#include <memory>

namespace pgc::providers::crypto {
namespace {

template <auto Free>
struct OsslFree {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using X509Ptr = std::unique_ptr<X509, OsslFree<X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, OsslFree<EVP_PKEY_free>>;
using KeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OsslFree<EVP_PKEY_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, OsslFree<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, OsslFree<BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, OsslFree<X509_EXTENSION_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, OsslFree<GENERAL_NAMES_free>>;
using StorePtr = std::unique_ptr<X509_STORE, OsslFree<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OsslFree<X509_STORE_CTX_free>>;

void free_x509_stack(STACK_OF(X509) * stack) { sk_X509_pop_free(stack, X509_free); }
using X509StackPtr = std::unique_ptr<STACK_OF(X509), OsslFree<free_x509_stack>>;

// The reason of the oldest error in the thread's queue ("no start line", "bad decrypt"), and
// the queue emptied.
std::string drain_openssl_errors() {
  unsigned long code = ERR_get_error();
  std::string reason;
  if (code != 0) {
    const char* text = ERR_reason_error_string(code);
    reason = text != nullptr ? text : "OpenSSL error " + std::to_string(code);
  }
  ERR_clear_error();
  return reason;
}

std::unexpected<Error> openssl_fail(const std::string& what) {
  auto reason = drain_openssl_errors();
  return fail(reason.empty() ? what : what + " (" + reason + ")");
}

// A read-only memory BIO over text (no copy); null when text is too long for an int length.
BioPtr memory_reader(std::string_view text) {
  if (text.size() > static_cast<std::size_t>(INT_MAX)) return BioPtr{};
  return BioPtr{BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))};
}

// What a memory BIO written by PEM_write_bio_* holds.
std::string memory_contents(BIO* bio) {
  std::string out(BIO_ctrl_pending(bio), '\0');
  if (!out.empty() && BIO_read(bio, out.data(), static_cast<int>(out.size())) != static_cast<int>(out.size()))
    throw FatalError("x509: reading a memory BIO failed");
  return out;
}

// A password callback that refuses: an encrypted key is an error, never a prompt on the terminal.
int no_password(char*, int, int, void*) { return -1; }

Result<std::vector<X509Ptr>> parse_certificates(std::string_view pem) {
  auto bio = memory_reader(pem);
  if (!bio) return fail("certificate text too large");
  std::vector<X509Ptr> out;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr)) out.emplace_back(cert);
  // The loop ends at the end of the text (PEM "no start line") or at a block that does not parse.
  auto last = ERR_peek_last_error();
  bool clean_end = ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (out.empty()) return openssl_fail("no PEM certificate found");
  if (last != 0 && !clean_end) return openssl_fail("certificate " + std::to_string(out.size() + 1) + " does not parse");
  ERR_clear_error();
  return out;
}

Result<X509Ptr> parse_first_certificate(std::string_view pem) {
  auto certs = parse_certificates(pem);
  PGC_TRY(certs);
  return std::move(certs->front());
}

Result<KeyPtr> parse_private_key(std::string_view pem) {
  auto bio = memory_reader(pem);
  if (!bio) return fail("private key text too large");
  KeyPtr key{PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr)};
  if (!key) return openssl_fail("no unencrypted PEM private key found");
  ERR_clear_error();
  return key;
}

Result<KeyPtr> generate_p256_key() {
  KeyCtxPtr ctx{EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr)};
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") != 1 ||
      EVP_PKEY_generate(ctx.get(), &raw) != 1)
    return openssl_fail("generating an EC P-256 key failed");
  return KeyPtr{raw};
}

CertTime from_asn1_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return CertTime{};
  using namespace std::chrono;
  auto date = year{tm.tm_year + 1900} / month{static_cast<unsigned>(tm.tm_mon + 1)} /
              day{static_cast<unsigned>(tm.tm_mday)};
  return sys_days{date} + hours{tm.tm_hour} + minutes{tm.tm_min} + seconds{tm.tm_sec};
}

std::string name_entry_cn(const X509_NAME* name) {
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return {};
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
  OPENSSL_free(utf8);
  return out;
}

std::string format_ip(const ASN1_OCTET_STRING* bytes) {
  int length = ASN1_STRING_length(bytes);
  int family = length == 4 ? AF_INET : length == 16 ? AF_INET6 : -1;
  char text[INET6_ADDRSTRLEN] = {};
  if (family < 0 || inet_ntop(family, ASN1_STRING_get0_data(bytes), text, sizeof text) == nullptr)
    return "<" + std::to_string(length) + "-byte address>";
  return text;
}

void read_alt_names(X509* cert, CertificateInfo& info) {
  NamesPtr names{static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))};
  if (!names) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                  static_cast<std::size_t>(ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      info.ip_addresses.push_back(format_ip(name->d.iPAddress));
    }
  }
}

std::string serial_hex(X509* cert) {
  BnPtr bn{ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)};
  if (!bn) return {};
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) return {};
  std::string out = hex;
  OPENSSL_free(hex);
  return out;
}

CertificateInfo describe(X509* cert) {
  CertificateInfo info;
  info.subject_cn = name_entry_cn(X509_get_subject_name(cert));
  info.issuer_cn = name_entry_cn(X509_get_issuer_name(cert));
  read_alt_names(cert, info);
  info.not_before = from_asn1_time(X509_get0_notBefore(cert));
  info.not_after = from_asn1_time(X509_get0_notAfter(cert));
  info.is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
  info.serial_hex = serial_hex(cert);
  ERR_clear_error();
  return info;
}

// ---- building a certificate ----

Result<void> add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext{X509V3_EXT_conf_nid(nullptr, &ctx, nid, value)};
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return openssl_fail(std::string("adding the ") + OBJ_nid2sn(nid) + " extension failed");
  return {};
}

Result<void> add_alt_names(X509* cert, const LeafRequest& request) {
  NamesPtr names{sk_GENERAL_NAME_new_null()};
  auto push = [&](int type, ASN1_STRING* value) {
    GENERAL_NAME* name = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(name, type, value);
    sk_GENERAL_NAME_push(names.get(), name);
  };
  for (const auto& dns : request.dns_names) {
    ASN1_IA5STRING* value = ASN1_IA5STRING_new();
    ASN1_STRING_set(value, dns.data(), static_cast<int>(dns.size()));
    push(GEN_DNS, value);
  }
  for (const auto& ip : request.ip_addresses) {
    ASN1_OCTET_STRING* value = a2i_IPADDRESS(ip.c_str());
    if (value == nullptr) {
      ERR_clear_error();
      return fail("'" + ip + "' is not an IP address");
    }
    push(GEN_IPADD, value);
  }
  if (sk_GENERAL_NAME_num(names.get()) == 0) return {};
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return openssl_fail("adding the subjectAltName extension failed");
  return {};
}

// A certificate with version 3, a random positive 127-bit serial, the validity, subject CN and
// public key set; the issuer and extensions are the caller's.
Result<X509Ptr> new_certificate(std::string_view common_name, CertTime not_before, CertTime not_after,
                                EVP_PKEY* key) {
  if (common_name.empty() || common_name.size() > 64) return fail("a certificate's CN must be 1 to 64 bytes");
  if (not_after <= not_before) return fail("a certificate's notAfter must be after its notBefore");
  X509Ptr cert{X509_new()};
  BnPtr serial{BN_new()};
  auto seconds = [](CertTime t) { return static_cast<time_t>(t.time_since_epoch().count()); };
  std::string cn(common_name);
  if (!cert || !serial || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      ASN1_TIME_set(X509_getm_notBefore(cert.get()), seconds(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), seconds(not_after)) == nullptr ||
      X509_NAME_add_entry_by_NID(X509_get_subject_name(cert.get()), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1)
    return openssl_fail("building a certificate failed");
  return cert;
}

Result<void> sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) return openssl_fail("signing a certificate failed");
  return {};
}

std::string key_pem(EVP_PKEY* key) {
  BioPtr bio{BIO_new(BIO_s_mem())};
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw FatalError("x509: writing a private key as PEM failed");
  return memory_contents(bio.get());
}

std::string certificate_pem(X509* cert) {
  BioPtr bio{BIO_new(BIO_s_mem())};
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) throw FatalError("x509: writing a certificate as PEM failed");
  return memory_contents(bio.get());
}

}  // namespace

Result<KeyAndCertificate> create_ca(std::string_view common_name, CertTime not_before, CertTime not_after) {
  auto key = generate_p256_key();
  PGC_TRY(key);
  auto cert = new_certificate(common_name, not_before, not_after, key->get());
  PGC_TRY(cert);
  X509* x = cert->get();
  if (X509_set_issuer_name(x, X509_get_subject_name(x)) != 1) return openssl_fail("setting the CA's issuer failed");
  PGC_TRY(add_extension(x, x, NID_basic_constraints, "critical,CA:TRUE"));
  PGC_TRY(add_extension(x, x, NID_key_usage, "critical,keyCertSign,cRLSign"));
  PGC_TRY(add_extension(x, x, NID_subject_key_identifier, "hash"));
  PGC_TRY(sign(x, key->get()));
  return KeyAndCertificate{key_pem(key->get()), certificate_pem(x)};
}

Result<KeyAndCertificate> issue_leaf(const KeyAndCertificate& ca, const LeafRequest& request) {
  auto ca_cert = parse_first_certificate(ca.certificate_pem);
  if (!ca_cert) return fail("the CA certificate: " + ca_cert.error().message);
  auto ca_key = parse_private_key(ca.key_pem);
  if (!ca_key) return fail("the CA key: " + ca_key.error().message);
  if (EVP_PKEY_eq(X509_get0_pubkey(ca_cert->get()), ca_key->get()) != 1) {
    ERR_clear_error();
    return fail("the CA key does not match the CA certificate");
  }
  auto key = generate_p256_key();
  PGC_TRY(key);
  auto cert = new_certificate(request.common_name, request.not_before, request.not_after, key->get());
  PGC_TRY(cert);
  X509* x = cert->get();
  X509* issuer = ca_cert->get();
  if (X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1)
    return openssl_fail("setting the certificate's issuer failed");
  PGC_TRY(add_extension(x, issuer, NID_basic_constraints, "critical,CA:FALSE"));
  PGC_TRY(add_extension(x, issuer, NID_key_usage, "critical,digitalSignature,keyAgreement"));
  PGC_TRY(add_extension(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth"));
  PGC_TRY(add_extension(x, issuer, NID_subject_key_identifier, "hash"));
  PGC_TRY(add_extension(x, issuer, NID_authority_key_identifier, "keyid:always"));
  PGC_TRY(add_alt_names(x, request));
  PGC_TRY(sign(x, ca_key->get()));
  return KeyAndCertificate{key_pem(key->get()), certificate_pem(x)};
}

Result<CertificateInfo> read_certificate(std::string_view pem) {
  auto cert = parse_first_certificate(pem);
  PGC_TRY(cert);
  return describe(cert->get());
}

Result<std::vector<CertificateInfo>> read_certificates(std::string_view pem) {
  auto certs = parse_certificates(pem);
  PGC_TRY(certs);
  std::vector<CertificateInfo> out;
  for (const auto& cert : *certs) out.push_back(describe(cert.get()));
  return out;
}

Result<void> read_private_key(std::string_view key_pem_text) {
  PGC_TRY(parse_private_key(key_pem_text));
  return {};
}

Result<void> check_key_matches(std::string_view key_pem_text, std::string_view certificate_pem_text) {
  auto cert = parse_first_certificate(certificate_pem_text);
  PGC_TRY(cert);
  auto key = parse_private_key(key_pem_text);
  PGC_TRY(key);
  int same = EVP_PKEY_eq(X509_get0_pubkey(cert->get()), key->get());
  ERR_clear_error();
  if (same != 1) return fail("the private key does not match the certificate");
  return {};
}

Result<void> verify_certificate(std::string_view certificate_pem_text, std::string_view ca_pem, CertTime at) {
  auto chain = parse_certificates(certificate_pem_text);
  PGC_TRY(chain);
  auto anchors = parse_certificates(ca_pem);
  if (!anchors) return fail("the CA: " + anchors.error().message);
  X509* leaf = chain->front().get();
  auto info = describe(leaf);
  if (at < info.not_before) return fail("the certificate is not valid before " + format_cert_time(info.not_before));
  if (at > info.not_after) return fail("the certificate expired on " + format_cert_time(info.not_after));

  StorePtr store{X509_STORE_new()};
  X509StackPtr untrusted{sk_X509_new_null()};
  StoreCtxPtr ctx{X509_STORE_CTX_new()};
  if (!store || !untrusted || !ctx) return openssl_fail("allocating a certificate store failed");
  for (const auto& anchor : *anchors)
    if (X509_STORE_add_cert(store.get(), anchor.get()) != 1) return openssl_fail("adding a CA certificate failed");
  // A CA given may be an intermediate: trust it as given, without requiring its root.
  X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN);
  for (std::size_t i = 1; i < chain->size(); ++i) {
    if (sk_X509_push(untrusted.get(), (*chain)[i].get()) <= 0) return openssl_fail("building the chain failed");
    X509_up_ref((*chain)[i].get());
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1)
    return openssl_fail("initialising certificate verification failed");
  X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(at.time_since_epoch().count()));
  if (X509_verify_cert(ctx.get()) == 1) {
    ERR_clear_error();
    return {};
  }
  int code = X509_STORE_CTX_get_error(ctx.get());
  int depth = X509_STORE_CTX_get_error_depth(ctx.get());
  ERR_clear_error();
  bool unsigned_by_ca = code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                        code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT || code == X509_V_ERR_CERT_SIGNATURE_FAILURE ||
                        code == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || code == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN;
  std::string reason = X509_verify_cert_error_string(code);
  std::string where = depth == 0 ? "the certificate" : "certificate " + std::to_string(depth + 1) + " of its chain";
  if (unsigned_by_ca)
    return fail("the certificate is not signed by the CA (issuer CN '" + info.issuer_cn + "': " + reason + ")");
  return fail(where + " does not verify: " + reason);
}

std::string format_cert_time(CertTime t) {
  using namespace std::chrono;
  auto day_start = floor<days>(t);
  year_month_day date{day_start};
  hh_mm_ss<seconds> time{t - day_start};
  char text[48];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u %02ld:%02ld:%02ld UTC", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<long>(time.hours().count()), static_cast<long>(time.minutes().count()),
                static_cast<long>(time.seconds().count()));
  return text;
}

}  // namespace pgc::providers::crypto

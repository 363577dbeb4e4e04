// libcrypto wrappers. HMAC() is one call (no context to leak); the failure paths are fatal
// because they mean a broken OpenSSL installation, not a bad input.

#include "providers/crypto/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <stdexcept>

#include "util/expected.hpp"

namespace pgc::providers::crypto {

std::string sha256(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_length = 0;
  static const unsigned char k_empty = 0;
  const auto* bytes = data.empty() ? &k_empty : reinterpret_cast<const unsigned char*>(data.data());
  if (EVP_Digest(bytes, data.size(), out, &out_length, EVP_sha256(), nullptr) != 1)
    throw FatalError("sha256: OpenSSL EVP_Digest failed");
  return std::string(reinterpret_cast<const char*>(out), out_length);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  if (key.size() > static_cast<std::size_t>(INT_MAX)) throw FatalError("hmac_sha256: key too long");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_length = 0;
  // HMAC() treats a null key pointer as "no key"; an empty view's data() may be null.
  static const unsigned char k_empty = 0;
  const auto* key_bytes = key.empty() ? &k_empty : reinterpret_cast<const unsigned char*>(key.data());
  const auto* data_bytes = data.empty() ? &k_empty : reinterpret_cast<const unsigned char*>(data.data());
  if (HMAC(EVP_sha256(), key_bytes, static_cast<int>(key.size()), data_bytes, data.size(), out, &out_length) ==
      nullptr)
    throw FatalError("hmac_sha256: OpenSSL HMAC failed");
  return std::string(reinterpret_cast<const char*>(out), out_length);
}

std::string to_hex(std::string_view bytes) {
  static constexpr char k_digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    auto b = static_cast<unsigned char>(ch);
    out += k_digits[b >> 4];
    out += k_digits[b & 0x0f];
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  std::size_t done = 0;
  // RAND_bytes takes an int count; large requests go in slices.
  while (done < n) {
    auto chunk = std::min<std::size_t>(n - done, 1 << 20);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data() + done), static_cast<int>(chunk)) != 1)
      throw FatalError("random_bytes: OpenSSL RAND_bytes failed");
    done += chunk;
  }
  return out;
}

}  // namespace pgc::providers::crypto

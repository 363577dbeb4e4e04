#pragma once
// SHA-256, HMAC, constant-time comparison and random bytes over OpenSSL's libcrypto (no OpenSSL header here).

#include <cstddef>
#include <string>
#include <string_view>

namespace pgc::providers::crypto {

// The raw 32-byte SHA-256 digest of data; thread-safe.
[[nodiscard]] std::string sha256(std::string_view data);

// The raw 32-byte HMAC-SHA256 of data under key; thread-safe.
[[nodiscard]] std::string hmac_sha256(std::string_view key, std::string_view data);

// Lower-case hexadecimal of raw bytes.
[[nodiscard]] std::string to_hex(std::string_view bytes);

// Whether a and b hold the same bytes; the time taken depends only on the lengths, never on
// where they differ (strings of different lengths are unequal without comparing content).
[[nodiscard]] bool constant_time_equal(std::string_view a, std::string_view b);

// n bytes from OpenSSL's CSPRNG; thread-safe; throws FatalError if the generator fails.
[[nodiscard]] std::string random_bytes(std::size_t n);

}  // namespace pgc::providers::crypto

// Base64 (RFC 4648): encoding with and without padding, lenient and strict decoding.
#include "util/base64.hpp"

#include <cstdint>

namespace pgc {

namespace {

constexpr std::string_view k_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Appends the 6-bit groups of in; a last partial group is completed with zero bits.
std::string encode_groups(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += k_alphabet[(n >> 18) & 63];
    out += k_alphabet[(n >> 12) & 63];
    if (i + 1 < in.size()) out += k_alphabet[(n >> 6) & 63];
    if (i + 2 < in.size()) out += k_alphabet[n & 63];
  }
  return out;
}

}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out = encode_groups(in);
  out.append((4 - out.size() % 4) % 4, '=');
  return out;
}

std::string base64_encode_unpadded(std::string_view in) { return encode_groups(in); }

std::string base64_decode(std::string_view in) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    auto pos = k_alphabet.find(c);
    if (pos == std::string_view::npos) continue;  // '=' padding and whitespace
    buffer = (buffer << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFFu);
    }
  }
  return out;
}

std::optional<std::string> base64_decode_strict(std::string_view in) {
  auto end = in.find('=');
  std::string_view body = in.substr(0, end);
  if (body.find_first_not_of(k_alphabet) != std::string_view::npos) return std::nullopt;
  return base64_decode(body);
}

}  // namespace pgc

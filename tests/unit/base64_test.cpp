// util/base64: RFC 4648's test vectors through the encoders and both decoders, and what each
// decoder does with text outside the alphabet.

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "util/base64.hpp"

namespace {

// RFC 4648 section 10.
const std::vector<std::pair<std::string, std::string>>& rfc4648_vectors() {
  static const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},             {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  return vectors;
}

std::string every_byte() {
  std::string bytes;
  for (int b = 0; b < 256; ++b) bytes += static_cast<char>(b);
  return bytes;
}

}  // namespace

TEST_CASE("base64: encodes as RFC 4648's test vectors and decodes back", "[base64]") {
  for (const auto& [plain, encoded] : rfc4648_vectors()) {
    INFO(plain);
    CHECK(pgc::base64_encode(plain) == encoded);
    CHECK(pgc::base64_decode(encoded) == plain);
    CHECK(pgc::base64_decode_strict(encoded) == plain);
  }
  const std::string bytes = every_byte();
  CHECK(pgc::base64_decode(pgc::base64_encode(bytes)) == bytes);
  CHECK(pgc::base64_decode_strict(pgc::base64_encode(bytes)) == bytes);
  CHECK(pgc::base64_encode("admin:s3:cr et") == "YWRtaW46czM6Y3IgZXQ=");
  // The two characters beyond letters and digits are '+' and '/', never '-' and '_'.
  CHECK(pgc::base64_encode("\xfb\xff") == "+/8=");
}

TEST_CASE("base64: the unpadded encoding is the padded one without '='", "[base64]") {
  for (const auto& [plain, encoded] : rfc4648_vectors()) {
    INFO(plain);
    std::string unpadded = encoded.substr(0, encoded.find('='));
    CHECK(pgc::base64_encode_unpadded(plain) == unpadded);
    CHECK(pgc::base64_decode_strict(unpadded) == plain);
  }
  // An OpenSSH SHA-256 fingerprint: 32 bytes, 43 characters.
  CHECK(pgc::base64_encode_unpadded(std::string(32, '\0')) == std::string(43, 'A'));
}

TEST_CASE("base64: the lenient decoder skips what is not base64, the strict one refuses it", "[base64]") {
  CHECK(pgc::base64_decode("Zm9v\nYmFy") == "foobar");
  CHECK(pgc::base64_decode(" Zm9vYg == ") == "foob");
  CHECK_FALSE(pgc::base64_decode_strict("Zm9v\nYmFy"));
  CHECK_FALSE(pgc::base64_decode_strict("Zm9v*"));
  CHECK_FALSE(pgc::base64_decode_strict("Zm-_"));
  // Strict decoding ends at the first '=': what follows padding is not read.
  CHECK(pgc::base64_decode_strict("Zg==garbage!") == "f");
  CHECK(pgc::base64_decode_strict("") == "");
}

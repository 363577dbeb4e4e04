// The libcrypto wrappers against published vectors.

#include <catch2/catch.hpp>

#include <string>

#include "providers/crypto/crypto.hpp"

using namespace pgc::providers::crypto;

TEST_CASE("crypto: hmac_sha256 matches RFC 4231 test case 2 and GitHub's documented example") {
  CHECK(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(to_hex(hmac_sha256("It's a Secret to Everybody", "Hello, World!")) ==
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  CHECK(hmac_sha256("", "").size() == 32);
}

TEST_CASE("crypto: sha256 matches the FIPS 180-2 examples") {
  CHECK(to_hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(to_hex(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(to_hex(sha256(std::string(1000000, 'a'))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("crypto: to_hex is lower-case and covers every byte value") {
  CHECK(to_hex(std::string("\x00\x0f\xf0\xff", 4)) == "000ff0ff");
  CHECK(to_hex("") == "");
}

TEST_CASE("crypto: constant_time_equal compares content and length") {
  CHECK(constant_time_equal("abc", "abc"));
  CHECK(constant_time_equal("", ""));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
  CHECK_FALSE(constant_time_equal("", "a"));
  CHECK(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  CHECK_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST_CASE("crypto: random_bytes returns n fresh bytes") {
  CHECK(random_bytes(0).empty());
  auto a = random_bytes(32);
  auto b = random_bytes(32);
  CHECK(a.size() == 32);
  CHECK(a != b);
}

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "util/json_pointer.hpp"

using namespace pgc;

TEST_CASE("json_pointer: a key is one token, '~' and '/' escaped as RFC 6901 says", "[json_pointer]") {
  CHECK(pointer_token("ttl") == "ttl");
  CHECK(pointer_token("postgresql/parameters/archive_command") == "postgresql~1parameters~1archive_command");
  CHECK(pointer_token("a~b") == "a~0b");
  CHECK(pointer_token("~1") == "~01");  // '~' first: "~1" stays the two characters, not a '/'
  CHECK(pointer_token("/~/") == "~1~0~1");
  CHECK(pointer_append("", "a/b") == "/a~1b");
  CHECK(pointer_append("/postgresql", "pg_stat_statements.max") == "/postgresql/pg_stat_statements.max");
}

TEST_CASE("json_pointer: every key built into a pointer reads back as that one key", "[json_pointer]") {
  // Generated: every separator a pointer or a path knows, alone, doubled and around words.
  const std::vector<std::string> pieces{"/", "~", "~0", "~1", "//", "~~", ".", "\\", "%2F", "", "postgresql", "x"};
  for (const auto& a : pieces)
    for (const auto& b : pieces)
      for (const auto& c : pieces) {
        const std::string key = a + b + c;
        // The empty key is nlohmann's own edge ("/" does not create a "" member of null); no
        // DCS key is empty (dynamicConfig's allowlist), so it is left out here.
        if (key.empty()) continue;
        nlohmann::json doc;
        const std::string pointer = pointer_append("", key);
        REQUIRE_NOTHROW(doc[nlohmann::json::json_pointer(pointer)] = 1);
        INFO("key " << key << " pointer " << pointer);
        CHECK(doc.is_object());
        CHECK(doc.size() == 1);
        CHECK(doc.contains(key));
      }
}

TEST_CASE("json_pointer: dotted text for messages unescapes each token", "[json_pointer]") {
  CHECK(pointer_dotted("/ttl") == "ttl");
  CHECK(pointer_dotted("/postgresql/parameters/work_mem") == "postgresql.parameters.work_mem");
  CHECK(pointer_dotted("/a~1b/c~0d") == "a/b.c~d");
  CHECK(pointer_dotted("") == "");
}

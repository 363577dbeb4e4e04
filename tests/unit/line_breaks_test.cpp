#include <catch2/catch.hpp>

#include "util/line_breaks.hpp"
#include "util/source_location.hpp"

using namespace pgc;

namespace {

// Every character that ends a line in PyYAML, PostgreSQL's or PgBouncer's parsers, or a C string.
const std::vector<std::pair<std::string, std::string>>& breaks() {
  static const std::vector<std::pair<std::string, std::string>> all{
      {"\n", "a newline (LF)"},
      {"\r", "a carriage return (CR)"},
      {"\v", "a vertical tab (VT)"},
      {"\f", "a form feed (FF)"},
      {std::string(1, '\0'), "a NUL byte"},
      {"\t", "a tab"},
      {"\x1b", "a control character (\\x1b)"},
      {"\x7f", "a control character (\\x7f)"},
      {"\xc2\x85", "U+0085 NEXT LINE (NEL)"},
      {"\xc2\x80", "a C1 control character (U+0080)"},
      {"\xc2\x9f", "a C1 control character (U+009f)"},
      {"\xe2\x80\xa8", "U+2028 LINE SEPARATOR"},
      {"\xe2\x80\xa9", "U+2029 PARAGRAPH SEPARATOR"},
  };
  return all;
}

}  // namespace

TEST_CASE("line_breaks: plain text and ordinary Unicode have none", "[line_breaks]") {
  CHECK_FALSE(find_line_break(""));
  CHECK_FALSE(find_line_break("shared_buffers = '128MB' # comment"));
  CHECK_FALSE(find_line_break("caf\xc3\xa9 \xe2\x80\xa6 \xe2\x82\xac \xc2\xa0"));  // é … € NBSP
  CHECK_FALSE(find_line_break("\xe2\x80\xa7"));                                   // U+2027, next to U+2028
}

TEST_CASE("line_breaks: every break is found at every position, named, with its length", "[line_breaks]") {
  for (const auto& [text, name] : breaks()) {
    for (const std::string& before : {std::string(), std::string("a"), std::string("work_mem = 8MB"),
                                      std::string("caf\xc3\xa9")}) {
      for (const std::string& after : {std::string(), std::string("b"), std::string("\nlisten_addresses = '*'")}) {
        const std::string value = before + text + after;
        auto found = find_line_break(value);
        INFO("break " << name << " after " << before.size() << " bytes");
        REQUIRE(found);
        CHECK(found->offset == before.size());
        CHECK(found->length == text.size());
        CHECK(found->name == name);
      }
    }
  }
}

TEST_CASE("line_breaks: the message names the character and its byte", "[line_breaks]") {
  auto found = find_line_break("ab\xe2\x80\xa8");
  REQUIRE(found);
  CHECK(line_break_message(*found) == "must not contain line breaks or control characters (found U+2028 LINE "
                                      "SEPARATOR at byte 2)");
}

TEST_CASE("line_breaks: a diagnostic holding any of them prints as one line", "[line_breaks]") {
  for (const auto& [text, name] : breaks()) {
    Diagnostic d{Severity::error, SourceLocation{"f.yaml", 3, 5}, "spec.x", "got \"a" + text + "b\""};
    const std::string printed = d.str();
    INFO(name);
    CHECK(printed.starts_with("f.yaml:3:5: spec.x: got \"a\\"));
    CHECK_FALSE(find_line_break(printed));
  }
  Diagnostic d{Severity::error, SourceLocation{"f.yaml", 1, 1}, "", "\xe2\x80\xa8|\xe2\x80\xa9|\xc2\x85"};
  CHECK(d.str() == "f.yaml:1:1: \\u2028|\\u2029|\\u0085");
}

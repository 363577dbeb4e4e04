// util/strings: joining, splitting, trimming, shell quoting (checked by the local sh, which is
// what sshd hands a command line to), edit distance and "did you mean".

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/shell_output.hpp"
#include "util/strings.hpp"

using pgc::shell_quote;

namespace {

// What `sh -c 'printf %s <word>'` prints: the word as the shell received it.
std::string through_sh(const std::string& quoted) { return pgc::test::shell_output("printf %s " + quoted); }

}  // namespace

TEST_CASE("strings: shell_quote leaves plain words alone and single-quotes everything else", "[strings]") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"patroni@15-main", "patroni@15-main"},
      {"/etc/patroni/15-main.yml", "/etc/patroni/15-main.yml"},
      {"a=b,c+d:e", "a=b,c+d:e"},
      {"", "''"},
      {"a b", "'a b'"},
      {"it's", "'it'\\''s'"},
      {"'", "''\\'''"},
      {"$(touch /tmp/x)", "'$(touch /tmp/x)'"},
      {"`id`", "'`id`'"},
      {"\"$HOME\"", "'\"$HOME\"'"},
      {"a;b", "'a;b'"},
      {"a && b", "'a && b'"},
      {"a|b", "'a|b'"},
      {"*.yml", "'*.yml'"},
      {"[ab]?", "'[ab]?'"},
      {"~root", "'~root'"},
      {"x\ny", "'x\ny'"},
      {"\\", "'\\'"},
      {"é", "'é'"},
      {"-n", "-n"},
  };
  for (const auto& [word, quoted] : cases) {
    INFO(word);
    CHECK(shell_quote(word) == quoted);
  }
}

TEST_CASE("strings: every quoted byte reaches sh unchanged", "[strings]") {
  // Each byte but NUL (which no C string carries), alone, doubled and between letters.
  for (int b = 1; b < 256; ++b) {
    const std::string c(1, static_cast<char>(b));
    for (const std::string& word : {c, c + c, "a" + c + "b"}) {
      INFO("byte " << b);
      CHECK(through_sh(shell_quote(word)) == word);
    }
  }
  const std::string mixed = "$(printf pwned) `printf pwned` ${IFS} $((6*7)) 'a'\"b\" ; | && * ? [x] ~ \n é 日本";
  CHECK(through_sh(shell_quote(mixed)) == mixed);
}

TEST_CASE("strings: join, split and trim", "[strings]") {
  CHECK(pgc::join({"a", "b", "c"}, ", ") == "a, b, c");
  CHECK(pgc::join_or({"a", "b", "c"}) == "a, b or c");
  CHECK(pgc::split("a,,b", ',') == std::vector<std::string>{"a", "", "b"});
  CHECK(pgc::trim("  a b \n") == "a b");
}

TEST_CASE("strings: lower changes ASCII letters only", "[strings]") {
  CHECK(pgc::lower("Max_Connections") == "max_connections");
  CHECK(pgc::lower("ABC xyz 123 _-.") == "abc xyz 123 _-.");
  CHECK(pgc::lower("\xc3\x89T\xc3\x89") == "\xc3\x89t\xc3\x89");  // "ÉTÉ": UTF-8 bytes pass through
  CHECK(pgc::lower("") == "");
}

#pragma once
// Words a manifest value could hold, each of which a shell would act on if it reached one
// unquoted: command substitution, quotes, separators, redirections, globs, expansions, control
// and non-ASCII bytes (also invalid UTF-8). Every payload that would run something creates
// marker, so "nothing ran" is checked by its absence. Shared by the unit tests (quoting, local
// shells) and the integration tests (through a real sshd).

#include <string>
#include <vector>

namespace pgc::test {

inline std::vector<std::string> hostile_words(const std::string& marker) {
  const std::string touch = "touch " + marker;
  return {"a b", "", "'", "''", "\"", "\"\"", "$(" + touch + ")", "`" + touch + "`", "\"$(" + touch + ")\"",
          "'$(" + touch + ")'", "\\$(" + touch + ")", "x\ny", "\n", "\n" + touch, "; " + touch, "&& " + touch,
          "|| " + touch, "| " + touch, "& " + touch, ">" + marker, ">>" + marker, "2>" + marker, "<(" + touch + ")",
          "*", "?", "[a]", "[!a]*", "/*", "{a,b}", "-n", "--", "-", "\\", "\\'", "~", "~root", "~+", "$HOME",
          "${HOME}", "${IFS}", "$((1+1))", "$'\\x41'", "$0", "$@", "a'b\"c'd", "\t", "\r", "\x1b[31m", "#comment",
          "!", "!!", "%s", "a=b", "é 日本 🐘", "\xff\xfe", std::string(300, '\'')};
}

}  // namespace pgc::test

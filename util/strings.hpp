#pragma once
// String helpers: joining, shell quoting, edit distance for "did you mean".

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgc {

// Joins parts with sep.
std::string join(const std::vector<std::string>& parts, std::string_view sep);

// "a, b or c" — for messages listing allowed values.
std::string join_or(const std::vector<std::string>& parts);

// Splits on a single character; keeps empty fields.
std::vector<std::string> split(std::string_view text, char sep);

// Removes leading and trailing whitespace.
std::string trim(std::string_view text);

bool starts_with(std::string_view text, std::string_view prefix);

// ASCII letters in lower case, every other byte unchanged (UTF-8 passes through): what
// PostgreSQL, PgBouncer and HTTP compare names case-insensitively with, and never
// locale-dependent.
std::string lower(std::string_view text);

// Quotes a word for POSIX sh so that it is always passed as one literal argument.
// Every value that reaches a remote shell goes through this.
std::string shell_quote(std::string_view word);

// Levenshtein distance between a and b.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to word if it is close enough to be a likely typo
// (distance ≤ max(1, |word|/3)), for "did you mean" hints.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

// The placeholder printed instead of any secret.
inline constexpr std::string_view k_redacted = "<redacted>";

// strerror(errno): call it before anything that may set errno again.
std::string errno_text();

}  // namespace pgc

#pragma once
// pgbouncer.ini read back the way PgBouncer 1.18 reads it (libusual's cfparser: a line is a
// comment, a %directive, a [section] or key = value with the key a run of [A-Za-z0-9_.*-] and the
// value up to the newline, trailing space dropped). The renderer checks its own output with it:
// what PgBouncer would read must be exactly the entries meant, and the keys pgconverge owns must
// hold pgconverge's values — whatever a manifest managed to put into a line.

#include <stdexcept>  // util/expected.hpp uses std::runtime_error without including it
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.hpp"

namespace pgc::reconciler {

struct IniEntry {
  std::string section;
  std::string key;
  std::string value;
  bool operator==(const IniEntry&) const = default;
};

// Every entry of text in order, or why PgBouncer would not read it as entries (a %include or
// other directive, a key outside the grammar, a line without '=', an unclosed section).
Result<std::vector<IniEntry>> parse_pgbouncer_ini(std::string_view text);

// Fails unless text parses to exactly intended (same sections, keys and values in the same order)
// and every key of owned (a [pgbouncer] key, lower case → pgconverge's value) appears once,
// compared case-insensitively as PgBouncer does, with that value, and no forbidden key (lower
// case) appears at all.
Result<void> check_pgbouncer_ini(std::string_view text, const std::vector<IniEntry>& intended,
                                 const std::vector<std::pair<std::string, std::string>>& owned,
                                 const std::vector<std::string>& forbidden);

}  // namespace pgc::reconciler

#pragma once
// Durations as people write and read them: "90s", "1m30s", "250ms" in configuration, "1.5s"
// and "250ms" in messages. Pure functions, thread-safe.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pgc {

// "5s", "1.5s", "1.001s", "250ms", "0ms": whole seconds plainly, a fraction of a second with
// its trailing zeros dropped, under a second in milliseconds. Also timeout(1)'s argument
// syntax for every value of a second or more.
std::string format_duration(std::chrono::milliseconds d);

// A sequence of <digits><unit> with units ms, s, m and h ("90s", "1m30s", "1h", "0s"), each
// number at most 9 digits. nullopt for anything else: empty text, a sign, a space, a
// fraction, a missing or unknown unit, or a total beyond what milliseconds hold.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace pgc

// Durations: the message format ("1.5s", "250ms") and the configuration syntax ("1m30s").
#include "util/duration.hpp"

#include <limits>

namespace pgc {

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  std::string s = std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 + 1000).substr(1);
  while (s.back() == '0') s.pop_back();
  return s + "s";
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  constexpr long long k_max = std::numeric_limits<std::chrono::milliseconds::rep>::max();
  long long total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    long long n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') n = n * 10 + (text[i++] - '0');
    if (i == start || i - start > 9) return std::nullopt;  // 9 digits: n cannot overflow
    std::size_t unit_start = i;
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z'))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    long long scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60'000 : unit == "h" ? 3'600'000 : 0;
    if (scale == 0) return std::nullopt;
    // n * scale fits (at most 1e9 * 3.6e6); the sum is checked before it could wrap.
    if (n * scale > k_max - total) return std::nullopt;
    total += n * scale;
  }
  return std::chrono::milliseconds(total);
}

}  // namespace pgc

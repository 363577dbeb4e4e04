#include "reconciler/pgbouncer_ini.hpp"

#include <algorithm>

namespace pgc::reconciler {

namespace {

// C isspace(): libusual skips it at the start of a line and drops it at the end of a value.
bool is_c_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '*' || c == '-';
}

std::string lower_key(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string where(std::size_t line) { return "pgbouncer.ini line " + std::to_string(line); }

}  // namespace

Result<std::vector<IniEntry>> parse_pgbouncer_ini(std::string_view text) {
  std::vector<IniEntry> out;
  std::string section;
  std::size_t number = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++number;
    std::size_t i = 0;
    while (i < line.size() && is_c_space(line[i])) ++i;
    line.remove_prefix(i);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '%') return fail(where(number) + " is a directive (" + std::string(line.substr(0, 16)) + ")");
    if (line.front() == '[') {
      auto close = line.find(']');
      if (close == std::string_view::npos) return fail(where(number) + " opens a section without closing it");
      section = lower_key(line.substr(1, close - 1));
      continue;
    }
    std::size_t k = 0;
    while (k < line.size() && is_key_char(line[k])) ++k;
    if (k == 0) return fail(where(number) + " starts with a character outside PgBouncer's key grammar");
    IniEntry entry{section, std::string(line.substr(0, k)), ""};
    while (k < line.size() && (line[k] == ' ' || line[k] == '\t')) ++k;
    if (k >= line.size() || line[k] != '=') return fail(where(number) + ": key " + entry.key + " is not followed by '='");
    ++k;
    while (k < line.size() && (line[k] == ' ' || line[k] == '\t')) ++k;
    std::string_view value = line.substr(k);
    while (!value.empty() && is_c_space(value.back())) value.remove_suffix(1);
    entry.value = std::string(value);
    out.push_back(std::move(entry));
  }
  return out;
}

Result<void> check_pgbouncer_ini(std::string_view text, const std::vector<IniEntry>& intended,
                                 const std::vector<std::pair<std::string, std::string>>& owned,
                                 const std::vector<std::string>& forbidden) {
  auto parsed = parse_pgbouncer_ini(text);
  if (!parsed) return fail(parsed.error().message);
  if (parsed->size() != intended.size())
    return fail("pgbouncer.ini reads back as " + std::to_string(parsed->size()) + " entries, " +
                std::to_string(intended.size()) + " were written");
  for (std::size_t i = 0; i < intended.size(); ++i)
    if ((*parsed)[i] != intended[i])
      return fail("pgbouncer.ini entry " + std::to_string(i + 1) + " reads back as [" + (*parsed)[i].section + "] " +
                  (*parsed)[i].key + ", not as written ([" + intended[i].section + "] " + intended[i].key + ")");
  // Not a structured binding: clang++ 14 (the fuzz build) cannot capture one in a lambda.
  for (const auto& entry : owned) {
    const std::string& key = entry.first;
    const std::string& value = entry.second;
    auto count = std::count_if(parsed->begin(), parsed->end(), [&](const IniEntry& e) {
      return e.section == "pgbouncer" && lower_key(e.key) == key;
    });
    auto it = std::find_if(parsed->begin(), parsed->end(),
                           [&](const IniEntry& e) { return e.section == "pgbouncer" && lower_key(e.key) == key; });
    if (count != 1 || it->value != value)
      return fail("pgbouncer.ini: " + key + " must appear once in [pgbouncer] with pgconverge's value (found " +
                  std::to_string(count) + ")");
  }
  for (const auto& e : *parsed) {
    if (e.section != "pgbouncer") continue;
    const std::string key = lower_key(e.key);
    if (std::find(forbidden.begin(), forbidden.end(), key) == forbidden.end()) continue;
    bool ours = std::any_of(owned.begin(), owned.end(), [&](const auto& o) { return o.first == key; });
    if (!ours) return fail("pgbouncer.ini sets " + key + ", which only pgconverge may set");
  }
  return {};
}

}  // namespace pgc::reconciler

#include "manifests/model.hpp"

#include <algorithm>
#include <string_view>

namespace pgc::manifests {

SourceLocation FieldLocations::at(const std::string& path) const {
  std::string p = path;
  while (true) {
    if (auto it = by_path_.find(p); it != by_path_.end()) return it->second;
    if (p.empty()) return {};
    auto cut = p.find_last_of(".[");
    p = cut == std::string::npos ? std::string() : p.substr(0, cut);
  }
}

const std::vector<std::string>& replication_mode_names() {
  static const std::vector<std::string> names{"async", "sync", "strict-sync", "sync-all",
                                              "strict-sync-all"};
  return names;
}

const std::vector<std::string>& role_names() {
  static const std::vector<std::string> names{"ha-read", "ha", "readonly", "none"};
  return names;
}

std::string to_string(ReplicationMode mode) {
  return replication_mode_names().at(static_cast<std::size_t>(mode));
}

std::string to_string(Role role) { return role_names().at(static_cast<std::size_t>(role)); }

std::optional<ReplicationMode> parse_replication_mode(const std::string& text) {
  const auto& names = replication_mode_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == text) return static_cast<ReplicationMode>(i);
  return std::nullopt;
}

std::optional<Role> parse_role(const std::string& text) {
  const auto& names = role_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == text) return static_cast<Role>(i);
  return std::nullopt;
}

bool is_strict(ReplicationMode mode) {
  return mode == ReplicationMode::strict_sync || mode == ReplicationMode::strict_sync_all;
}

const std::vector<int>& known_postgres_majors() {
  static const std::vector<int> majors{12, 13, 14, 15, 16, 17};
  return majors;
}

std::optional<int> postgres_major(const std::string& version) {
  auto digits = [](std::string_view text) {
    return !text.empty() && text.size() <= 4 &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  std::string_view text(version);
  auto dot = text.find('.');
  std::string_view major = text.substr(0, dot);
  if (!digits(major)) return std::nullopt;
  if (dot != std::string_view::npos && !digits(text.substr(dot + 1))) return std::nullopt;
  return std::stoi(std::string(major));
}

bool is_all(ReplicationMode mode) {
  return mode == ReplicationMode::sync_all || mode == ReplicationMode::strict_sync_all;
}

const Host* ManifestSet::find_host(const std::string& name) const {
  for (const auto& h : hosts)
    if (h.metadata.name == name) return &h;
  return nullptr;
}

namespace {

// One "<digits>[.digits]<unit>" of an ISO 8601 duration at text[pos]: the number (fraction
// dropped) and its unit; nullopt when there is none or it is malformed.
struct DurationPart {
  long long value = 0;
  char unit = 0;
  bool fraction = false;
};
std::optional<DurationPart> duration_part(std::string_view text, std::size_t& pos) {
  DurationPart part;
  std::size_t start = pos;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    if (pos - start >= 9) return std::nullopt;
    part.value = part.value * 10 + (text[pos++] - '0');
  }
  if (pos == start) return std::nullopt;
  if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
    std::size_t fraction_start = ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == fraction_start) return std::nullopt;
    part.fraction = true;
  }
  if (pos == text.size()) return std::nullopt;
  part.unit = text[pos++];
  return part;
}

}  // namespace

std::optional<long long> parse_iso8601_duration(const std::string& text) {
  constexpr long long day = 24 * 3600;
  std::string_view rest(text);
  if (rest.size() < 3 || rest[0] != 'P') return std::nullopt;
  std::size_t pos = 1;
  bool in_time = false;
  std::string_view units = "YMWD";  // what may still come, in order
  long long total = 0;
  while (pos < rest.size()) {
    if (rest[pos] == 'T') {
      if (in_time || pos + 1 == rest.size()) return std::nullopt;
      in_time = true;
      units = "HMS";
      ++pos;
      continue;
    }
    auto part = duration_part(rest, pos);
    auto unit_at = part ? units.find(part->unit) : std::string_view::npos;
    if (unit_at == std::string_view::npos || (part->fraction && part->unit != 'S')) return std::nullopt;
    units = units.substr(unit_at + 1);
    static const std::string_view date_units = "YMWD", time_units = "HMS";
    static constexpr long long date_seconds[] = {365 * day, 30 * day, 7 * day, day};
    static constexpr long long time_seconds[] = {3600, 60, 1};
    long long unit_seconds = in_time ? time_seconds[time_units.find(part->unit)]
                                     : date_seconds[date_units.find(part->unit)];
    total += part->value * unit_seconds;
  }
  if (total <= 0 || total > 100 * 365 * day) return std::nullopt;
  return total;
}

}  // namespace pgc::manifests

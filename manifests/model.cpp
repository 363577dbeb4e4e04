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

}  // namespace pgc::manifests

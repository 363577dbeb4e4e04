#include "manifests/pool_roles.hpp"

#include <algorithm>
#include <cctype>

namespace pgc::manifests {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool blank(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// A role name as a pool entry may spell it: 'quoted', "quoted", surrounded by spaces.
std::string bare(std::string_view name) {
  std::string s(name);
  while (!s.empty() && blank(s.front())) s.erase(s.begin());
  while (!s.empty() && blank(s.back())) s.pop_back();
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) s = s.substr(1, s.size() - 2);
  return lower(s);
}

}  // namespace

const std::vector<std::string>& pgconverge_roles() {
  static const std::vector<std::string> roles{"postgres",   "replicator",      "rewind_user",    "authenticator",
                                              "prometheus", "pgbouncer_admin", "pgbouncer_stats"};
  return roles;
}

bool is_pgconverge_role(std::string_view name) {
  auto b = bare(name);
  return std::find(pgconverge_roles().begin(), pgconverge_roles().end(), b) != pgconverge_roles().end();
}

std::optional<std::vector<std::pair<std::string, std::string>>> pgbouncer_connstring(std::string_view value) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  auto skip = [&] {
    while (i < value.size() && blank(value[i])) ++i;
  };
  while (true) {
    skip();
    if (i >= value.size()) return out;
    std::size_t k = i;
    while (i < value.size() && value[i] != '=' && !blank(value[i])) ++i;
    std::string key = lower(value.substr(k, i - k));
    skip();
    if (i >= value.size() || value[i] != '=') {
      out.emplace_back(key, "");
      continue;
    }
    ++i;
    skip();
    std::string v;
    if (i < value.size() && (value[i] == '\'' || value[i] == '"')) {
      char quote = value[i++];
      bool closed = false;
      while (i < value.size()) {
        if (value[i] == '\\' && i + 1 < value.size()) {
          v += value[i + 1];
          i += 2;
        } else if (value[i] == quote && i + 1 < value.size() && value[i + 1] == quote) {
          v += quote;
          i += 2;
        } else if (value[i] == quote) {
          ++i;
          closed = true;
          break;
        } else {
          v += value[i++];
        }
      }
      if (!closed) return std::nullopt;
    } else {
      std::size_t s = i;
      while (i < value.size() && !blank(value[i])) ++i;
      v = std::string(value.substr(s, i - s));
    }
    out.emplace_back(key, v);
  }
}

std::optional<std::string> pool_entry_problem(std::string_view value) {
  auto pairs = pgbouncer_connstring(value);
  if (!pairs) return "cannot be read as PgBouncer's key=value list (an unterminated quote)";
  for (const auto& [key, v] : *pairs) {
    if ((key == "user" || key == "auth_user") && is_pgconverge_role(v))
      return key + "=" + v + " names a role pgconverge itself uses (" + bare(v) +
             "); a pool may not log in as it or look passwords up through it";
  }
  return std::nullopt;
}

}  // namespace pgc::manifests

#include "manifests/pool_roles.hpp"

#include <algorithm>
#include <cctype>

#include "util/strings.hpp"

namespace pgc::manifests {
namespace {

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

}  // namespace pgc::manifests

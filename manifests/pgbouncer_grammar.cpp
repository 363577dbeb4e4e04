#include "manifests/pgbouncer_grammar.hpp"

#include <algorithm>

#include "manifests/schema.hpp"
#include "util/strings.hpp"

namespace pgc::manifests {

namespace {

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

// PgBouncer 1.18's per-database and per-user options (pgbouncer.ini(5), "Section [databases]",
// "Section [users]"), without the ones pgconverge refuses.
const std::vector<std::string>& database_options() {
  static const std::vector<std::string> names{"dbname",       "host",           "port",       "pool_size",
                                              "min_pool_size", "reserve_pool",  "connect_query", "pool_mode",
                                              "max_db_connections", "client_encoding", "datestyle", "timezone"};
  return names;
}
const std::vector<std::string>& user_options() {
  static const std::vector<std::string> names{"pool_mode", "max_user_connections"};
  return names;
}

}  // namespace

bool is_pgbouncer_key(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return is_word_char(c) || c == '.' || c == '*' || c == '-';
  });
}

std::string quote_connection_value(std::string_view value) {
  bool plain = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return c != '\'' && c != '"' && c != '\\' && !is_space(c) && c != '=';
  });
  if (plain) return std::string(value);
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::expected<std::vector<std::pair<std::string, std::string>>, std::string> parse_connection_options(
    std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && is_space(text[i])) ++i;
  };
  skip_space();
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && is_word_char(text[i])) ++i;
    std::string key(text.substr(start, i - start));
    if (key.empty()) return std::unexpected("expected an option name at \"" + std::string(text.substr(start)) + "\"");
    skip_space();
    if (i >= text.size() || text[i] != '=') return std::unexpected("expected '=' after " + key);
    ++i;
    skip_space();
    std::string value;
    if (i < text.size() && text[i] == '\'') {
      ++i;
      for (;;) {
        if (i >= text.size()) return std::unexpected("unterminated quoted value of " + key);
        if (text[i] == '\'') {
          if (i + 1 < text.size() && text[i + 1] == '\'') {
            value += '\'';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        value += text[i++];
      }
    } else {
      while (i < text.size() && !is_space(text[i])) {
        if (text[i] == '\'' || text[i] == '"' || text[i] == '\\' || text[i] == '=')
          return std::unexpected("a quote, backslash or '=' in the value of " + key + " must be quoted ('...')");
        value += text[i++];
      }
    }
    out.emplace_back(std::move(key), std::move(value));
    skip_space();
  }
  return out;
}

std::optional<std::string> entry_problem(EntrySection section, std::string_view value) {
  auto options = parse_connection_options(value);
  if (!options) return "is not a PgBouncer connection string (" + options.error() + ")";
  const auto& known = section == EntrySection::databases ? database_options() : user_options();
  for (const auto& [key, option] : *options) {
    if (key == "auth_user" || key == "user" || key == "password")
      return "option " + key + " is refused: PgBouncer logs in as each client's own role, authenticated by pgconverge's "
             "auth_user and auth_query";
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string message = "unknown option " + key + " (known: " + join(known, ", ") + ")";
      if (auto hint = did_you_mean(key, known)) message += " (did you mean '" + *hint + "'?)";
      return message;
    }
    if (key == "host" && !option.empty() && option.front() == '/' && option != "/var/run/postgresql")
      return "option host must be a host name, an address or /var/run/postgresql (got \"" + option + "\")";
  }
  return std::nullopt;
}

}  // namespace pgc::manifests

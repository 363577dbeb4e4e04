#include "reconciler/redact.hpp"

#include <algorithm>
#include <cctype>

#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

char lower_char(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }
bool space(char c) { return c == ' ' || c == '\t'; }

// Replaces every occurrence of needle in text.
void replace_all(std::string& text, const std::string& needle) {
  if (needle.empty()) return;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + k_redacted.size()))
    text.replace(pos, needle.size(), k_redacted);
}

// Where the value that starts at begin ends: a quoted value at its closing quote (backslash
// escapes skipped), else at white space or a separator.
std::size_t value_end(const std::string& text, std::size_t begin) {
  if (begin >= text.size()) return begin;
  char quote = text[begin];
  if (quote == '\'' || quote == '"') {
    for (std::size_t i = begin + 1; i < text.size(); ++i) {
      if (text[i] == '\\') { ++i; continue; }
      if (text[i] == quote) return i + 1;
    }
    return text.size();
  }
  std::size_t i = begin;
  while (i < text.size() && !space(text[i]) && text[i] != ',' && text[i] != '}' && text[i] != ']' &&
         text[i] != '&' && text[i] != '\n' && text[i] != '\r' && text[i] != ';')
    ++i;
  return i;
}

// password=VALUE, password = 'VALUE', "password": "VALUE", sslpassword=VALUE …
void redact_password_values(std::string& text) {
  static const std::string key = "password";
  for (std::size_t pos = 0; pos + key.size() <= text.size();) {
    bool match = true;
    for (std::size_t j = 0; j < key.size() && match; ++j) match = lower_char(text[pos + j]) == key[j];
    if (!match) {
      ++pos;
      continue;
    }
    std::size_t i = pos + key.size();
    if (i < text.size() && (text[i] == '"' || text[i] == '\'')) ++i;  // "password": …
    while (i < text.size() && space(text[i])) ++i;
    if (i >= text.size() || (text[i] != '=' && text[i] != ':')) {
      pos = i > pos ? i : pos + 1;
      continue;
    }
    ++i;
    while (i < text.size() && space(text[i])) ++i;
    std::size_t end = value_end(text, i);
    if (end > i && text.compare(i, end - i, k_redacted) != 0) text.replace(i, end - i, k_redacted);
    pos = i + k_redacted.size();
  }
}

// scheme://user:PASSWORD@host
void redact_url_passwords(std::string& text) {
  for (auto scheme = text.find("://"); scheme != std::string::npos; scheme = text.find("://", scheme + 3)) {
    std::size_t start = scheme + 3;
    std::size_t stop = start;
    while (stop < text.size() && text[stop] != '/' && text[stop] != '@' && !space(text[stop]) && text[stop] != '\n')
      ++stop;
    if (stop >= text.size() || text[stop] != '@') continue;
    auto colon = text.find(':', start);
    if (colon == std::string::npos || colon >= stop) continue;
    text.replace(colon + 1, stop - colon - 1, k_redacted);
  }
}

void redact_in_place(std::string& text, const ClusterSecrets* secrets) { text = redact_text(text, secrets); }

void redact_change(Change& c, const ClusterSecrets* secrets) {
  for (auto* s : {&c.subject, &c.before, &c.after, &c.reason}) redact_in_place(*s, secrets);
  for (auto& f : c.fields)
    for (auto* s : {&f.key, &f.before, &f.after}) redact_in_place(*s, secrets);
}

}  // namespace

std::string redact_text(std::string_view text, const ClusterSecrets* secrets) {
  std::string out(text);
  if (secrets)
    for (const auto& [kind, value] : secrets->values) replace_all(out, value);
  redact_password_values(out);
  redact_url_passwords(out);
  return out;
}

void redact_plan(Plan& plan, const std::map<std::string, ClusterSecrets>& secrets) {
  // Host changes and errors belong to no cluster: every cluster's secrets are looked for.
  auto everywhere = [&](std::string& text) {
    for (const auto& [name, s] : secrets) redact_in_place(text, &s);
    redact_in_place(text, nullptr);
  };
  for (auto& c : plan.host_changes) {
    for (auto* s : {&c.subject, &c.before, &c.after, &c.reason}) everywhere(*s);
    for (auto& f : c.fields)
      for (auto* s : {&f.key, &f.before, &f.after}) everywhere(*s);
  }
  for (auto& e : plan.host_errors) everywhere(e);
  for (auto& cp : plan.clusters) {
    auto it = secrets.find(cp.name);
    const ClusterSecrets* s = it == secrets.end() ? nullptr : &it->second;
    for (auto& c : cp.changes) redact_change(c, s);
    for (auto& e : cp.errors) redact_in_place(e, s);
    for (auto& w : cp.warnings) redact_in_place(w, s);
  }
}

}  // namespace pgc::reconciler

#include "util/url_userinfo.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>

namespace pgc {
namespace {

constexpr std::string_view k_ssh_schemes[] = {"ssh://", "ssh+git://", "git+ssh://"};

bool is_ssh_scheme(std::string_view url) {
  return std::any_of(std::begin(k_ssh_schemes), std::end(k_ssh_schemes),
                     [&](std::string_view s) { return url.starts_with(s); });
}

// Where the authority of url ends: the first '/', '?' or '#' after begin (or a character that
// cannot be part of a URL in running text).
std::size_t authority_end(std::string_view url, std::size_t begin) {
  for (std::size_t i = begin; i < url.size(); ++i) {
    char c = url[i];
    if (c == '/' || c == '?' || c == '#' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' ||
        c == '\'' || c == '<' || c == '>' || c == ',')
      return i;
  }
  return url.size();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

UrlUserinfo split_url_userinfo(std::string_view url) {
  UrlUserinfo out;
  out.url = std::string(url);
  out.bare = out.url;
  out.shown = out.url;
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return out;
  out.ssh = is_ssh_scheme(url);
  const std::size_t begin = scheme_end + 3;
  const std::size_t end = authority_end(url, begin);
  const auto authority = url.substr(begin, end - begin);
  const auto at = authority.rfind('@');
  if (at == std::string_view::npos) return out;
  const auto userinfo = authority.substr(0, at);
  const auto colon = userinfo.find(':');
  out.user = percent_decode(userinfo.substr(0, colon));
  if (colon != std::string_view::npos) {
    out.has_password = true;
    out.password = percent_decode(userinfo.substr(colon + 1));
  }
  std::string kept = out.ssh && !userinfo.substr(0, colon).empty()
                         ? std::string(userinfo.substr(0, colon)) + "@"
                         : std::string();
  out.bare = std::string(url.substr(0, begin)) + kept + std::string(url.substr(begin + at + 1));
  out.shown = out.bare;
  return out;
}

std::vector<std::string> UrlUserinfo::secrets() const {
  std::vector<std::string> out;
  auto scheme_end = url.find("://");
  if (scheme_end != std::string::npos) {
    const std::size_t begin = scheme_end + 3;
    const auto authority = std::string_view(url).substr(begin, authority_end(url, begin) - begin);
    const auto at = authority.rfind('@');
    if (at != std::string_view::npos) {
      const auto userinfo = authority.substr(0, at);
      const auto colon = userinfo.find(':');
      if (!ssh) {
        out.emplace_back(userinfo);
        out.emplace_back(userinfo.substr(0, colon));
        out.push_back(user);
      }
      if (colon != std::string_view::npos) {
        out.emplace_back(userinfo.substr(colon + 1));
        out.push_back(password);
      }
    }
  }
  std::erase_if(out, [](const std::string& s) { return s.empty(); });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string redact_url(std::string_view url) { return split_url_userinfo(url).shown; }

std::string redact_urls_in(std::string_view text) {
  std::string out;
  std::size_t done = 0;
  for (auto mark = text.find("://"); mark != std::string_view::npos; mark = text.find("://", mark + 3)) {
    std::size_t start = mark;
    while (start > done && (std::isalnum(static_cast<unsigned char>(text[start - 1])) || text[start - 1] == '+' ||
                            text[start - 1] == '-' || text[start - 1] == '.'))
      --start;
    if (start == mark) continue;  // no scheme
    const std::size_t end = authority_end(text, mark + 3);
    out += text.substr(done, start - done);
    out += redact_url(text.substr(start, end - start));
    done = end;
    mark = end > 3 ? end - 3 : end;
  }
  out += text.substr(done);
  return out;
}

std::string scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
      text.replace(at, secret.size(), "***");
  }
  return text;
}

}  // namespace pgc

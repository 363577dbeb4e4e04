#pragma once
// The userinfo of a URL (scheme://user:password@host/...) taken apart, so that it can be kept
// out of everything pgconverge prints or records. For ssh URLs the user name alone is not a
// secret (ssh://git@host/..., git@host:path) and stays; anything else in a userinfo — an https
// user name is often a token — is a credential and goes.

#include <string>
#include <string_view>
#include <vector>

namespace pgc {

struct UrlUserinfo {
  std::string url;       // the URL as given
  std::string bare;      // the URL without its userinfo's secret: no userinfo at all, or only the ssh user
  std::string shown;     // what messages print: == bare
  std::string user;      // percent-decoded; empty when absent
  std::string password;  // percent-decoded; empty when absent
  bool has_password = false;  // a ':' in the userinfo (also "user:@host")
  bool ssh = false;      // ssh://, ssh+git://, git+ssh:// (scp-like user@host:path has no password)
  // The strings that must never appear in output: the raw userinfo and its parts, as written and
  // decoded (the ssh user excepted). Longest first.
  [[nodiscard]] std::vector<std::string> secrets() const;
};

// Splits url's userinfo; a string without "scheme://" is returned unchanged with no userinfo.
UrlUserinfo split_url_userinfo(std::string_view url);

// The URL as messages show it: ssh keeps its user, every other userinfo is removed
// ("https://TOKEN@host/r.git" → "https://host/r.git").
std::string redact_url(std::string_view url);

// text with the userinfo of every "scheme://…@host" in it redacted as by redact_url.
std::string redact_urls_in(std::string_view text);

// text with every occurrence of each secret replaced by "***" (longest first).
std::string scrub(std::string text, const std::vector<std::string>& secrets);

// RFC 3986 percent-decoding (invalid escapes are kept literally).
std::string percent_decode(std::string_view text);

}  // namespace pgc

#pragma once
// Where the password or token of an https git source comes from instead of its URL: a file in
// git-credential-store's format (one URL with userinfo per line, e.g.
// "https://deploy:ghp_xxx@github.com" or "https://oauth2:glpat-xxx@gitlab.example/org/repo.git"),
// which must be a regular file owned by the user pgconverge runs as and readable by nobody else.

#include <filesystem>
#include <optional>
#include <string>

#include "util/expected.hpp"

namespace pgc::providers {

struct GitCredentials {
  std::string user;      // may be a token (GitHub accepts one as the user with no password)
  std::string password;
  std::string origin;    // for messages: "the URL" or "<file> line N" — never the secret
};

// The first entry of file whose scheme and host[:port] equal url's and whose path (if it has one)
// is a prefix of url's path; nullopt when none matches. Errors name the file and the line, never
// a secret: unreadable, a symlink, not owned by the effective user, readable or writable by group
// or others, or a line that is not a URL with userinfo.
Result<std::optional<GitCredentials>> read_git_credentials(const std::filesystem::path& file, const std::string& url);

}  // namespace pgc::providers

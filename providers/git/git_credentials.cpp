#include "providers/git/git_credentials.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/strings.hpp"
#include "util/url_userinfo.hpp"

namespace pgc::providers {
namespace {

constexpr std::size_t k_max_file = 1 << 20;

// scheme://host[:port] and the path of a URL without its userinfo.
struct Origin {
  std::string scheme_host;
  std::string path;
};

std::optional<Origin> origin_of(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return std::nullopt;
  auto path_begin = url.find('/', scheme_end + 3);
  Origin o;
  o.scheme_host = url.substr(0, path_begin);
  o.scheme_host = lower(o.scheme_host);
  o.path = path_begin == std::string::npos ? "" : url.substr(path_begin + 1);
  while (!o.path.empty() && o.path.back() == '/') o.path.pop_back();
  return o;
}

Result<std::string> read_private_file(const std::filesystem::path& file) {
  const std::string name = file.string();
  int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail("git credentials file " + name + ": cannot open: " + std::strerror(errno));
  struct stat st{};
  std::string why;
  if (::fstat(fd, &st) != 0) why = std::string("cannot stat: ") + std::strerror(errno);
  else if (!S_ISREG(st.st_mode)) why = "is not a regular file";
  else if (st.st_uid != ::geteuid())
    why = "is owned by uid " + std::to_string(st.st_uid) + ", not by the user pgconverge runs as (uid " +
          std::to_string(::geteuid()) + ")";
  else if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    why = std::string("has mode ") + mode + ": group or others may read or change it; chmod 600 it";
  } else if (static_cast<std::size_t>(st.st_size) > k_max_file)
    why = "is larger than 1 MiB";
  std::string text;
  if (why.empty()) {
    char buf[8192];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        why = std::string("cannot read: ") + std::strerror(errno);
        break;
      }
      if (n == 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      if (text.size() > k_max_file) {
        why = "is larger than 1 MiB";
        break;
      }
    }
  }
  ::close(fd);
  if (!why.empty()) return fail("git credentials file " + name + " " + why);
  return text;
}

}  // namespace

Result<std::optional<GitCredentials>> read_git_credentials(const std::filesystem::path& file, const std::string& url) {
  auto text = read_private_file(file);
  PGC_TRY(text);
  auto wanted = origin_of(split_url_userinfo(url).bare);
  if (!wanted) return std::optional<GitCredentials>();
  int line_number = 0;
  for (const auto& raw_line : split(*text, '\n')) {
    ++line_number;
    std::string line = trim(raw_line);
    if (line.empty() || line.starts_with('#')) continue;
    const std::string where = file.string() + " line " + std::to_string(line_number);
    auto entry = split_url_userinfo(line);
    auto origin = origin_of(entry.bare);
    if (!origin || (entry.user.empty() && entry.password.empty()))
      return fail("git credentials file " + where +
                  ": not a URL with credentials (expected e.g. https://user:token@host)");
    if (origin->scheme_host != wanted->scheme_host) continue;
    if (!origin->path.empty() && !(wanted->path == origin->path || wanted->path.starts_with(origin->path + "/")))
      continue;
    return std::optional<GitCredentials>(GitCredentials{entry.user, entry.password, where});
  }
  return std::optional<GitCredentials>();
}

}  // namespace pgc::providers

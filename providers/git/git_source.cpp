// The libgit2 implementation of the git manifest source. Layout of a cache_dir:
//   repo.git/           bare clone: refs/remotes/origin/* and refs/tags/*, no remote in its config
//   checkouts/<sha>/    one commit's tree as plain files; .tmp-* while being written
//   last-good           "<sha>\n<ref>\n" of the last successful sync
//   lock                flock()ed for the whole sync

#include <fcntl.h>
#include <git2.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "providers/git/git_source.hpp"
#include "providers/git/git_credentials.hpp"
#include "providers/crypto/crypto.hpp"
#include "util/atomic_file.hpp"
#include "util/base64.hpp"
#include "util/known_hosts.hpp"
#include "util/move_aside.hpp"
#include "util/strings.hpp"
#include "util/url_userinfo.hpp"

namespace pgc::providers {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Enough that a caller still reading the previous checkout (a run in progress) keeps it.
constexpr std::size_t k_kept_checkouts = 3;

template <auto Free>
struct GitFree {
  template <typename T>
  void operator()(T* handle) const {
    Free(handle);
  }
};
using RepoPtr = std::unique_ptr<git_repository, GitFree<git_repository_free>>;
using RemotePtr = std::unique_ptr<git_remote, GitFree<git_remote_free>>;
using RefPtr = std::unique_ptr<git_reference, GitFree<git_reference_free>>;
using ObjectPtr = std::unique_ptr<git_object, GitFree<git_object_free>>;
using CommitPtr = std::unique_ptr<git_commit, GitFree<git_commit_free>>;
using TreePtr = std::unique_ptr<git_tree, GitFree<git_tree_free>>;
using BlobPtr = std::unique_ptr<git_blob, GitFree<git_blob_free>>;

// A git_buf that frees itself.
struct Buf {
  git_buf buf = GIT_BUF_INIT;
  Buf() = default;
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() { git_buf_dispose(&buf); }
  [[nodiscard]] std::string str() const { return buf.ptr != nullptr ? std::string(buf.ptr, buf.size) : std::string(); }
};

// A file descriptor that closes itself.
struct Fd {
  int fd = -1;
  explicit Fd(int value) : fd(value) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

void ensure_libgit2() {
  // libgit2 is initialised once per process and never shut down (other threads may still use it).
  static const int k_initialised = git_libgit2_init();
  (void)k_initialised;
}

// libgit2's message for the call that just failed on this thread (it goes stale on the next call).
std::string last_git_error() {
  const git_error* error = git_error_last();
  if (error == nullptr || error->message == nullptr || *error->message == '\0') return "unknown libgit2 error";
  return error->message;
}

std::string oid_hex(const git_oid* oid) {
  std::array<char, GIT_OID_HEXSZ + 1> text{};
  git_oid_tostr(text.data(), text.size(), oid);
  return text.data();
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

// Where an ssh URL points, for known_hosts and credentials.
struct SshTarget {
  std::string user;
  std::string host;
  int port = 22;
};

bool is_scp_like(std::string_view url) {
  // [user@]host:path where nothing before the colon looks like a path or a scheme.
  auto colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  auto before = url.substr(0, colon);
  if (before.find('/') != std::string_view::npos) return false;
  if (url.substr(colon).starts_with("://")) return false;
  auto at = before.find('@');
  return at != std::string_view::npos && at > 0 && at + 1 < before.size();
}

// user, host and port of ssh://[user@]host[:port]/path or scp-like user@host:path; nullopt for
// other URLs.
std::optional<SshTarget> ssh_target(std::string_view url) {
  std::string_view authority;
  bool scp_like = false;
  for (std::string_view scheme : {"ssh://", "ssh+git://", "git+ssh://"})
    if (url.starts_with(scheme)) authority = url.substr(scheme.size(), url.find('/', scheme.size()) - scheme.size());
  if (authority.empty()) {
    if (!is_scp_like(url)) return std::nullopt;
    authority = url.substr(0, url.find(':'));
    scp_like = true;
  }
  SshTarget target;
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    auto userinfo = authority.substr(0, at);
    target.user = std::string(userinfo.substr(0, userinfo.find(':')));
    authority = authority.substr(at + 1);
  }
  if (authority.starts_with('[')) {  // [::1]:2222
    auto close_bracket = authority.find(']');
    target.host = std::string(authority.substr(1, close_bracket - 1));
    authority = close_bracket == std::string_view::npos ? std::string_view() : authority.substr(close_bracket + 1);
  } else {
    auto colon = scp_like ? std::string_view::npos : authority.find(':');
    target.host = std::string(authority.substr(0, colon));
    authority = colon == std::string_view::npos ? std::string_view() : authority.substr(colon);
  }
  if (authority.starts_with(':')) target.port = std::atoi(std::string(authority.substr(1)).c_str());
  return target;
}

// How OpenSSH names the host in known_hosts.
std::string known_hosts_name(const SshTarget& target) {
  if (target.port == 22) return target.host;
  return "[" + target.host + "]:" + std::to_string(target.port);
}

std::string default_known_hosts() {
  std::string home;
  if (const char* env = std::getenv("HOME"); env != nullptr && *env != '\0') home = env;
  else if (const passwd* pw = getpwuid(geteuid()); pw != nullptr && pw->pw_dir != nullptr) home = pw->pw_dir;
  return home + "/.ssh/known_hosts";
}

// OpenSSH's host pattern match: '*' and '?' are the only wildcards ("[host]:port" is literal).
bool wildcard_match(std::string_view pattern, std::string_view name) {
  if (pattern.empty()) return name.empty();
  if (pattern[0] == '*') {
    for (std::size_t skip = 0; skip <= name.size(); ++skip)
      if (wildcard_match(pattern.substr(1), name.substr(skip))) return true;
    return false;
  }
  if (name.empty()) return false;
  if (pattern[0] != '?' && std::tolower(static_cast<unsigned char>(pattern[0])) !=
                               std::tolower(static_cast<unsigned char>(name[0])))
    return false;
  return wildcard_match(pattern.substr(1), name.substr(1));
}

// True when name matches the comma-separated OpenSSH host pattern list (with ! negation).
bool host_patterns_match(std::string_view patterns, const std::string& name) {
  bool matched = false;
  for (const auto& pattern : split(patterns, ',')) {
    if (pattern.starts_with('!')) {
      if (wildcard_match(std::string_view(pattern).substr(1), name)) return false;
    } else if (wildcard_match(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

// Everything one fetch's callbacks need; their own failure text goes into error.
struct FetchContext {
  const GitSourceOptions* options = nullptr;
  std::string who;  // "git <redacted url>"
  std::optional<SshTarget> ssh;
  std::string known_hosts;
  Clock::time_point deadline;
  int key_attempts = 0;
  std::optional<GitCredentials> https;  // user and password for https (the URL's or the file's)
  int password_attempts = 0;
  std::string ssh_password;             // an ssh URL's password, offered only when no key is accepted
  std::string error;
};

int check_deadline(FetchContext& context) {
  if (Clock::now() < context.deadline) return 0;
  context.error = "timed out after " + std::to_string(context.options->timeout.count()) + " ms";
  return -1;
}

int on_transfer_progress(const git_indexer_progress* /*stats*/, void* payload) {
  return check_deadline(*static_cast<FetchContext*>(payload));
}

int on_sideband(const char* /*text*/, int /*length*/, void* payload) {
  return check_deadline(*static_cast<FetchContext*>(payload));
}

int refuse(FetchContext& context, std::string why) {
  context.error = std::move(why);
  git_error_set_str(GIT_ERROR_CALLBACK, context.error.c_str());
  return -1;
}

// The key type an SSH public key blob names in its first field, e.g. "ssh-ed25519".
std::string blob_type(std::string_view blob) {
  if (blob.size() < 4) return "unknown";
  std::size_t length = 0;
  for (int i = 0; i < 4; ++i) length = (length << 8) | static_cast<unsigned char>(blob[static_cast<std::size_t>(i)]);
  if (length == 0 || length > 64 || length > blob.size() - 4) return "unknown";
  return std::string(blob.substr(4, length));
}

// "SHA256:…" as ssh-keygen -l prints it.
std::string blob_fingerprint(std::string_view blob) {
  const std::string digest = crypto::sha256(blob);
  return "SHA256:" + base64_encode_unpadded(digest);
}

// What a known_hosts file says about the key a host offered.
struct KnownHostsVerdict {
  enum class State { ok, revoked, changed, unknown } state = State::unknown;
  std::vector<std::string> listed;  // the host's other keys: "ssh-ed25519 SHA256:… (line 3)"
  bool same_type_listed = false;    // one of them has the offered key's type
};

KnownHostsVerdict check_known_hosts(const std::string& content, const std::string& name, const std::string& offered) {
  KnownHostsVerdict verdict;
  std::istringstream in(content);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    auto words = split(trim(line), ' ');
    std::erase(words, std::string());
    if (words.empty() || words[0].starts_with('#')) continue;
    bool revoked = false;
    if (words[0].starts_with('@')) {
      if (words[0] == "@revoked") revoked = true;
      else continue;  // @cert-authority: host certificates are not supported
      words.erase(words.begin());
    }
    if (words.size() < 3 || words[0].starts_with('|') || !host_patterns_match(words[0], name)) continue;
    auto blob = base64_decode_strict(words[2]);
    bool same = blob && *blob == offered;
    if (revoked && same) {
      verdict.state = KnownHostsVerdict::State::revoked;
      return verdict;
    }
    if (revoked) continue;
    if (same) {
      verdict.state = KnownHostsVerdict::State::ok;
      return verdict;
    }
    std::string type = blob ? blob_type(*blob) : words[1];
    verdict.same_type_listed = verdict.same_type_listed || type == blob_type(offered);
    verdict.listed.push_back(type + " " + (blob ? blob_fingerprint(*blob) : std::string("(not base64)")) + " (line " +
                             std::to_string(number) + ")");
    verdict.state = KnownHostsVerdict::State::changed;
  }
  return verdict;
}

// The refusal for a key that known_hosts does not list as the host's, with both fingerprints.
std::string refusal(const KnownHostsVerdict& verdict, const std::string& name, const std::string& offered,
                    const std::string& known_hosts) {
  const std::string fingerprint = blob_fingerprint(offered);
  if (verdict.state == KnownHostsVerdict::State::revoked)
    return "ssh: the host key offered (" + fingerprint + ") is marked @revoked in " + known_hosts +
           "; refusing to connect";
  if (verdict.state == KnownHostsVerdict::State::changed)
    return "ssh: host key mismatch for " + name + ": the server offered " + blob_type(offered) + " " + fingerprint +
           ", but " + known_hosts + (verdict.same_type_listed ? " lists " : " lists only another type of key: ") +
           join(verdict.listed, ", ") +
           "; refusing to connect (if the host was reinstalled, remove the old key with ssh-keygen -R " +
           shell_quote(name) + " -f " + shell_quote(known_hosts) + ")";
  return "ssh: unknown host key: the key offered (" + fingerprint + ") for " + name + " is not in " + known_hosts +
         "; refusing to connect";
}

// accept-new: appends the host's key to known_hosts, unless it is there by now (checked again
// under the file's lock), and tells the recorder.
int record_host_key(FetchContext& context, const std::string& name, const std::string& offered) {
  const std::string type = blob_type(offered);
  const std::string fingerprint = blob_fingerprint(offered);
  if (type == "unknown")
    return refuse(context, "ssh: the host key offered (" + fingerprint + ") names no key type; not recording it, "
                           "refusing to connect");
  std::string encoded = base64_encode(offered);
  std::optional<std::string> refused;
  auto appended = append_known_hosts_entry(
      context.known_hosts, name + " " + type + " " + encoded + "\n", [&](const std::string& current) -> Result<bool> {
        auto verdict = check_known_hosts(current, name, offered);
        if (verdict.state == KnownHostsVerdict::State::ok) return false;
        if (verdict.state == KnownHostsVerdict::State::unknown) return true;
        refused = refusal(verdict, name, offered, context.known_hosts);
        return fail(*refused);
      });
  if (!appended)
    return refuse(context, refused ? *refused
                                   : "ssh: recording the new host key " + type + " " + fingerprint + " in " +
                                         context.known_hosts + ": " + appended.error().message);
  if (*appended && context.options->on_host_key_recorded)
    context.options->on_host_key_recorded(RecordedHostKey{context.who, name, type, fingerprint, context.known_hosts});
  return 0;
}

int on_certificate(git_cert* cert, int valid, const char* /*host*/, void* payload) {
  auto& context = *static_cast<FetchContext*>(payload);
  if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) {
    (void)valid;
    return GIT_PASSTHROUGH;  // TLS: libgit2's own verification against the system CAs decides.
  }
  if (!context.ssh) return refuse(context, "ssh: host key offered for a URL that is not an ssh URL");
  const auto* key = reinterpret_cast<const git_cert_hostkey*>(cert);
  std::string fingerprint = "SHA256:?";
  if ((key->type & GIT_CERT_SSH_SHA256) != 0) fingerprint = "SHA256:" + base64_encode_unpadded(std::string_view(reinterpret_cast<const char*>(key->hash_sha256), sizeof key->hash_sha256));
  if ((key->type & GIT_CERT_SSH_RAW) == 0 || key->hostkey == nullptr)
    return refuse(context, "ssh: libgit2 did not provide the server's raw host key (" + fingerprint +
                               "); cannot verify it, refusing to connect");
  const std::string offered(key->hostkey, key->hostkey_len);
  const std::string name = known_hosts_name(*context.ssh);
  const bool accept = context.options->new_host_keys == NewHostKeys::accept;

  std::string content;
  if (auto text = read_whole_file(context.known_hosts)) {
    content = std::move(*text);
  } else if (!accept || text.error().message != "not found") {
    return refuse(context, "ssh: cannot verify the host key (" + fingerprint + "): known_hosts file " +
                               context.known_hosts + " is missing or unreadable; refusing to connect");
  }
  auto verdict = check_known_hosts(content, name, offered);
  if (verdict.state == KnownHostsVerdict::State::ok) return 0;
  if (verdict.state == KnownHostsVerdict::State::unknown && accept) return record_host_key(context, name, offered);
  return refuse(context, refusal(verdict, name, offered, context.known_hosts));
}

int on_credentials(git_credential** out, const char* /*url*/, const char* username_from_url,
                   unsigned int allowed_types, void* payload) {
  auto& context = *static_cast<FetchContext*>(payload);
  if (!context.ssh) {
    if (!context.https || (allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) == 0) return GIT_PASSTHROUGH;
    if (++context.password_attempts > 1)
      return refuse(context, "authentication with the credentials from " + context.https->origin + " was refused");
    return git_credential_userpass_plaintext_new(out, context.https->user.c_str(), context.https->password.c_str());
  }
  std::string user = username_from_url != nullptr ? username_from_url : context.ssh->user;
  if (user.empty()) return refuse(context, "ssh: the URL names no user (use ssh://user@host/path or user@host:path)");
  if ((allowed_types & GIT_CREDENTIAL_USERNAME) != 0) return git_credential_username_new(out, user.c_str());
  if ((allowed_types & GIT_CREDENTIAL_SSH_KEY) == 0) {
    if ((allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) != 0 && !context.ssh_password.empty() &&
        ++context.password_attempts == 1)
      return git_credential_userpass_plaintext_new(out, user.c_str(), context.ssh_password.c_str());
    return refuse(context, "ssh: the server accepts no public key authentication");
  }
  const std::string& identity = context.options->ssh_identity;
  const std::string method = identity.empty() ? "ssh-agent" : "key " + identity;
  if (++context.key_attempts > 1)
    return refuse(context, "ssh: authentication as " + user + " with " + method + " was refused");
  if (identity.empty()) {
    if (const char* agent = std::getenv("SSH_AUTH_SOCK"); agent == nullptr || *agent == '\0')
      return refuse(context, "ssh: no ssh_identity given and no ssh-agent running (SSH_AUTH_SOCK is unset)");
    return git_credential_ssh_key_from_agent(out, user.c_str());
  }
  if (access(identity.c_str(), R_OK) != 0)
    return refuse(context, "ssh: cannot read private key " + identity + ": " + std::strerror(errno));
  const std::string public_key = identity + ".pub";
  bool have_public = access(public_key.c_str(), R_OK) == 0;
  return git_credential_ssh_key_new(out, user.c_str(), have_public ? public_key.c_str() : nullptr,
                                    identity.c_str(), nullptr);
}

// Reads cache_dir/last-good: the sha and the ref it was resolved for.
struct LastGood {
  std::string sha;
  std::string ref;
};

std::optional<LastGood> read_last_good(const fs::path& file) {
  std::ifstream in(file);
  LastGood last;
  if (!in || !std::getline(in, last.sha) || last.sha.size() != GIT_OID_HEXSZ) return std::nullopt;
  std::getline(in, last.ref);
  return last;
}

bool is_hex(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// One sync of one source; every message starts with "git <redacted url>: ".
class Sync {
 public:
  explicit Sync(const GitSourceOptions& options)
      : options_(options),
        userinfo_(split_url_userinfo(options.url)),
        secrets_(userinfo_.secrets()),
        who_("git " + userinfo_.shown) {}

  Result<GitSync> run() {
    ensure_libgit2();
    if (options_.url.empty()) return fail("git: no URL given");
    if (options_.cache_dir.empty()) return fail(who_ + ": no cache directory given");
    std::error_code ec;
    fs::create_directories(options_.cache_dir / "checkouts", ec);
    if (ec) return fail(who_ + ": creating the cache " + options_.cache_dir.string() + ": " + ec.message());
    ::chmod(options_.cache_dir.c_str(), 0700);  // the cache holds the manifests: not for other users
    Fd lock(open((options_.cache_dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (lock.fd < 0)
      return fail(who_ + ": locking the cache " + options_.cache_dir.string() + ": " + std::strerror(errno));
    PGC_TRY(lock_within(lock.fd));

    GitSync sync;
    PGC_TRY(open_cache(sync.warnings));
    remove_stale_ref_locks();
    const auto last_good = read_last_good(options_.cache_dir / "last-good");
    if (last_good) sync.previous_sha = last_good->sha;

    auto fetched = options_.offline ? Result<void>(fail(who_ + ": fetch: " + options_.offline_reason)) : fetch();
    std::string sha;
    if (fetched) {
      auto resolved = resolve(options_.ref);
      PGC_TRY(resolved);
      sha = *resolved;
    } else if (last_good && last_good->ref == options_.ref) {
      sync.fetched = false;
      sync.fetch_error = fetched.error().message;
      sha = last_good->sha;
    } else {
      return std::unexpected(fetched.error());
    }

    git_oid oid;
    git_oid_fromstr(&oid, sha.c_str());
    CommitPtr commit;
    {
      git_commit* raw = nullptr;
      if (git_commit_lookup(&raw, repo_.get(), &oid) != 0)
        return fail(who_ + ": reading commit " + sha + ": " + message(last_git_error()));
      commit.reset(raw);
    }
    sync.revision = revision_of(commit.get(), sha);
    if (auto signature = signature_of(oid); signature) sync.signature = std::move(*signature);
    else return std::unexpected(signature.error());

    if (sync.previous_sha && *sync.previous_sha != sha) {
      git_oid previous;
      sync.rewound = git_oid_fromstr(&previous, sync.previous_sha->c_str()) != 0 ||
                     git_graph_descendant_of(repo_.get(), &oid, &previous) != 1;
    }

    auto checkout = check_out(commit.get(), sha);
    PGC_TRY(checkout);
    sync.checkout = *checkout;

    if (sync.fetched) {
      auto written = write_file_atomically(options_.cache_dir / "last-good", sha + "\n" + options_.ref + "\n",
                                           fs::perms::owner_read | fs::perms::owner_write);
      if (!written) return fail(who_ + ": recording the last good revision: " + written.error().message);
    }
    return sync;
  }

 private:
  // A libgit2 (or our callbacks') message with the URL's credentials taken out.
  [[nodiscard]] std::string message(std::string text) const {
    replace_all(text, options_.url, userinfo_.shown);
    return scrub(std::move(text), secrets_);
  }

  // flock on the cache, waited for up to the timeout (another process may be fetching).
  Result<void> lock_within(int fd) {
    const auto deadline = Clock::now() + options_.timeout;
    for (;;) {
      if (flock(fd, LOCK_EX | LOCK_NB) == 0) return {};
      if (errno != EWOULDBLOCK && errno != EINTR)
        return fail(who_ + ": locking the cache " + options_.cache_dir.string() + ": " + std::strerror(errno));
      if (Clock::now() >= deadline)
        return fail(who_ + ": the cache " + options_.cache_dir.string() + " is locked by another fetch; waited " +
                    std::to_string(options_.timeout.count()) + " ms");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // A fetch killed at its deadline may leave refs/…/x.lock behind, which would fail every later
  // fetch; under the cache's lock nobody else is writing, so any *.lock in repo.git is stale.
  void remove_stale_ref_locks() {
    std::error_code ec;
    const fs::path repo = options_.cache_dir / "repo.git";
    for (auto it = fs::recursive_directory_iterator(repo, fs::directory_options::none, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_symlink(ec)) {
        it.disable_recursion_pending();
        continue;
      }
      if (it->path().extension() == ".lock" && it->is_regular_file(ec)) fs::remove(it->path(), ec);
    }
  }

  Result<void> open_cache(std::vector<std::string>& warnings) {
    const fs::path path = options_.cache_dir / "repo.git";
    git_repository* raw = nullptr;
    int rc = git_repository_open_bare(&raw, path.c_str());
    std::error_code exists_ec;
    if (rc != 0 && fs::exists(fs::symlink_status(path, exists_ec))) {
      // Damaged (not a repository, unreadable config, …): never trusted, never silently reset.
      std::string why = message(last_git_error());
      auto aside = move_aside(path);
      if (!aside) return fail(who_ + ": the cache " + path.string() + " is damaged (" + why + ") and " + aside.error().message);
      warnings.push_back(who_ + ": the cache " + path.string() + " was damaged (" + why + "); moved aside to " +
                         aside->string() + ", cloning anew");
      std::error_code ec;
      fs::remove(options_.cache_dir / "last-good", ec);  // it named a commit of the damaged clone
      rc = GIT_ENOTFOUND;
    }
    if (rc == GIT_ENOTFOUND) rc = git_repository_init(&raw, path.c_str(), 1);
    if (rc != 0) return fail(who_ + ": opening the cache " + path.string() + ": " + message(last_git_error()));
    repo_.reset(raw);
    return {};
  }

  Result<void> fetch() {
    FetchContext context;
    context.options = &options_;
    context.who = who_;
    context.ssh = ssh_target(options_.url);
    context.known_hosts = options_.known_hosts.empty() ? default_known_hosts() : options_.known_hosts;
    context.deadline = Clock::now() + options_.timeout;
    if (context.ssh && (git_libgit2_features() & GIT_FEATURE_SSH) == 0)
      return fail(who_ + ": fetch: this libgit2 was built without SSH support");
    if (context.ssh) {
      context.ssh_password = userinfo_.password;
    } else if (!userinfo_.user.empty() || userinfo_.has_password) {
      context.https = GitCredentials{userinfo_.user, userinfo_.password, "the URL"};
    } else if (!options_.credentials_file.empty()) {
      auto found = read_git_credentials(options_.credentials_file, userinfo_.bare);
      if (!found) return fail(who_ + ": fetch: " + found.error().message);
      if (*found) {
        context.https = std::move(*found);
        for (const auto& secret : {context.https->user, context.https->password})
          if (!secret.empty()) secrets_.push_back(secret);
      }
    }

    git_fetch_options fetch_options;
    git_fetch_options_init(&fetch_options, GIT_FETCH_OPTIONS_VERSION);
    fetch_options.prune = GIT_FETCH_PRUNE;
    fetch_options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;  // the tags refspec below fetches them all
    fetch_options.follow_redirects = GIT_REMOTE_REDIRECT_INITIAL;
    fetch_options.update_fetchhead = 0;  // FETCH_HEAD would name the URL; nothing reads it
    fetch_options.callbacks.payload = &context;
    fetch_options.callbacks.certificate_check = on_certificate;
    fetch_options.callbacks.credentials = on_credentials;
    fetch_options.callbacks.transfer_progress = on_transfer_progress;
    fetch_options.callbacks.sideband_progress = on_sideband;

    // An anonymous remote: no URL is written to the cache's config. libgit2 gets the URL without
    // its credentials (they come through on_credentials), so none of its messages can echo them.
    git_remote* raw_remote = nullptr;
    if (git_remote_create_anonymous(&raw_remote, repo_.get(), userinfo_.bare.c_str()) != 0)
      return fail(who_ + ": fetch: " + message(last_git_error()));
    remote_.reset(raw_remote);
    std::array<char*, 2> specs{const_cast<char*>("+refs/heads/*:refs/remotes/origin/*"),
                               const_cast<char*>("+refs/tags/*:refs/tags/*")};
    git_strarray refspecs{specs.data(), specs.size()};
    if (git_remote_fetch(remote_.get(), &refspecs, &fetch_options, "pgconverge fetch") != 0) {
      std::string why = context.error.empty() ? last_git_error() : context.error;
      return fail(who_ + ": fetch: " + message(why));
    }
    record_default_branch();
    return {};
  }

  // Points refs/remotes/origin/HEAD at the branch the remote's HEAD names, as `git clone` does.
  void record_default_branch() {
    Buf branch;
    if (git_remote_default_branch(&branch.buf, remote_.get()) != 0) return;  // empty remote, or HEAD detached
    std::string name = branch.str();
    if (!name.starts_with("refs/heads/")) return;
    std::string target = "refs/remotes/origin/" + name.substr(std::strlen("refs/heads/"));
    git_reference* raw = nullptr;
    if (git_reference_symbolic_create(&raw, repo_.get(), "refs/remotes/origin/HEAD", target.c_str(), 1,
                                      "pgconverge: remote HEAD") == 0)
      git_reference_free(raw);
  }

  // The commit a ref names, peeled; nullopt when the ref does not exist.
  Result<std::optional<std::string>> peel_ref(const std::string& refname) {
    git_reference* raw_ref = nullptr;
    int rc = git_reference_lookup(&raw_ref, repo_.get(), refname.c_str());
    if (rc == GIT_ENOTFOUND || rc == GIT_EINVALIDSPEC) return std::nullopt;
    if (rc != 0) return fail(who_ + ": reading " + refname + ": " + message(last_git_error()));
    RefPtr ref(raw_ref);
    git_object* raw_object = nullptr;
    if (git_reference_peel(&raw_object, ref.get(), GIT_OBJECT_COMMIT) != 0)
      return fail(who_ + ": " + refname + " does not point to a commit: " + message(last_git_error()));
    ObjectPtr object(raw_object);
    return oid_hex(git_object_id(object.get()));
  }

  Result<std::string> resolve(const std::string& ref) {
    if (ref.empty()) {
      auto head = peel_ref("refs/remotes/origin/HEAD");
      PGC_TRY(head);
      if (!*head) return fail(who_ + ": the remote has no default branch (HEAD); name a ref");
      return **head;
    }
    std::vector<std::string> candidates;
    if (ref.starts_with("refs/heads/")) candidates.push_back("refs/remotes/origin/" + ref.substr(11));
    else if (ref.starts_with("refs/tags/")) candidates.push_back(ref);
    else candidates = {"refs/remotes/origin/" + ref, "refs/tags/" + ref};
    for (const auto& candidate : candidates) {
      auto sha = peel_ref(candidate);
      PGC_TRY(sha);
      if (*sha) return **sha;
    }
    if (is_hex(ref) && ref.size() >= GIT_OID_MINPREFIXLEN && ref.size() <= GIT_OID_HEXSZ) {
      git_oid prefix;
      git_oid_fromstrn(&prefix, ref.c_str(), ref.size());
      git_object* raw = nullptr;
      int rc = git_object_lookup_prefix(&raw, repo_.get(), &prefix, ref.size(), GIT_OBJECT_ANY);
      if (rc == GIT_EAMBIGUOUS) return fail(who_ + ": ref \"" + ref + "\" is ambiguous (more than one object starts with it)");
      if (rc == 0) {
        ObjectPtr object(raw);
        git_object* peeled = nullptr;
        if (git_object_peel(&peeled, object.get(), GIT_OBJECT_COMMIT) == 0) {
          ObjectPtr commit(peeled);
          return oid_hex(git_object_id(commit.get()));
        }
      }
    }
    return fail(who_ + ": ref \"" + ref + "\" not found (not a branch, tag or commit)");
  }

  static GitRevision revision_of(git_commit* commit, const std::string& sha) {
    GitRevision revision;
    revision.sha = sha;
    revision.short_sha = sha.substr(0, 7);
    if (const char* summary = git_commit_summary(commit); summary != nullptr) revision.subject = summary;
    if (const git_signature* author = git_commit_author(commit); author != nullptr)
      revision.author = std::string(author->name != nullptr ? author->name : "") + " <" +
                        (author->email != nullptr ? author->email : "") + ">";
    revision.commit_time = static_cast<std::int64_t>(git_commit_time(commit));
    return revision;
  }

  Result<CommitSignature> signature_of(git_oid oid) {
    Buf signature;
    Buf signed_data;
    int rc = git_commit_extract_signature(&signature.buf, &signed_data.buf, repo_.get(), &oid, nullptr);
    if (rc == GIT_ENOTFOUND) return CommitSignature{};
    if (rc != 0) return fail(who_ + ": reading the signature of " + oid_hex(&oid) + ": " + message(last_git_error()));
    return CommitSignature{signature.str(), signed_data.str()};
  }

  // ---- checkout ----------------------------------------------------------------------------

  Result<fs::path> check_out(git_commit* commit, const std::string& sha) {
    const fs::path checkouts = options_.cache_dir / "checkouts";
    const fs::path target = checkouts / sha;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(checkouts, ec))  // we hold the lock: leftovers are stale
      if (entry.path().filename().string().starts_with(".tmp-")) fs::remove_all(entry.path(), ec);

    if (fs::is_directory(fs::symlink_status(target, ec))) {
      fs::last_write_time(target, fs::file_time_type::clock::now(), ec);  // newest again, for pruning
    } else {
      std::string pattern = (checkouts / (".tmp-" + sha + "-XXXXXX")).string();
      if (mkdtemp(pattern.data()) == nullptr)
        return fail(who_ + ": checkout " + sha + ": creating " + pattern + ": " + std::strerror(errno));
      const fs::path temp = pattern;
      chmod(temp.c_str(), 0755);
      git_tree* raw = nullptr;
      if (git_commit_tree(&raw, commit) != 0) {
        fs::remove_all(temp, ec);
        return fail(who_ + ": checkout " + sha + ": reading the tree: " + message(last_git_error()));
      }
      TreePtr tree(raw);
      auto written = write_tree(tree.get(), temp, "");
      if (written) written = sync_directory(temp);
      if (!written) {
        fs::remove_all(temp, ec);
        return fail(who_ + ": checkout " + sha + ": " + written.error().message);
      }
      if (rename(temp.c_str(), target.c_str()) != 0) {
        int saved = errno;
        fs::remove_all(temp, ec);
        return fail(who_ + ": checkout " + sha + ": renaming into place: " + std::strerror(saved));
      }
      (void)sync_directory(checkouts);
    }
    prune_checkouts(checkouts, target);
    return target;
  }

  static Result<void> sync_directory(const fs::path& dir) {
    Fd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.fd < 0 || fsync(fd.fd) != 0) return fail("syncing " + dir.string() + ": " + std::strerror(errno));
    return {};
  }

  static bool safe_name(std::string_view name) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos ||
        name.find('\0') != std::string_view::npos)
      return false;
    return lower(name) != ".git";
  }

  // Writes tree's regular files and directories under dir; never creates or follows a symlink.
  Result<void> write_tree(const git_tree* tree, const fs::path& dir, const std::string& relative) {
    for (std::size_t i = 0, n = git_tree_entrycount(tree); i < n; ++i) {
      const git_tree_entry* entry = git_tree_entry_byindex(tree, i);
      const std::string name = git_tree_entry_name(entry);
      const std::string shown = relative.empty() ? name : relative + "/" + name;
      if (!safe_name(name)) return fail("tree entry \"" + shown + "\" is not a safe file name");
      const fs::path path = dir / name;
      switch (git_tree_entry_filemode(entry)) {
        case GIT_FILEMODE_TREE: {
          if (mkdir(path.c_str(), 0755) != 0) return fail("creating " + shown + ": " + std::strerror(errno));
          git_tree* raw = nullptr;
          if (git_tree_lookup(&raw, repo_.get(), git_tree_entry_id(entry)) != 0)
            return fail("reading " + shown + ": " + message(last_git_error()));
          TreePtr subtree(raw);
          if (auto written = write_tree(subtree.get(), path, shown); !written) return written;
          if (auto synced = sync_directory(path); !synced) return synced;
          break;
        }
        case GIT_FILEMODE_BLOB:
        case GIT_FILEMODE_BLOB_EXECUTABLE: {
          git_blob* raw = nullptr;
          if (git_blob_lookup(&raw, repo_.get(), git_tree_entry_id(entry)) != 0)
            return fail("reading " + shown + ": " + message(last_git_error()));
          BlobPtr blob(raw);
          mode_t mode = git_tree_entry_filemode(entry) == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644;
          if (auto written = write_blob(path, shown, blob.get(), mode); !written) return written;
          break;
        }
        default:
          break;  // symlinks and submodules are not manifests: skipped
      }
    }
    return {};
  }

  static Result<void> write_blob(const fs::path& path, const std::string& shown, const git_blob* blob, mode_t mode) {
    Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (fd.fd < 0) return fail("creating " + shown + ": " + std::strerror(errno));
    const char* data = static_cast<const char*>(git_blob_rawcontent(blob));
    auto left = static_cast<std::size_t>(git_blob_rawsize(blob));
    while (left > 0) {
      ssize_t n = write(fd.fd, data, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail("writing " + shown + ": " + std::strerror(errno));
      data += n;
      left -= static_cast<std::size_t>(n);
    }
    if (fchmod(fd.fd, mode) != 0 || fsync(fd.fd) != 0) return fail("writing " + shown + ": " + std::strerror(errno));
    return {};
  }

  // Keeps the newest few checkouts (by the time they were last returned) and always the current one.
  static void prune_checkouts(const fs::path& checkouts, const fs::path& current) {
    std::error_code ec;
    std::vector<std::pair<fs::file_time_type, fs::path>> found;
    for (const auto& entry : fs::directory_iterator(checkouts, ec)) {
      if (entry.path() == current || entry.path().filename().string().starts_with(".")) continue;
      found.emplace_back(fs::last_write_time(entry.path(), ec), entry.path());
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t i = k_kept_checkouts > 0 ? k_kept_checkouts - 1 : 0; i < found.size(); ++i)
      fs::remove_all(found[i].second, ec);
  }

  const GitSourceOptions& options_;
  UrlUserinfo userinfo_;
  std::vector<std::string> secrets_;  // scrubbed from every message
  std::string who_;
  RepoPtr repo_;
  RemotePtr remote_;
};

}  // namespace

std::string redact_git_url(std::string_view url) { return redact_url(url); }

bool is_git_url(std::string_view source) {
  for (std::string_view scheme : {"file://", "https://", "http://", "ssh://", "git://", "ssh+git://", "git+ssh://"})
    if (source.starts_with(scheme)) return true;
  return is_scp_like(source);
}

Result<GitSync> sync_git_source(const GitSourceOptions& options) {
  return Sync(options).run();
}

}  // namespace pgc::providers

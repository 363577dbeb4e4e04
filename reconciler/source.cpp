#include "reconciler/source.hpp"

#include <algorithm>
#include <cctype>

#include "providers/crypto/crypto.hpp"
#include "providers/git/git_source.hpp"
#include "providers/process/commit_verification.hpp"
#include "reconciler/git_fetch.hpp"
#include "util/strings.hpp"
#include "util/url_userinfo.hpp"

namespace pgc::reconciler {
namespace {

namespace fs = std::filesystem;

// The cache directory's name: the SHA-256 of the URL without its credentials (a new password
// reuses the clone; nothing of the URL shows in a directory listing).
std::string cache_name(const std::string& url) {
  return providers::crypto::to_hex(providers::crypto::sha256(split_url_userinfo(url).bare));
}

bool is_cache_name(const std::string& name) {
  return name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
         });
}

// <state dir>/sources, 0700; caches of earlier versions — named after the URL, password
// included — are removed (a cache is only a cache: the next fetch clones anew).
Result<fs::path> sources_dir(const fs::path& state_dir) {
  const fs::path dir = state_dir / "sources";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail("creating " + dir.string() + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) return fail("chmod 0700 " + dir.string() + ": " + ec.message());
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!is_cache_name(name) && name.find(".damaged-") == std::string::npos) fs::remove_all(entry.path(), ec);
  }
  return dir;
}

// --path must stay inside the checkout.
Result<std::filesystem::path> inside(const std::filesystem::path& root, const std::string& sub,
                                     const std::string& where) {
  if (sub.empty()) return root;
  std::filesystem::path rel(sub);
  if (rel.is_absolute()) return fail(where + ": --path " + sub + " must be relative to the repository root");
  for (const auto& part : rel)
    if (part == "..") return fail(where + ": --path " + sub + " may not leave the repository");
  auto full = root / rel;
  std::error_code ec;
  if (!std::filesystem::exists(full, ec)) return fail(where + ": --path " + sub + " does not exist in this revision");
  return full;
}

}  // namespace

std::string describe_locations(const std::vector<std::string>& locations) {
  std::vector<std::string> shown;
  for (const auto& location : locations) shown.push_back(redact_url(location));
  return join(shown, ", ");
}

std::string apply_aliases(std::string text, const std::vector<std::pair<std::string, std::string>>& aliases) {
  for (const auto& [from, to] : aliases) {
    if (from.empty()) continue;
    for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
      text.replace(pos, from.size(), to);
  }
  return text;
}

Result<ResolvedSource> resolve_source(const SourceOptions& options) {
  if (options.commits.verify && options.commits.ssh_allowed_signers.empty() && options.commits.gpg_keyring.empty())
    return fail("--verify-commits needs --allowed-signers FILE and/or --gpg-keyring FILE");
  ResolvedSource out;
  std::optional<std::string> url;
  for (const auto& location : options.locations) {
    if (!providers::is_git_url(location)) {
      out.paths.emplace_back(location);
      continue;
    }
    if (url) return fail("only one -s may be a git URL (got " + providers::redact_git_url(*url) + " and " +
                         providers::redact_git_url(location) + ")");
    url = location;
  }
  if (!url) {
    if (!options.ref.empty() || !options.path.empty())
      return fail("--ref and --path need a git URL in -s (e.g. file:///srv/git/clusters.git)");
    if (options.commits.verify) return fail("--verify-commits needs a git URL in -s");
    out.revision.source = describe_locations(options.locations);
    return out;
  }

  auto sources = sources_dir(options.state_dir);
  if (!sources) return fail("git " + providers::redact_git_url(*url) + ": " + sources.error().message);
  providers::GitSourceOptions git;
  git.url = *url;
  git.ref = options.ref;
  git.cache_dir = *sources / cache_name(*url);
  git.ssh_identity = options.ssh_identity;
  git.known_hosts = options.known_hosts;
  git.new_host_keys = options.new_host_keys;
  git.on_host_key_recorded = options.on_host_key_recorded;
  git.credentials_file = options.credentials_file;
  git.timeout = options.fetch_timeout;
  auto synced = options.fetch_executable.empty() ? providers::sync_git_source(git)
                                                 : sync_in_child(git, options.fetch_executable, options.cancel);
  PGC_TRY(synced);
  if (options.warnings) options.warnings->insert(options.warnings->end(), synced->warnings.begin(), synced->warnings.end());
  std::string shown = providers::redact_git_url(*url);
  Revision& r = out.revision;
  r.source = shown;
  r.ref = options.ref;
  r.sha = synced->revision.sha;
  r.short_sha = synced->revision.short_sha;
  r.subject = synced->revision.subject;
  r.rewound = synced->rewound;
  r.stale = !synced->fetched;
  r.fetch_error = synced->fetch_error;

  std::string where = "git " + shown + " at " + r.short_sha;
  if (options.commits.verify) {
    providers::SignerPolicy policy;
    policy.ssh_allowed_signers = options.commits.ssh_allowed_signers;
    policy.gpg_keyring = options.commits.gpg_keyring;
    auto signer = providers::verify_commit_signature(synced->signature, r.short_sha, policy);
    if (!signer) return std::unexpected(signer.error().with_context(where + ": --verify-commits"));
  }
  auto dir = inside(synced->checkout, options.path, where);
  PGC_TRY(dir);
  // Local directories first (e.g. the Hosts of this site), then the repository's manifests.
  out.paths.push_back(*dir);
  out.aliases.emplace_back(synced->checkout.string() + "/", shown + "@" + r.short_sha + ":");
  return out;
}

}  // namespace pgc::reconciler

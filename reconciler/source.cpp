#include "reconciler/source.hpp"

#include <cctype>
#include <cstdint>
#include <cstdio>

#include "providers/git/git_source.hpp"
#include "providers/process/commit_verification.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

// A stable, readable directory name for a URL: its safe characters plus an FNV-1a hash.
std::string cache_name(const std::string& url) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : url) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  std::string safe;
  for (char c : providers::redact_git_url(url))
    if (safe.size() < 48) safe += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return safe + "-" + hex;
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

std::string apply_aliases(std::string text, const std::vector<std::pair<std::string, std::string>>& aliases) {
  for (const auto& [from, to] : aliases) {
    if (from.empty()) continue;
    for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
      text.replace(pos, from.size(), to);
  }
  return text;
}

Result<ResolvedSource> resolve_source(const SourceOptions& options) {
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
    out.revision.source = join(options.locations, ", ");
    return out;
  }

  providers::GitSourceOptions git;
  git.url = *url;
  git.ref = options.ref;
  git.cache_dir = options.state_dir / "sources" / cache_name(*url);
  git.ssh_identity = options.ssh_identity;
  git.known_hosts = options.known_hosts;
  git.new_host_keys = options.new_host_keys;
  git.on_host_key_recorded = options.on_host_key_recorded;
  auto synced = providers::sync_git_source(git);
  if (!synced) return std::unexpected(synced.error());
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
  if (!dir) return std::unexpected(dir.error());
  // Local directories first (e.g. the Hosts of this site), then the repository's manifests.
  out.paths.push_back(*dir);
  out.aliases.emplace_back(synced->checkout.string() + "/", shown + "@" + r.short_sha + ":");
  return out;
}

}  // namespace pgc::reconciler

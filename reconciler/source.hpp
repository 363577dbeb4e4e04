#pragma once
// Where the manifests come from: local directories/files, or a git repository (clone cached in
// the state dir, fetched on every run) at a ref and a path inside it, optionally with the head
// commit's signature verified against allowed signers.

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "reconciler/history.hpp"
#include "util/expected.hpp"
#include "util/known_hosts.hpp"

namespace pgc::reconciler {

struct CommitPolicy {
  bool verify = false;                          // --verify-commits
  std::filesystem::path ssh_allowed_signers;    // ssh-keygen allowed_signers file
  std::filesystem::path gpg_keyring;            // keyring for gpgv
};

struct SourceOptions {
  std::vector<std::string> locations;  // -s: directories, files or git URLs (at most one URL)
  std::string ref;                     // --ref for the git URL
  std::string path;                    // --path inside the repository
  std::filesystem::path state_dir;     // the clone lives in <state dir>/sources/<hash of URL>
  std::string ssh_identity;            // for ssh:// URLs
  std::string known_hosts;
  NewHostKeys new_host_keys = NewHostKeys::refuse;  // --ssh-accept-new-host-keys: accept
  HostKeyRecorder on_host_key_recorded;             // logs each key accept-new recorded
  CommitPolicy commits;
};

struct ResolvedSource {
  std::vector<std::filesystem::path> paths;  // what to load, in order
  Revision revision;                         // the commit (git) or the directories (plain)
  // Checkout prefixes and how to show them in messages ("<url>@<short>:").
  std::vector<std::pair<std::string, std::string>> aliases;
};

// Fetches and checks out the git source (if any) and returns what to load. A failed fetch with
// a last good revision is not an error: the revision is marked stale and the error kept. A
// commit that fails verification, a missing --path, a second URL or an unknown ref is an error.
Result<ResolvedSource> resolve_source(const SourceOptions& options);

// Text with every alias prefix replaced (for diagnostics printed from a checkout).
std::string apply_aliases(std::string text, const std::vector<std::pair<std::string, std::string>>& aliases);

}  // namespace pgc::reconciler

#pragma once
// Where the manifests come from: local directories/files, or a git repository (clone cached in
// the state dir, fetched on every run) at a ref and a path inside it, optionally with the head
// commit's signature verified against allowed signers.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "reconciler/revision.hpp"
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
  std::filesystem::path state_dir;     // the clone lives in <state dir>/sources/<sha256 of the URL without credentials>
  std::string ssh_identity;            // for ssh:// URLs
  std::string known_hosts;
  NewHostKeys new_host_keys = NewHostKeys::refuse;  // --ssh-accept-new-host-keys: accept
  HostKeyRecorder on_host_key_recorded;             // logs each key accept-new recorded
  CommitPolicy commits;
  // https credentials when the URL has none (git-credential-store format; see git_credentials.hpp).
  std::filesystem::path credentials_file;
  std::chrono::milliseconds fetch_timeout{60000};  // hard: the fetch runs in a child killed at it
  // The binary that runs the fetch (`<it> __git-sync`): pgconverge itself (k_self_executable).
  // Empty: in this process, without a hard deadline — for tests of the core only.
  std::string fetch_executable;
  const std::atomic<bool>* cancel = nullptr;  // set (e.g. by SIGTERM): the fetch is killed at once
  std::vector<std::string>* warnings = nullptr;  // told of e.g. a damaged cache moved aside
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

// The locations as messages and records show them: no URL credentials (ssh keeps its user).
std::string describe_locations(const std::vector<std::string>& locations);

// Text with every alias prefix replaced (for diagnostics printed from a checkout).
std::string apply_aliases(std::string text, const std::vector<std::pair<std::string, std::string>>& aliases);

}  // namespace pgc::reconciler

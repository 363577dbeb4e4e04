#pragma once
// The manifest source when it is a git repository: a bare clone cached on local disk, fetched on
// every sync, and one commit's tree checked out as plain files (libgit2; no libgit2 header here).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/git/commit_signature.hpp"
#include "util/expected.hpp"
#include "util/known_hosts.hpp"

namespace pgc::providers {

// One commit, as resolved by a sync.
struct GitRevision {
  std::string sha;         // 40 hex digits
  std::string short_sha;   // the first 7 of them
  std::string subject;     // the first paragraph of the message, on one line
  std::string author;      // "Name <email>"
  std::int64_t commit_time = 0;  // committer time, seconds since the epoch
};

struct GitSourceOptions {
  std::string url;                  // file://, https://, ssh://user@host[:port]/path, scp-like user@host:path, or a local repository path
  std::string ref;                  // branch, tag or full/short commit SHA; empty → the remote's default branch (HEAD)
  std::filesystem::path cache_dir;  // where this source's clone and checkouts live (created if absent)
  std::string ssh_identity;         // private key for ssh URLs (empty → ssh agent); "<key>.pub" is used when present
  std::string known_hosts;          // known_hosts file for ssh URLs; a mismatching host key → hard error, always
  NewHostKeys new_host_keys = NewHostKeys::refuse;  // an unlisted host: refuse, or accept and record it (accept-new)
  HostKeyRecorder on_host_key_recorded;             // told of each key recorded; may be empty
  std::chrono::milliseconds timeout{30000};  // for the whole fetch and for the cache's lock; see sync_git_source
  // https credentials when the URL carries none: a git-credential-store file (git_credentials.hpp).
  std::filesystem::path credentials_file;
  bool offline = false;  // no fetch: the last good revision (after a fetch that was killed at its deadline)
  std::string offline_reason;  // why, recorded as the fetch error
};

struct GitSync {
  GitRevision revision;
  std::filesystem::path checkout;           // cache_dir/checkouts/<sha>: exactly that commit's regular files and directories
  bool fetched = true;                      // false: the fetch failed and this is the last good revision from the cache
  std::string fetch_error;                  // why, when !fetched
  std::optional<std::string> previous_sha;  // the revision the previous sync resolved (kept in the cache), if any
  bool rewound = false;                     // the new revision does not descend from previous_sha (force-push / rewind)
  CommitSignature signature;                // empty when the commit is unsigned; verify_commit_signature checks it
  std::vector<std::string> warnings;        // e.g. a damaged cache moved aside and cloned anew
};

// Clones once into cache_dir/repo.git (bare), then fetches branches and tags (with prune),
// resolves ref (branch, then tag peeled to its commit, then commit id or unique prefix), writes
// the commit's tree to cache_dir/checkouts/<sha> (built in a temp dir and renamed into place;
// reused when present; only the newest few are kept) and records the sha as the last good
// revision. Symlinks and submodules in the tree are skipped; entry names that could escape the
// checkout ("..", ".git", names with '/') are an error. If the fetch fails and the last good
// revision was resolved for the same ref, returns it with fetched=false and the reason; without
// one the fetch error is returned. libgit2 never sees the URL's userinfo (ssh keeps its user):
// credentials reach it through its credential callback — the URL's, else those of
// options.credentials_file — so errors name the URL without them and the step:
// `git https://host/r.git: fetch: <libgit2 message>` (any secret in a message becomes ***).
// FETCH_HEAD is not written. The cache's lock is waited for up to options.timeout; stale ref
// locks of a fetch that was killed are removed under it; a cache libgit2 cannot open is moved
// aside (repo.git.damaged-<time>, with a warning) and cloned anew. ssh host keys are checked against
// options.known_hosts only (plain or [host]:port names, no hashed entries); a mismatch names both
// fingerprints, and an unlisted host is refused unless new_host_keys is accept (then its key is
// appended as by append_known_hosts_entry and on_host_key_recorded is told). The timeout is
// checked whenever libgit2 reports progress (libgit2 1.5 has no socket timeouts), so a server
// that stalls without sending anything is bounded only by the operating system's TCP timeouts.
// Thread-safe; concurrent syncs of one cache_dir (threads or processes) wait for each other.
Result<GitSync> sync_git_source(const GitSourceOptions& options);

// True for what sync_git_source accepts as a URL rather than a plain manifest directory:
// file://, https://, http://, ssh://, git:// and scp-like user@host:path; a local directory,
// even one that is a git repository, is not a URL (the caller uses it as a directory).
bool is_git_url(std::string_view source);

// The URL as messages show it: no userinfo, except an ssh URL's user (https://host/r.git,
// ssh://git@host/r.git) — see util/url_userinfo.hpp.
std::string redact_git_url(std::string_view url);

}  // namespace pgc::providers

#pragma once
// known_hosts files as OpenSSH reads them: what to do with a host that is not listed, and
// recording such a host's key on first use (StrictHostKeyChecking=accept-new). Shared by the
// SSH provider (libssh) and the git provider (libgit2); no library header here.

#include <filesystem>
#include <functional>
#include <string>

#include "util/expected.hpp"

namespace pgc {

// What a connection does with a host that known_hosts does not list. A key that differs from
// the one listed, or a key of another type, is refused either way.
enum class NewHostKeys { refuse, accept };

// A host key that accept-new appended to a known_hosts file.
struct RecordedHostKey {
  std::string who;          // the connection, as in its messages: "host pg-2 (10.0.0.12)", "git ssh://…"
  std::string name;         // the host as known_hosts names it: "10.0.0.12" or "[10.0.0.12]:2222"
  std::string type;         // "ssh-ed25519"
  std::string fingerprint;  // "SHA256:…", as ssh-keygen -l prints it
  std::string file;         // the known_hosts file
};

// "host pg-2 (10.0.0.12): ssh: recorded the new host key ssh-ed25519 SHA256:… for 10.0.0.12 in
// /root/.ssh/known_hosts (accept-new)".
std::string describe(const RecordedHostKey& key);

// Told of every key recorded; called from the connecting thread, so it must be thread-safe.
using HostKeyRecorder = std::function<void(const RecordedHostKey&)>;

// Decides, under the lock, whether the entry is still to be added: true to append it, false when
// nothing is to be written (another connection recorded the key meanwhile), or an error to return
// (the host now has another key). Gets the file's current content ("" when it does not exist).
using StillUnknown = std::function<Result<bool>(const std::string& current)>;

// Appends one known_hosts line (entry, ending in '\n') to file without ever leaving a truncated
// file: the whole new content goes to a temp file in the same directory, which is fsynced, given
// the file's mode and owner (0644 and the caller's for a new file) and renamed over it; then the
// directory is fsynced. A symlink is followed (its target is replaced). A missing directory is
// created with mode 0700, as ssh does for ~/.ssh. Readers (libssh, ssh) see the old file or the
// new one, never a part. Holds an exclusive flock on the directory from reading the file to the
// rename, so concurrent callers of this function (threads or processes) never lose each other's
// entries; still_unknown is called under it. (A writer that takes no lock, such as ssh itself
// appending in the same instant, can still lose its line.) Returns whether the entry was
// written. Thread-safe.
Result<bool> append_known_hosts_entry(const std::filesystem::path& file, const std::string& entry,
                                      const StillUnknown& still_unknown);

}  // namespace pgc

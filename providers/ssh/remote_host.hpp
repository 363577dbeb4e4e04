#pragma once
// A host reached over SSH: run commands and write files atomically. The interface is what the
// core uses; connect_ssh() returns the libssh implementation (no libssh header here).

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/expected.hpp"
#include "util/known_hosts.hpp"

namespace pgc::providers {

struct CommandResult {
  int exit_status = -1;
  std::string out;
  std::string err;
};

// File ownership and permissions for write_file.
struct FileMode {
  std::string owner = "root";
  std::string group = "root";
  unsigned mode = 0644;
};

// One connection to one host, reused for a whole run. Thread-safe: each command is a channel of
// the host's one SSH session (tunnels.hpp's SshConnection), and commands may run concurrently.
class RemoteHost {
 public:
  virtual ~RemoteHost() = default;

  // The host's name for messages, e.g. "pg-2 (10.250.0.12)".
  [[nodiscard]] virtual std::string describe() const = 0;

  // Runs argv (each word shell-quoted; no value ever reaches the shell unquoted) as root
  // (through `sudo -n` for non-root users). Fails only when the command could not be run or
  // timed out; a non-zero exit status is a result, not a failure (a command killed by a signal
  // reports 128 + its number, and a line saying so is appended to err). argv[0] must be a
  // program, not a shell builtin: the host runs it under timeout(1), which stops it shortly
  // after we give up waiting. stdin is empty.
  virtual Result<CommandResult> run(const std::vector<std::string>& argv,
                                    std::chrono::milliseconds timeout) = 0;

  // Runs a fixed shell script (trusted text written by pgconverge, never manifest values) with
  // `sh -s`, the text on stdin. Values must be passed as positional arguments, which are
  // quoted. Commands in the script read an empty stdin.
  virtual Result<CommandResult> run_script(const std::string& script,
                                           const std::vector<std::string>& args,
                                           std::chrono::milliseconds timeout) = 0;

  // Runs argv like run(), with input on its stdin: for data that must appear neither on a command
  // line nor in a file on the host (SQL that sets a password).
  virtual Result<CommandResult> run_with_input(const std::vector<std::string>& argv, const std::string& input,
                                               std::chrono::milliseconds timeout) = 0;

  // Every path below is walked without following a symbolic link that a non-root user could
  // swap (one in a directory that is not root's alone): such a link is an error naming it, so
  // root never reads, writes, chowns or chmods through a link another user planted
  // (providers/ssh/file_programs.hpp).

  // Reads a file; nullopt when it does not exist (a dangling symlink counts as absent). Any other
  // failure (a directory, not a regular file, a link as above, a timeout) is an error.
  virtual Result<std::optional<std::string>> read_file(const std::string& path) = 0;

  // Writes content to path atomically: a new temp file in the same directory (O_EXCL,
  // O_NOFOLLOW), fsync, chown/chmod by descriptor, rename over path, fsync the directory. Never
  // leaves a half-written file at path. path must be absolute and its parent directory must
  // exist (see make_directory); content may be binary and never appears on a command line. A
  // symlink at path is replaced, not followed.
  virtual Result<void> write_file(const std::string& path, const std::string& content,
                                  const FileMode& mode) = 0;

  // What make_directory does with a directory that exists already.
  enum class ExistingDirectory {
    keep,   // leave it as it is, whoever owns it
    owned,  // it must belong to mode.owner already (never re-owned: an error otherwise); its
            // group and mode are set
  };

  // Creates directory path (and missing ones above it, root:root 0755) with mode; only a
  // directory it created is chowned. path must be absolute.
  virtual Result<void> make_directory(const std::string& path, const FileMode& mode, ExistingDirectory existing) = 0;
};

struct SshOptions {
  std::string host_name;          // Host metadata.name, for messages
  std::string address;
  int port = 22;
  std::string user = "root";
  std::string identity_file;      // private key; empty → ssh-agent, then ~/.ssh/id_*
  std::string known_hosts_file;   // strict checking; empty → ~/.ssh/known_hosts
  NewHostKeys new_host_keys = NewHostKeys::refuse;  // accept: record an unlisted host's key (accept-new)
  HostKeyRecorder on_host_key_recorded;             // told of each key recorded; may be empty
  std::chrono::milliseconds connect_timeout{10000};  // also bounds each blocking SSH round trip
  std::chrono::milliseconds file_timeout{60000};     // for read_file and write_file
};

// Connects and authenticates with strict host key checking: a changed host key, or a key of
// another type than known_hosts lists, is an error naming the host and both fingerprints ("host
// pg-2 (10.0.0.12): ssh: host key mismatch for 10.0.0.12: the server offered ssh-ed25519
// SHA256:…, but FILE lists ssh-ed25519 SHA256:… (line 3); …"), whatever new_host_keys says. A
// host that known_hosts does not list (or a missing known_hosts) is an error too, unless
// new_host_keys is accept: then its key is appended to known_hosts_file before logging in (see
// append_known_hosts_entry) and on_host_key_recorded is told, like OpenSSH's
// StrictHostKeyChecking=accept-new. Otherwise known_hosts is never written. Only
// known_hosts_file is consulted (not the global /etc/ssh/ssh_known_hosts) and ~/.ssh/config is
// not read: SshOptions is the whole configuration. If the connection is later lost, the call
// that notices fails and the next call reconnects (verifying the host key again); a failed
// command is never retried. (open_ssh() in tunnels.hpp gives the same session's forwards too.)
Result<std::unique_ptr<RemoteHost>> connect_ssh(const SshOptions& options);

}  // namespace pgc::providers

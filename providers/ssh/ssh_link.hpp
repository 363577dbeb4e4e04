#pragma once
// The one SSH session to one host (ssh_link.cpp): a pump thread owns it and services, in one
// poll loop, the commands that RemoteHost runs (one session channel each) and the forwards that
// Tunnels offers (direct-tcpip channels). Internal to providers/ssh; no libssh header here.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "providers/ssh/remote_host.hpp"
#include "providers/ssh/tunnels.hpp"
#include "util/expected.hpp"

namespace pgc::providers::ssh_link {

// One command for the pump: the exec string (already quoted and under timeout(1)), its stdin
// (none: an empty one), how long to wait for it, and what it is for messages ("running psql").
struct Exec {
  std::string command_line;
  std::optional<std::string> input;
  std::chrono::milliseconds timeout{0};
  std::string what;
};

class Link : public SshConnection {
 public:
  // Runs exec on a new channel of the session and waits for its exit status, both output
  // streams and the close, within exec.timeout (counted from the call). Thread-safe; calls from
  // several threads run concurrently on one session. Fails only when the command could not be
  // run, timed out or wrote too much; a non-zero exit status is a result (remote_host.hpp).
  virtual Result<CommandResult> execute(Exec exec) = 0;
  // The SSH user, for the front end's command lines (sudo for non-root).
  [[nodiscard]] virtual const SshOptions& options() const = 0;
};

// Connects and authenticates (ssh_session.hpp's rules), then starts the pump thread.
Result<std::shared_ptr<Link>> open_link(const SshOptions& options);

// The RemoteHost front end (ssh_host.cpp): builds command lines and file programs, and runs
// them through link.
std::unique_ptr<RemoteHost> make_remote_host(std::shared_ptr<Link> link);

}  // namespace pgc::providers::ssh_link

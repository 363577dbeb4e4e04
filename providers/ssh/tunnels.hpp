#pragma once
// TCP forwarding through one host's SSH session (direct-tcpip channels), so that pgconverge
// reaches a member's PostgreSQL and Patroni REST API with no port open but the host's sshd.
// No libssh header here: open_tunnels() returns the libssh implementation.

#include <memory>
#include <string>

#include "providers/ssh/remote_host.hpp"
#include "util/expected.hpp"

namespace pgc::providers {

// One SSH session to one host (see SshConnection), owned by one pump thread (libssh sessions are
// not thread-safe), that listens on unix sockets in a private directory (mkdtemp, 0700: no other local user can
// use the forwarding) and, for each connection accepted there, opens a direct-tcpip channel from
// the host to the target and carries bytes both ways. The destructor closes every channel and
// connection, removes the sockets and the directory, and joins the thread. Thread-safe.
class Tunnels {
 public:
  virtual ~Tunnels() = default;

  // The path of a unix socket that reaches address:port as the host sees it (a member's own
  // address, 127.0.0.1 for a service that listens only there). The socket is made at the first
  // call for a target and kept until the end. Each target has a directory of its own, and the
  // socket is named `.s.PGSQL.<port>` in it: libpq connects with host=<that directory>
  // port=<port>, an HTTP client to the path itself.
  virtual Result<std::string> local_socket(const std::string& address, int port) = 0;

  // Why the most recent connection to address:port failed inside the tunnel, when it did: the
  // channel was refused ("host pg-1 (10.0.0.11): ssh: forwarding to 10.0.0.11:5432: administratively
  // prohibited (…)"), or the session was lost. The client of that connection only saw it closed.
  // Cleared by the next connection that gets through. Empty when nothing failed.
  [[nodiscard]] virtual std::string last_failure(const std::string& address, int port) const = 0;

  // "pg-1 (10.0.0.11)", for messages.
  [[nodiscard]] virtual std::string describe() const = 0;
};

// One SSH connection to one host for everything pgconverge does there: the forwards (Tunnels)
// and the commands (remote_host()) are channels of ONE session, owned by one pump thread, so a
// run makes one SSH handshake and authentication per host. Thread-safe; the connection lives
// until its last user (this pointer, a RemoteHost from it) is gone.
class SshConnection : public Tunnels {
 public:
  // A RemoteHost whose commands run on this connection's session (each its own channel;
  // several threads may run commands at once). It keeps the connection open.
  virtual std::unique_ptr<RemoteHost> remote_host() = 0;
};

// Connects and authenticates as connect_ssh() does (same host key and authentication rules and
// messages), then starts the pump thread. A lost session is opened again when a new local
// connection or command needs it (connect_ssh()'s rules: the call that notices fails).
Result<std::shared_ptr<SshConnection>> open_ssh(const SshOptions& options);

// Tunnels alone (open_ssh() whose commands are not used).
Result<std::unique_ptr<Tunnels>> open_tunnels(const SshOptions& options);

}  // namespace pgc::providers

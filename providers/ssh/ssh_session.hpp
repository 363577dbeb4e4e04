#pragma once
// Opening one authenticated libssh session with pgconverge's rules (strict host keys, accept-new
// only when asked, the identity or the agent): used by the one session per host (ssh_link.cpp).
// Internal to providers/ssh; libssh's types are only declared here, so the header stays free of
// the C library.

#include <memory>
#include <string>

#include "providers/ssh/remote_host.hpp"
#include "util/expected.hpp"

struct ssh_session_struct;
struct ssh_key_struct;

namespace pgc::providers::ssh_login {

struct SessionFree {
  void operator()(ssh_session_struct* session) const;  // disconnects, then frees
};
struct KeyFree {
  void operator()(ssh_key_struct* key) const;
};
using SessionPtr = std::unique_ptr<ssh_session_struct, SessionFree>;
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyFree>;

// What every session to one host needs besides the options: checked once, reused on reconnect.
struct Login {
  std::string who;          // "host pg-2 (10.0.0.12)", the prefix of every message
  std::string known_hosts;  // the file checked (options' or ~/.ssh/known_hosts)
  KeyPtr identity;          // the loaded private key, or null for the agent and ~/.ssh/id_*
};

// Checks options (address, port, user, timeout) and loads the identity file.
Result<Login> prepare_login(const SshOptions& options);

// Connects, verifies the host key (connect_ssh's rules, remote_host.hpp) and authenticates; the
// session is blocking, each round trip bounded by options.connect_timeout.
Result<SessionPtr> open_session(const SshOptions& options, const Login& login);

// libssh's last error on a session, never empty.
std::string error_of(ssh_session_struct* session);

}  // namespace pgc::providers::ssh_login

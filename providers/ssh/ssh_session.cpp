// Opening an authenticated libssh session: host key verification (strict, or accept-new when
// asked, with both fingerprints on a mismatch) and authentication (the identity file, else the
// agent and ~/.ssh/id_*). Used by ssh_link.cpp.

#include "providers/ssh/ssh_session.hpp"

#include <libssh/libssh.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <vector>

#include "util/known_hosts.hpp"
#include "util/strings.hpp"

namespace pgc::providers::ssh_login {

void SessionFree::operator()(ssh_session_struct* session) const {
  ssh_disconnect(session);
  ssh_free(session);
}

void KeyFree::operator()(ssh_key_struct* key) const { ssh_key_free(key); }

std::string error_of(ssh_session_struct* session) {
  const char* text = ssh_get_error(session);
  return text != nullptr && *text != '\0' ? std::string(text) : std::string("unknown libssh error");
}

namespace {

struct CharFree {
  void operator()(char* text) const { ssh_string_free_char(text); }
};
struct EntryFree {
  void operator()(ssh_knownhosts_entry* entry) const { ssh_knownhosts_entry_free(entry); }
};
struct HashFree {
  void operator()(unsigned char* hash) const { ssh_clean_pubkey_hash(&hash); }
};
using CharPtr = std::unique_ptr<char, CharFree>;
using HashPtr = std::unique_ptr<unsigned char, HashFree>;
using EntryPtr = std::unique_ptr<ssh_knownhosts_entry, EntryFree>;

// The path of the user's own known_hosts, as OpenSSH would use it.
std::string default_known_hosts() {
  std::string home;
  if (const char* env = std::getenv("HOME"); env != nullptr && *env != '\0') home = env;
  else if (const passwd* pw = getpwuid(geteuid()); pw != nullptr && pw->pw_dir != nullptr) home = pw->pw_dir;
  return home + "/.ssh/known_hosts";
}

// How libssh (like OpenSSH) names the host in known_hosts: lower case, [host]:port off port 22.
std::string known_hosts_name(const SshOptions& options) {
  std::string host = lower(options.address);
  if (options.port == 22) return host;
  return "[" + host + "]:" + std::to_string(options.port);
}


Result<KeyPtr> load_identity(const std::string& path, const std::string& who) {
  ssh_key raw = nullptr;
  int rc = ssh_pki_import_privkey_file(path.c_str(), nullptr, nullptr, nullptr, &raw);
  KeyPtr key(raw);
  if (rc == SSH_OK && key) return key;
  if (access(path.c_str(), R_OK) != 0)
    return fail(who + ": ssh: cannot read private key " + path + ": " + std::strerror(errno));
  return fail(who + ": ssh: cannot load private key " + path +
              ": not a private key, or protected by a passphrase (use ssh-agent for those)");
}

// "SHA256:…" as ssh-keygen -l prints it.
std::string fingerprint_of(ssh_key key) {
  unsigned char* raw_hash = nullptr;
  std::size_t hash_len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &raw_hash, &hash_len) != 0) return "SHA256:?";
  HashPtr hash(raw_hash);
  CharPtr printed(ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash.get(), hash_len));
  return printed ? printed.get() : "SHA256:?";
}

std::string type_of(ssh_key key) {
  const char* name = ssh_key_type_to_char(ssh_key_type(key));
  return name != nullptr ? name : "unknown";
}

// A key known_hosts lists for a host, for a mismatch message.
struct ListedKey {
  std::string type;
  std::string fingerprint;
  int line = 0;
};

// The keys known_hosts lists for name (hashed names included): libssh reports a mismatch without
// the entry it compared with.
std::vector<ListedKey> listed_keys(const std::string& known_hosts, const std::string& name) {
  std::vector<ListedKey> out;
  std::ifstream in(known_hosts);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    auto text = trim(line);
    if (text.empty() || text.front() == '#') continue;
    ssh_knownhosts_entry* raw = nullptr;
    if (ssh_known_hosts_parse_line(name.c_str(), text.c_str(), &raw) != SSH_OK || raw == nullptr) continue;
    EntryPtr entry(raw);
    if (entry->publickey != nullptr)
      out.push_back(ListedKey{type_of(entry->publickey), fingerprint_of(entry->publickey), number});
  }
  return out;
}

// The error for a host whose key is not the one known_hosts lists, with both fingerprints:
// "… the server offered ssh-ed25519 SHA256:…, but FILE lists ssh-ed25519 SHA256:… (line 3); …".
Error mismatch(const std::string& who, const std::string& name, const std::string& type,
               const std::string& fingerprint, const std::string& known_hosts) {
  std::vector<std::string> listed;
  bool same_type = false;
  for (const auto& key : listed_keys(known_hosts, name)) {
    listed.push_back(key.type + " " + key.fingerprint + " (line " + std::to_string(key.line) + ")");
    same_type = same_type || key.type == type;
  }
  std::string known = listed.empty() ? std::string("another key") : join(listed, ", ");
  return Error{who + ": ssh: host key mismatch for " + name + ": the server offered " + type + " " + fingerprint +
               ", but " + known_hosts + (same_type ? " lists " : " lists only another type of key: ") + known +
               "; refusing to connect (if the host was reinstalled, remove the old key with ssh-keygen -R " +
               shell_quote(name) + " -f " + shell_quote(known_hosts) + ")",
               k_host_key_mismatch};
}

// accept-new: appends the host's key to known_hosts, unless another connection recorded it
// meanwhile (checked again under the file's lock), and tells options.on_host_key_recorded.
Result<void> record_host_key(ssh_session session, const SshOptions& options, const std::string& who,
                             const std::string& known_hosts, const std::string& type, const std::string& fingerprint) {
  const std::string name = known_hosts_name(options);
  const std::string what = who + ": ssh: recording the new host key " + type + " " + fingerprint + " in " + known_hosts;
  char* raw_entry = nullptr;
  if (ssh_session_export_known_hosts_entry(session, &raw_entry) != SSH_OK || raw_entry == nullptr)
    return fail(what + ": " + error_of(session));
  CharPtr entry(raw_entry);
  std::optional<Error> refused;  // still_unknown's own error, which needs no more context
  auto still_unknown = [&](const std::string&) -> Result<bool> {
    switch (ssh_session_is_known_server(session)) {
      case SSH_KNOWN_HOSTS_OK:
        return false;
      case SSH_KNOWN_HOSTS_UNKNOWN:
      case SSH_KNOWN_HOSTS_NOT_FOUND:
        return true;
      case SSH_KNOWN_HOSTS_CHANGED:
      case SSH_KNOWN_HOSTS_OTHER:
        refused = mismatch(who, name, type, fingerprint, known_hosts);
        return std::unexpected(*refused);
      case SSH_KNOWN_HOSTS_ERROR:
        break;
    }
    refused = Error{what + ": " + error_of(session)};
    return std::unexpected(*refused);
  };
  auto appended = append_known_hosts_entry(known_hosts, entry.get(), still_unknown);
  if (!appended) return std::unexpected(refused ? *refused : appended.error().with_context(what));
  if (*appended && options.on_host_key_recorded)
    options.on_host_key_recorded(RecordedHostKey{who, name, type, fingerprint, known_hosts});
  return {};
}

Result<void> verify_host_key(ssh_session session, const SshOptions& options, const std::string& who,
                             const std::string& known_hosts) {
  ssh_key raw_key = nullptr;
  if (ssh_get_server_publickey(session, &raw_key) != SSH_OK)
    return fail(who + ": ssh: reading the server's host key: " + error_of(session));
  KeyPtr key(raw_key);
  const std::string fingerprint = fingerprint_of(key.get());
  const std::string type = type_of(key.get());
  const std::string name = known_hosts_name(options);

  switch (ssh_session_is_known_server(session)) {
    case SSH_KNOWN_HOSTS_OK:
      return {};
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      return std::unexpected(mismatch(who, name, type, fingerprint, known_hosts));
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      if (options.new_host_keys == NewHostKeys::accept)
        return record_host_key(session, options, who, known_hosts, type, fingerprint);
      if (access(known_hosts.c_str(), R_OK) != 0)
        return fail(who + ": ssh: cannot verify the host key (" + fingerprint + "): known_hosts file " +
                    known_hosts + " is missing or unreadable; refusing to connect");
      return fail_permanent(who + ": ssh: unknown host key: the key offered (" + fingerprint + ") for " + name +
                                " is not in " + known_hosts + "; refusing to connect",
                            "an unknown host key is not accepted by waiting");
    case SSH_KNOWN_HOSTS_ERROR:
      return fail(who + ": ssh: checking the host key against " + known_hosts + ": " + error_of(session));
  }
  return fail(who + ": ssh: checking the host key against " + known_hosts + ": unexpected result");
}

Result<void> authenticate(ssh_session session, const SshOptions& options, const std::string& who,
                          ssh_key identity) {
  int rc = SSH_AUTH_DENIED;
  std::string method;
  if (identity != nullptr) {
    method = "key " + options.identity_file;
    rc = ssh_userauth_publickey(session, nullptr, identity);
  } else {
    method = "ssh-agent or ~/.ssh/id_*";
    if (const char* agent = std::getenv("SSH_AUTH_SOCK"); agent != nullptr && *agent != '\0')
      rc = ssh_userauth_agent(session, nullptr);
    if (rc == SSH_AUTH_DENIED) rc = ssh_userauth_publickey_auto(session, nullptr, nullptr);
  }
  switch (rc) {
    case SSH_AUTH_SUCCESS:
      return {};
    case SSH_AUTH_DENIED:  // the server said no: the same key is refused again
      return fail_permanent(who + ": ssh: authentication as " + options.user + " with " + method + " was refused",
                            k_auth_refused);
    case SSH_AUTH_PARTIAL:
      return fail_permanent(who + ": ssh: authentication as " + options.user + " with " + method +
                                " needs a further method (not supported)",
                            k_auth_refused);
    default:
      return fail(who + ": ssh: authentication as " + options.user + ": " + error_of(session));
  }
}

}  // namespace

Result<SessionPtr> open_session(const SshOptions& options, const Login& login) {
  const std::string& who = login.who;
  const std::string& known_hosts = login.known_hosts;
  ssh_key identity = login.identity.get();
  SessionPtr session(ssh_new());
  if (!session) return fail(who + ": ssh: cannot allocate a session");
  ssh_session s = session.get();

  auto ms = options.connect_timeout.count();
  long timeout_s = static_cast<long>(ms / 1000);
  long timeout_us = static_cast<long>(ms % 1000) * 1000;
  unsigned port = static_cast<unsigned>(options.port);
  int nodelay = 1;
  bool process_config = false;
  const char* no_global_known_hosts = "/dev/null";
  struct Setting {
    ssh_options_e option;
    const void* value;
    const char* what;
  };
  const Setting settings[] = {
      {SSH_OPTIONS_PROCESS_CONFIG, &process_config, "config processing"},
      {SSH_OPTIONS_HOST, options.address.c_str(), "address"},
      {SSH_OPTIONS_PORT, &port, "port"},
      {SSH_OPTIONS_USER, options.user.c_str(), "user"},
      {SSH_OPTIONS_TIMEOUT, &timeout_s, "timeout"},
      {SSH_OPTIONS_TIMEOUT_USEC, &timeout_us, "timeout"},
      {SSH_OPTIONS_NODELAY, &nodelay, "TCP_NODELAY"},
      {SSH_OPTIONS_KNOWNHOSTS, known_hosts.c_str(), "known_hosts file"},
      {SSH_OPTIONS_GLOBAL_KNOWNHOSTS, no_global_known_hosts, "global known_hosts file"},
  };
  for (const auto& setting : settings)
    if (ssh_options_set(s, setting.option, setting.value) < 0)
      return fail(who + ": ssh: setting the " + setting.what + ": " + error_of(s));

  if (ssh_connect(s) != SSH_OK)
    return fail(who + ": ssh: cannot connect to port " + std::to_string(options.port) + ": " + error_of(s));
  if (auto verified = verify_host_key(s, options, who, known_hosts); !verified)
    return std::unexpected(verified.error());
  if (auto authenticated = authenticate(s, options, who, identity); !authenticated)
    return std::unexpected(authenticated.error());
  return session;
}

Result<Login> prepare_login(const SshOptions& options) {
  Login login;
  login.who = "host " + options.host_name + " (" + options.address + ")";
  const std::string& who = login.who;
  if (options.address.empty()) return fail(who + ": ssh: no address");
  if (options.port < 1 || options.port > 65535)
    return fail(who + ": ssh: invalid port " + std::to_string(options.port));
  if (options.user.empty()) return fail(who + ": ssh: no user");
  if (options.connect_timeout.count() <= 0) return fail(who + ": ssh: the connect timeout must be positive");
  login.known_hosts = options.known_hosts_file.empty() ? default_known_hosts() : options.known_hosts_file;
  if (!options.identity_file.empty()) {
    auto loaded = load_identity(options.identity_file, who);
    PGC_TRY(loaded);
    login.identity = std::move(*loaded);
  }
  return login;
}

}  // namespace pgc::providers::ssh_login

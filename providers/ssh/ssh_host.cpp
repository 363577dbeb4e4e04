// The libssh implementation of RemoteHost: one SSH session per host, one channel per command.
// Commands run through the remote login shell as `sh -c`-style exec requests; values are
// always shell-quoted (command_line.hpp), scripts and file contents travel on stdin.

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <utility>

#include "providers/ssh/command_line.hpp"
#include "providers/ssh/file_programs.hpp"
#include "providers/ssh/remote_host.hpp"
#include "util/known_hosts.hpp"
#include "util/duration.hpp"
#include "util/strings.hpp"

namespace pgc::providers {
namespace {

using Clock = std::chrono::steady_clock;

// How much longer than our own timeout the host's timeout(1) waits before it stops a command:
// long enough that it never fires while we are still waiting (it starts later than our clock).
constexpr std::chrono::milliseconds k_remote_grace{1000};

struct SessionFree {
  void operator()(ssh_session session) const {
    ssh_disconnect(session);
    ssh_free(session);
  }
};
struct KeyFree {
  void operator()(ssh_key key) const { ssh_key_free(key); }
};
struct ChannelFree {
  void operator()(ssh_channel channel) const { ssh_channel_free(channel); }
};
struct CharFree {
  void operator()(char* text) const { ssh_string_free_char(text); }
};
struct EntryFree {
  void operator()(ssh_knownhosts_entry* entry) const { ssh_knownhosts_entry_free(entry); }
};
struct HashFree {
  void operator()(unsigned char* hash) const { ssh_clean_pubkey_hash(&hash); }
};
// An event that polls one session; taking the session out again returns its socket to the
// session's own poll context, so blocking libssh calls keep working after the event is gone.
struct EventFree {
  ssh_session session = nullptr;
  void operator()(ssh_event event) const {
    ssh_event_remove_session(event, session);
    ssh_event_free(event);
  }
};

using SessionPtr = std::unique_ptr<ssh_session_struct, SessionFree>;
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyFree>;
using ChannelPtr = std::unique_ptr<ssh_channel_struct, ChannelFree>;
using CharPtr = std::unique_ptr<char, CharFree>;
using HashPtr = std::unique_ptr<unsigned char, HashFree>;
using EntryPtr = std::unique_ptr<ssh_knownhosts_entry, EntryFree>;
using EventPtr = std::unique_ptr<ssh_event_struct, EventFree>;

std::string error_of(ssh_session session) {
  const char* text = ssh_get_error(session);
  return text != nullptr && *text != '\0' ? std::string(text) : std::string("unknown libssh error");
}

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

int signal_number(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, int>, 14> k_signals{{
      {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"ILL", SIGILL}, {"ABRT", SIGABRT},
      {"FPE", SIGFPE}, {"KILL", SIGKILL}, {"SEGV", SIGSEGV}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
      {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"BUS", SIGBUS},
  }};
  for (const auto& [known, number] : k_signals)
    if (known == name) return number;
  return 0;
}

std::string octal_mode(unsigned mode) {
  std::array<char, 16> digits{};
  auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), mode, 8);
  std::string text(digits.data(), end);
  return std::string(text.size() < 4 ? 4 - text.size() : 0, '0') + text;
}

// ---- connecting ---------------------------------------------------------------------------

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

Result<SessionPtr> open_session(const SshOptions& options, const std::string& who,
                                const std::string& known_hosts, ssh_key identity) {
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

// ---- running commands ---------------------------------------------------------------------

// More output than this on one stream is a runaway command, not something to hold in memory.
constexpr std::size_t k_max_output = std::size_t{256} << 20;

// What the server has told us about one command so far; filled by libssh callbacks while we
// poll, so both output streams are drained as they arrive and neither can block the other.
struct ChannelState {
  std::string out;
  std::string err;
  bool overflow = false;
  bool eof = false;
  bool closed = false;
  std::optional<int> exit_status;
  std::string exit_signal;

  [[nodiscard]] bool exited() const { return exit_status.has_value() || !exit_signal.empty(); }
  [[nodiscard]] bool finished() const { return closed || (eof && exited()); }

  static int on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self) {
    auto* state = static_cast<ChannelState*>(self);
    std::string& stream = is_stderr != 0 ? state->err : state->out;
    if (stream.size() + len > k_max_output) state->overflow = true;
    else stream.append(static_cast<const char*>(data), len);
    return static_cast<int>(len);
  }
  static void on_eof(ssh_session, ssh_channel, void* self) { static_cast<ChannelState*>(self)->eof = true; }
  static void on_close(ssh_session, ssh_channel, void* self) { static_cast<ChannelState*>(self)->closed = true; }
  static void on_exit_status(ssh_session, ssh_channel, int status, void* self) {
    static_cast<ChannelState*>(self)->exit_status = status;
  }
  static void on_exit_signal(ssh_session, ssh_channel, const char* name, int, const char*, const char*,
                             void* self) {
    static_cast<ChannelState*>(self)->exit_signal = name != nullptr && *name != '\0' ? name : "?";
  }
};

// One exec channel with its callbacks. The callbacks are unregistered before the channel is
// freed: libssh keeps a locally closed channel until the server's close arrives, and later
// packets for it must not reach a ChannelState that no longer exists.
class Command {
 public:
  explicit Command(ssh_session session) : channel_(ssh_channel_new(session)) {
    callbacks_.userdata = &state_;
    callbacks_.channel_data_function = &ChannelState::on_data;
    callbacks_.channel_eof_function = &ChannelState::on_eof;
    callbacks_.channel_close_function = &ChannelState::on_close;
    callbacks_.channel_exit_status_function = &ChannelState::on_exit_status;
    callbacks_.channel_exit_signal_function = &ChannelState::on_exit_signal;
    ssh_callbacks_init(&callbacks_);
    if (channel_) ssh_set_channel_callbacks(channel_.get(), &callbacks_);
  }
  Command(const Command&) = delete;
  Command& operator=(const Command&) = delete;
  ~Command() {
    if (channel_) ssh_remove_channel_callbacks(channel_.get(), &callbacks_);
  }

  [[nodiscard]] ssh_channel channel() const { return channel_.get(); }
  ChannelState& state() { return state_; }

  // Gives up on the command and closes the channel (which closes its pipes). With
  // Signal::yes, first asks sshd to send it SIGTERM; OpenSSH does that for non-root sessions
  // only (for root it refuses and logs an error), so root relies on with_remote_timeout().
  enum class Signal { yes, no };
  void abandon(Signal signal) {
    if (!channel_ || ssh_channel_is_closed(channel_.get()) != 0) return;
    ssh_remove_channel_callbacks(channel_.get(), &callbacks_);
    if (signal == Signal::yes) ssh_channel_request_send_signal(channel_.get(), "TERM");
    ssh_channel_close(channel_.get());
  }

 private:
  ChannelState state_;
  ssh_channel_callbacks_struct callbacks_{};
  ChannelPtr channel_;
};

class SshHost final : public RemoteHost {
 public:
  SshHost(SshOptions options, std::string known_hosts, KeyPtr identity, SessionPtr session)
      : options_(std::move(options)),
        who_("host " + options_.host_name + " (" + options_.address + ")"),
        known_hosts_(std::move(known_hosts)),
        identity_(std::move(identity)),
        session_(std::move(session)) {}

  [[nodiscard]] std::string describe() const override {
    return options_.host_name + " (" + options_.address + ")";
  }

  Result<CommandResult> run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) override {
    auto line = command_line(argv, timeout);
    if (!line) return std::unexpected(line.error().with_context(who_ + ": ssh"));
    return execute(*line, std::nullopt, timeout, "running " + argv.front());
  }

  Result<CommandResult> run_script(const std::string& script, const std::vector<std::string>& args,
                                   std::chrono::milliseconds timeout) override {
    return script_command(script, args, timeout, "running a script");
  }

  Result<CommandResult> run_with_input(const std::vector<std::string>& argv, const std::string& input,
                                       std::chrono::milliseconds timeout) override {
    auto line = command_line(argv, timeout);
    if (!line) return std::unexpected(line.error().with_context(who_ + ": ssh"));
    return execute(*line, std::string_view(input), timeout, "running " + argv.front());
  }

  Result<std::optional<std::string>> read_file(const std::string& path) override {
    const std::string what = "reading " + path;
    if (!starts_with(path, "/")) return fail(who_ + ": " + what + ": the path must be absolute");
    auto result = file_program(read_file_program(), {path}, std::nullopt, what);
    PGC_TRY(result);
    if (result->exit_status == 0) return std::optional<std::string>(std::move(result->out));
    if (result->exit_status == 3 && result->out.empty()) return std::optional<std::string>();
    return fail(who_ + ": " + what + ": " + failure_text(*result));
  }

  Result<void> write_file(const std::string& path, const std::string& content, const FileMode& mode) override {
    const std::string what = "writing " + path;
    if (!starts_with(path, "/") || path.back() == '/')
      return fail(who_ + ": " + what + ": the path must be absolute and name a file");
    if (mode.mode > 07777) return fail(who_ + ": " + what + ": invalid mode " + octal_mode(mode.mode));
    if (mode.owner.empty() || mode.group.empty())
      return fail(who_ + ": " + what + ": owner and group must not be empty");
    // The size is checked so that a connection lost mid-transfer (which ends stdin early) can
    // never be renamed into place.
    auto result = file_program(write_file_program(),
                               {path, mode.owner, mode.group, octal_mode(mode.mode), std::to_string(content.size())},
                               std::string_view(content), what);
    PGC_TRY(result);
    if (result->exit_status != 0) return fail(who_ + ": " + what + ": " + failure_text(*result));
    return {};
  }

  Result<void> make_directory(const std::string& path, const FileMode& mode, ExistingDirectory existing) override {
    const std::string what = "creating directory " + path;
    if (!starts_with(path, "/")) return fail(who_ + ": " + what + ": the path must be absolute");
    if (mode.mode > 07777) return fail(who_ + ": " + what + ": invalid mode " + octal_mode(mode.mode));
    if (mode.owner.empty() || mode.group.empty())
      return fail(who_ + ": " + what + ": owner and group must not be empty");
    auto result = file_program(make_directory_program(),
                               {path, mode.owner, mode.group, octal_mode(mode.mode),
                                existing == ExistingDirectory::keep ? "keep" : "owned"},
                               std::nullopt, what);
    PGC_TRY(result);
    if (result->exit_status != 0) return fail(who_ + ": " + what + ": " + failure_text(*result));
    return {};
  }

 private:
  // The message for a command that ran and failed: its stderr, else its exit status.
  static std::string failure_text(const CommandResult& result) {
    std::string err = trim(result.err);
    std::string status = "exit status " + std::to_string(result.exit_status);
    return err.empty() ? status : err + " (" + status + ")";
  }

  // Runs one of file_programs.hpp's programs with `perl -e` (trusted text; values as arguments
  // after --, content on stdin) within the file timeout.
  Result<CommandResult> file_program(const std::string& program, std::vector<std::string> args,
                                     std::optional<std::string_view> input, const std::string& what) {
    std::vector<std::string> argv{"perl", "-e", program, "--"};
    argv.insert(argv.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
    auto line = command_line(argv, options_.file_timeout);
    if (!line) return fail(who_ + ": " + what + ": " + line.error().message);
    return execute(*line, input, options_.file_timeout, what);
  }

  Result<CommandResult> script_command(const std::string& script, const std::vector<std::string>& args,
                                       std::chrono::milliseconds timeout, const std::string& what) {
    std::vector<std::string> argv{"sh", "-s", "--"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto line = command_line(argv, timeout);
    if (!line) return fail(who_ + ": ssh: " + what + ": " + line.error().message);
    auto input = script_stdin(script);
    if (!input) return fail(who_ + ": ssh: " + what + ": " + input.error().message);
    return execute(*line, std::string_view(*input), timeout, what);
  }

  // The exec string for argv: quoted, under sudo for non-root users, and under timeout(1) so
  // the host stops the command soon after we stop waiting for it.
  Result<std::string> command_line(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) const {
    if (auto plain = build_command_line(argv, options_.user); !plain) return plain;  // messages name argv
    return build_command_line(with_remote_timeout(argv, timeout + k_remote_grace), options_.user);
  }

  [[nodiscard]] bool have_session() const {
    return session_ && !broken_ && ssh_is_connected(session_.get()) != 0;
  }

  // A usable session: the current one, or a new one when it was lost or broke.
  Result<ssh_session> session() {
    if (have_session()) return session_.get();
    session_.reset();
    broken_ = false;
    auto fresh = open_session(options_, who_, known_hosts_, identity_.get());
    PGC_TRY(fresh);
    session_ = std::move(*fresh);
    return session_.get();
  }

  // The message for an SSH-level failure; such a failure leaves the session in an unknown
  // state, so the next call reconnects.
  Error transport_error(const std::string& what, const std::string& step) {
    std::string detail = session_ ? error_of(session_.get()) : std::string("no session");
    broken_ = true;
    return Error{who_ + ": ssh: " + what + ": " + step + ": " + detail};
  }

  // An open session channel. A reused session that cannot open one has gone stale (the peer
  // or something in between dropped the idle connection): nothing was sent yet, so this
  // reconnects and tries once more, within the deadline.
  Result<std::unique_ptr<Command>> open_channel(const std::string& what, Clock::time_point deadline) {
    for (int attempt = 0;; ++attempt) {
      const bool reused = have_session();
      auto s = session();
      PGC_TRY(s);
      auto command = std::make_unique<Command>(*s);
      if (command->channel() == nullptr) return std::unexpected(transport_error(what, "cannot allocate a channel"));
      if (ssh_channel_open_session(command->channel()) == SSH_OK) return command;
      auto error = transport_error(what, "cannot open a channel");
      if (!reused || attempt > 0 || Clock::now() >= deadline) return std::unexpected(error);
      command.reset();  // its channel goes before the session it belongs to
    }
  }

  // Runs one exec request: writes input (if any, then EOF) as the server's window allows, and
  // collects both output streams, the exit status and the close, all before the deadline.
  Result<CommandResult> execute(const std::string& command_line, std::optional<std::string_view> input,
                                std::chrono::milliseconds timeout, const std::string& what) {
    const auto deadline = Clock::now() + timeout;
    auto opened = open_channel(what, deadline);
    PGC_TRY(opened);
    Command& command = **opened;
    ssh_session s = session_.get();
    ssh_channel channel = command.channel();
    auto transport_failure = [&](const std::string& step) { return std::unexpected(transport_error(what, step)); };
    if (ssh_channel_request_exec(channel, command_line.c_str()) != SSH_OK)
      return transport_failure("the server refused the command");

    EventPtr event(ssh_event_new(), EventFree{s});
    if (!event || ssh_event_add_session(event.get(), s) != SSH_OK) return transport_failure("cannot poll");

    ChannelState& state = command.state();
    std::string_view pending = input.value_or(std::string_view());
    bool eof_sent = false;
    while (true) {
      // Stdin: never more than the window, so ssh_channel_write does not wait for the server.
      while (!eof_sent && !state.closed && !state.exited()) {
        if (pending.empty()) {
          if (ssh_channel_send_eof(channel) != SSH_OK) return transport_failure("sending end of input");
          eof_sent = true;
          break;
        }
        uint32_t window = ssh_channel_window_size(channel);
        if (window == 0) break;
        auto chunk = static_cast<uint32_t>(std::min<std::size_t>({pending.size(), window, 1U << 20}));
        int written = ssh_channel_write(channel, pending.data(), chunk);
        if (written == SSH_ERROR) {
          if (state.closed || state.exited()) break;  // the command exited without reading it all
          return transport_failure("sending input");
        }
        pending.remove_prefix(static_cast<std::size_t>(written));
      }
      if (state.overflow) {
        command.abandon(options_.user == "root" ? Command::Signal::no : Command::Signal::yes);
        return fail(who_ + ": ssh: " + what + ": the command wrote more than " +
                    std::to_string(k_max_output >> 20) + " MiB to one stream");
      }
      if (state.finished()) break;
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        command.abandon(options_.user == "root" ? Command::Signal::no : Command::Signal::yes);
        return fail(who_ + ": ssh: timed out after " + format_duration(timeout) + " " + what);
      }
      if (ssh_event_dopoll(event.get(), static_cast<int>(std::min<long long>(left.count(), 1000))) == SSH_ERROR)
        return transport_failure("connection lost");
      if ((ssh_get_status(s) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0) return transport_failure("connection lost");
    }

    CommandResult result;
    result.out = std::move(state.out);
    result.err = std::move(state.err);
    if (state.exit_status) {
      result.exit_status = *state.exit_status;
    } else if (!state.exit_signal.empty()) {
      int number = signal_number(state.exit_signal);
      result.exit_status = number != 0 ? 128 + number : 255;
      result.err += "pgconverge: the command was killed by signal " + state.exit_signal + "\n";
    } else {
      return fail(who_ + ": ssh: " + what + ": the server closed the channel without an exit status");
    }
    return result;
  }

  SshOptions options_;
  std::string who_;
  std::string known_hosts_;
  KeyPtr identity_;
  SessionPtr session_;
  bool broken_ = false;
};

}  // namespace

Result<std::unique_ptr<RemoteHost>> connect_ssh(const SshOptions& options) {
  const std::string who = "host " + options.host_name + " (" + options.address + ")";
  if (options.address.empty()) return fail(who + ": ssh: no address");
  if (options.port < 1 || options.port > 65535)
    return fail(who + ": ssh: invalid port " + std::to_string(options.port));
  if (options.user.empty()) return fail(who + ": ssh: no user");
  if (options.connect_timeout.count() <= 0) return fail(who + ": ssh: the connect timeout must be positive");

  std::string known_hosts = options.known_hosts_file.empty() ? default_known_hosts() : options.known_hosts_file;
  KeyPtr identity;
  if (!options.identity_file.empty()) {
    auto loaded = load_identity(options.identity_file, who);
    PGC_TRY(loaded);
    identity = std::move(*loaded);
  }
  auto session = open_session(options, who, known_hosts, identity.get());
  PGC_TRY(session);
  return std::make_unique<SshHost>(options, std::move(known_hosts), std::move(identity), std::move(*session));
}

}  // namespace pgc::providers

// The libssh implementation of RemoteHost: one SSH session per host, one channel per command.
// Commands run through the remote login shell as `sh -c`-style exec requests; values are
// always shell-quoted (command_line.hpp), scripts and file contents travel on stdin.

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "providers/ssh/command_line.hpp"
#include "providers/ssh/file_programs.hpp"
#include "providers/ssh/remote_host.hpp"
#include "providers/ssh/ssh_session.hpp"
#include "util/known_hosts.hpp"
#include "util/duration.hpp"
#include "util/strings.hpp"

namespace pgc::providers {
namespace {

using Clock = std::chrono::steady_clock;
using ssh_login::error_of;
using ssh_login::Login;
using ssh_login::SessionPtr;

// How much longer than our own timeout the host's timeout(1) waits before it stops a command:
// long enough that it never fires while we are still waiting (it starts later than our clock).
constexpr std::chrono::milliseconds k_remote_grace{1000};

struct ChannelFree {
  void operator()(ssh_channel channel) const { ssh_channel_free(channel); }
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

using ChannelPtr = std::unique_ptr<ssh_channel_struct, ChannelFree>;
using EventPtr = std::unique_ptr<ssh_event_struct, EventFree>;

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
  SshHost(SshOptions options, Login login, SessionPtr session)
      : options_(std::move(options)), login_(std::move(login)), who_(login_.who), session_(std::move(session)) {}

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
    auto fresh = ssh_login::open_session(options_, login_);
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
  Login login_;
  std::string who_;
  SessionPtr session_;
  bool broken_ = false;
};

}  // namespace

Result<std::unique_ptr<RemoteHost>> connect_ssh(const SshOptions& options) {
  auto login = ssh_login::prepare_login(options);
  PGC_TRY(login);
  auto session = ssh_login::open_session(options, *login);
  PGC_TRY(session);
  return std::make_unique<SshHost>(options, std::move(*login), std::move(*session));
}

}  // namespace pgc::providers

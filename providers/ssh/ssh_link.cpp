// The libssh implementation of SshConnection (ssh_link.hpp): one session per host, owned by one
// pump thread that runs the host's commands (a session channel each, RemoteHost's requests
// queued to the thread) and listens on unix sockets in a private directory, forwarding each
// accepted connection over a direct-tcpip channel. The session is non-blocking; one poll()
// watches the wake pipe, the listeners, the session's socket and every local connection, and
// each connection moves bytes only as far as the other side takes them (the channel's window one
// way, the local socket's buffer the other), so a slow reader holds back only its own connection.

#include "providers/ssh/ssh_link.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "providers/ssh/ssh_session.hpp"
#include "util/duration.hpp"

namespace pgc::providers {
// Named, so that a unity batch with the other providers/ssh files does not clash.
namespace link_impl {
namespace {

using Clock = std::chrono::steady_clock;
using ssh_login::error_of;
using ssh_login::SessionPtr;

// Bytes held per connection and direction; beyond it, that side is not read until the other
// side has taken some (libssh holds at most its channel window more).
constexpr std::size_t k_buffer = 64 * 1024;
// One SSH channel packet's worth per write.
constexpr std::size_t k_chunk = 32 * 1024;
// The longest the pump sleeps without an event (nothing needs it to wake; a bound for safety).
constexpr int k_max_sleep_ms = 1000;

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_ = -1;
};

struct ChannelFree {
  void operator()(ssh_channel channel) const {
    if (ssh_channel_is_closed(channel) == 0) ssh_channel_close(channel);
    ssh_channel_free(channel);
  }
};
using ChannelPtr = std::unique_ptr<ssh_channel_struct, ChannelFree>;

// An event that polls one session; taking the session out again before the event goes returns
// its socket to the session's own poll context.
struct EventFree {
  ssh_session session = nullptr;
  void operator()(ssh_event event) const {
    ssh_event_remove_session(event, session);
    ssh_event_free(event);
  }
};
using EventPtr = std::unique_ptr<ssh_event_struct, EventFree>;

std::string errno_text(int error) { return std::strerror(error); }

// The words of RFC 4254's channel open failure reasons, from libssh's message ("Channel opening
// failure: channel 3 error (1) open failed"): sshd's own text says little.
std::string open_failure_text(const std::string& libssh_message) {
  auto at = libssh_message.find("error (");
  int code = at == std::string::npos ? 0 : std::atoi(libssh_message.c_str() + at + 7);
  auto close = libssh_message.find(") ", at == std::string::npos ? 0 : at);
  std::string detail = at != std::string::npos && close != std::string::npos ? libssh_message.substr(close + 2) : "";
  switch (code) {
    case 1:
      return "administratively prohibited: the host's sshd refuses TCP forwarding (AllowTcpForwarding, "
             "PermitOpen, or the key's restrictions), and pgconverge reaches PostgreSQL and Patroni through it";
    case 2:
      return "the host could not connect" + (detail.empty() || detail == "open failed" ? "" : ": " + detail);
    case 4:
      return "resource shortage on the host's sshd";
    default:
      return libssh_message;
  }
}

// One address:port the host can reach, and the local socket that leads there.
struct Target {
  std::string address;
  int port = 0;
  std::string dir;   // <tunnel dir>/t<N>, 0700
  std::string path;  // <dir>/.s.PGSQL.<port>
  UniqueFd listener;
  std::string last_failure;  // guarded by the Tunnels' mutex
};

// One accepted local connection and its channel.
struct Forward {
  Target* target = nullptr;
  UniqueFd local;
  ChannelPtr channel;
  bool open = false;
  Clock::time_point open_deadline;
  std::string to_remote;     // read from the local connection, not yet in the channel
  std::string to_local;      // read from the channel, not yet written locally
  bool local_eof = false;    // the local side finished sending
  bool eof_sent = false;     // … and the channel was told
  bool remote_eof = false;   // the remote side finished sending
  bool local_shut = false;   // … and the local side was told
  bool local_gone = false;   // the local side closed altogether
  std::string failure;       // set when the forward ends in failure
  bool done = false;
};

// ---- commands ------------------------------------------------------------------------------

// More output than this on one stream is a runaway command, not something to hold in memory.
constexpr std::size_t k_max_output = std::size_t{256} << 20;
// Session channels open at once, closing ones included: OpenSSH's MaxSessions (10 by default)
// refuses more per connection, counting a session until both sides closed it; further commands
// wait in the queue.
constexpr std::size_t k_max_commands = 8;
// How long a finished command's channel may wait for the server's close before it is freed.
constexpr std::chrono::seconds k_close_wait{5};

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

// What the server has told us about one command so far; filled by libssh callbacks while the
// pump polls, so both output streams are drained as they arrive and neither can block the other.
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

// A command asked for and not yet started: its caller waits on the promise.
struct Job {
  ssh_link::Exec exec;
  std::promise<Result<CommandResult>> promise;
  Clock::time_point deadline;
  int attempt = 0;  // 1 after a lost session sent it back to the queue before anything ran
};

// A command on its channel. The callbacks are taken off before the channel is freed: libssh keeps
// a locally closed channel until the server's close arrives, and later packets for it must not
// reach a ChannelState that no longer exists. Never moved (the callbacks point into it).
struct Running {
  explicit Running(Job j) : job(std::move(j)) {
    if (job.exec.input) pending = *job.exec.input;
    callbacks.userdata = &state;
    callbacks.channel_data_function = &ChannelState::on_data;
    callbacks.channel_eof_function = &ChannelState::on_eof;
    callbacks.channel_close_function = &ChannelState::on_close;
    callbacks.channel_exit_status_function = &ChannelState::on_exit_status;
    callbacks.channel_exit_signal_function = &ChannelState::on_exit_signal;
    ssh_callbacks_init(&callbacks);
  }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;

  enum class Phase { opening, requesting, running };
  Job job;
  ChannelState state;
  ssh_channel_callbacks_struct callbacks{};
  ChannelPtr channel;
  Phase phase = Phase::opening;
  std::string_view pending;  // stdin not yet in the channel
  bool eof_sent = false;
  bool reused = false;  // the session was there before this command (it may have gone stale)
  std::optional<Result<CommandResult>> outcome;  // set when done
  bool requeue = false;                          // … or to be tried again (a new session, a free slot)
  bool refused = false;                          // requeued because sshd had no session slot free
  bool delivered = false;                        // the caller has the outcome; the channel is closing
  Clock::time_point close_deadline;              // … and is freed by then at the latest
};

class SshLink final : public ssh_link::Link, public std::enable_shared_from_this<SshLink> {
 public:
  SshLink(SshOptions options, ssh_login::Login login, SessionPtr session, std::string dir, UniqueFd wake_read,
             UniqueFd wake_write)
      : options_(std::move(options)),
        login_(std::move(login)),
        session_(std::move(session)),
        dir_(std::move(dir)),
        wake_read_(std::move(wake_read)),
        wake_write_(std::move(wake_write)) {
    ssh_set_blocking(session_.get(), 0);
    make_event();
    thread_ = std::thread([this] { pump(); });
  }
  SshLink(const SshLink&) = delete;
  SshLink& operator=(const SshLink&) = delete;

  ~SshLink() override {
    stopping_ = true;
    wake();
    thread_.join();
    for (auto& [key, target] : targets_) {
      target->listener.reset();
      ::unlink(target->path.c_str());
      ::rmdir(target->dir.c_str());
    }
    ::rmdir(dir_.c_str());
  }

  [[nodiscard]] std::string describe() const override {
    return options_.host_name + " (" + options_.address + ")";
  }

  Result<std::string> local_socket(const std::string& address, int port) override {
    std::lock_guard lock(mutex_);
    auto key = std::make_pair(address, port);
    if (auto it = targets_.find(key); it != targets_.end()) return it->second->path;
    if (port < 1 || port > 65535) return fail(what(address, port) + ": invalid port " + std::to_string(port));
    auto target = std::make_unique<Target>();
    target->address = address;
    target->port = port;
    target->dir = dir_ + "/t" + std::to_string(targets_.size() + 1);
    target->path = target->dir + "/.s.PGSQL." + std::to_string(port);
    PGC_TRY(listen_on(*target));
    std::string path = target->path;
    fresh_.push_back(target.get());
    targets_.emplace(key, std::move(target));
    wake();
    return path;
  }

  [[nodiscard]] std::string last_failure(const std::string& address, int port) const override {
    std::lock_guard lock(mutex_);
    auto it = targets_.find(std::make_pair(address, port));
    return it == targets_.end() ? std::string() : it->second->last_failure;
  }

  std::unique_ptr<RemoteHost> remote_host() override { return ssh_link::make_remote_host(shared_from_this()); }

  [[nodiscard]] const SshOptions& options() const override { return options_; }

  Result<CommandResult> execute(ssh_link::Exec exec) override {
    Job job;
    job.deadline = Clock::now() + exec.timeout;
    job.exec = std::move(exec);
    auto result = job.promise.get_future();
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(job));
    }
    wake();
    return result.get();
  }

 private:
  [[nodiscard]] std::string what(const std::string& address, int port) const {
    return login_.who + ": ssh: forwarding to " + address + ":" + std::to_string(port);
  }

  Result<void> listen_on(Target& target) const {
    const std::string where = what(target.address, target.port) + ": local socket " + target.path;
    if (target.path.size() >= sizeof(sockaddr_un{}.sun_path)) return fail(where + ": the path is too long");
    if (::mkdir(target.dir.c_str(), 0700) != 0) return fail(where + ": " + errno_text(errno));
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return fail(where + ": " + errno_text(errno));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, target.path.c_str(), target.path.size() + 1);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::chmod(target.path.c_str(), 0600) != 0 || ::listen(fd.get(), SOMAXCONN) != 0) {
      int error = errno;
      ::unlink(target.path.c_str());
      ::rmdir(target.dir.c_str());
      return fail(where + ": " + errno_text(error));
    }
    target.listener = std::move(fd);
    return {};
  }

  void wake() const {
    char byte = 1;
    [[maybe_unused]] auto ignored = ::write(wake_write_.get(), &byte, 1);  // a full pipe wakes already
  }

  // ---- the pump thread ----

  void pump() {
    while (!stopping_) {
      if (session_ && !session_alive()) lose_session();  // noticed by a channel call, not by poll
      adopt_fresh_targets();
      start_commands();
      std::vector<pollfd> fds;
      fds.push_back(pollfd{wake_read_.get(), POLLIN, 0});
      for (Target* target : listening_) fds.push_back(pollfd{target->listener.get(), POLLIN, 0});
      const std::size_t session_at = fds.size();
      if (session_alive()) {
        quick_ack();
        short events = POLLIN;
        if ((ssh_get_poll_flags(session_.get()) & SSH_WRITE_PENDING) != 0) events |= POLLOUT;
        fds.push_back(pollfd{ssh_get_fd(session_.get()), events, 0});
      }
      const std::size_t forwards_at = fds.size();
      for (auto& f : forwards_) fds.push_back(pollfd{f.local.get(), local_interest(f), 0});

      ::poll(fds.data(), fds.size(), sleep_ms());
      drain_wake_pipe();
      if (stopping_) break;
      if (session_at < forwards_at && fds[session_at].revents != 0) service_session();
      std::size_t index = forwards_at;
      for (auto& f : forwards_) {
        if ((fds[index++].revents & (POLLHUP | POLLERR)) != 0 && (local_interest(f) & POLLIN) == 0) f.local_gone = true;
      }
      for (std::size_t i = 0; i < listening_.size(); ++i)
        if ((fds[1 + i].revents & POLLIN) != 0) accept_all(*listening_[i]);
      step_all();
    }
    forwards_.clear();  // channels before the event and the session
    for (auto& r : running_) {
      if (!r.delivered) r.outcome = fail(login_.who + ": ssh: " + r.job.exec.what + ": the connection was closed");
      r.close_deadline = Clock::now();
    }
    finish_commands();
    fail_queued("the connection was closed");
    event_.reset();
    session_.reset();
  }

  // Acknowledges the host's segments at once instead of up to 40 ms later: sshd does not set
  // TCP_NODELAY on a session without a terminal, so a reply that sshd writes in two segments (an
  // HTTP header, then its body) would wait for our delayed ACK (Nagle's algorithm). Linux clears
  // quick-ACK mode by itself, hence once per wait.
  void quick_ack() const {
    int on = 1;
    ::setsockopt(ssh_get_fd(session_.get()), IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
  }

  void adopt_fresh_targets() {
    std::lock_guard lock(mutex_);
    listening_.insert(listening_.end(), fresh_.begin(), fresh_.end());
    fresh_.clear();
  }

  void drain_wake_pipe() const {
    char bytes[64];
    while (::read(wake_read_.get(), bytes, sizeof bytes) > 0) {
    }
  }

  [[nodiscard]] static short local_interest(const Forward& f) {
    short events = 0;
    if (f.open && !f.local_eof && !f.local_gone && f.to_remote.size() < k_buffer) events |= POLLIN;
    if (!f.to_local.empty()) events |= POLLOUT;
    return events;
  }

  // Until the nearest channel-open or command deadline, at most k_max_sleep_ms.
  [[nodiscard]] int sleep_ms() const {
    auto sleep = std::chrono::milliseconds(k_max_sleep_ms);
    const auto now = Clock::now();
    auto until = [&](Clock::time_point deadline) {
      sleep = std::min(sleep, std::chrono::ceil<std::chrono::milliseconds>(std::max(deadline - now, Clock::duration::zero())));
    };
    for (const auto& f : forwards_)
      if (!f.open) until(f.open_deadline);
    for (const auto& r : running_) until(r.delivered ? r.close_deadline : r.job.deadline);
    return static_cast<int>(sleep.count());
  }

  [[nodiscard]] bool session_alive() const {
    return session_ && ssh_is_connected(session_.get()) != 0 &&
           (ssh_get_status(session_.get()) & (SSH_CLOSED | SSH_CLOSED_ERROR)) == 0;
  }

  void make_event() {
    event_ = EventPtr(ssh_event_new(), EventFree{session_.get()});
    if (event_ && ssh_event_add_session(event_.get(), session_.get()) != SSH_OK) event_.reset();
  }

  // Lets libssh read and write the session's socket: packets go into their channels' buffers,
  // commands' output into their states (callbacks).
  void service_session() {
    if (!event_) make_event();
    if (!event_ || ssh_event_dopoll(event_.get(), 0) == SSH_ERROR || !session_alive()) lose_session();
  }

  // The session broke: every connection and command on it ends, and the next one opens a new
  // session. A command whose channel was not open yet on a session it found there (one that had
  // gone stale: nothing ran) goes back to the queue once, as connect_ssh() promises.
  void lose_session() {
    const std::string detail = session_ ? error_of(session_.get()) : std::string("closed");
    const std::string why = "the SSH session was lost: " + detail;
    for (auto& f : forwards_) {
      f.failure = why;
      f.done = true;
    }
    finish_done();
    for (auto& r : running_) {
      r.close_deadline = Clock::now();  // a closing channel goes with its session
      if (r.outcome) continue;
      if (r.phase == Running::Phase::opening && r.reused && r.job.attempt == 0) r.requeue = true;
      else r.outcome = fail(login_.who + ": ssh: " + r.job.exec.what + ": connection lost: " + detail);
    }
    finish_commands();
    event_.reset();
    session_.reset();
  }

  // A session for a new connection: the current one, or a new one (blocking, bounded by the
  // connect timeout) when it was lost.
  Result<void> ensure_session() {
    if (session_alive()) return {};
    if (session_) lose_session();
    auto fresh = ssh_login::open_session(options_, login_);
    PGC_TRY(fresh);
    session_ = std::move(*fresh);
    ssh_set_blocking(session_.get(), 0);
    make_event();
    return {};
  }

  void accept_all(Target& target) {
    while (true) {
      UniqueFd fd(::accept4(target.listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (fd.get() < 0) return;  // EAGAIN, or a connection that went away before we took it
      Forward f;
      f.target = &target;
      f.local = std::move(fd);
      f.open_deadline = Clock::now() + options_.connect_timeout;
      if (auto session = ensure_session(); !session) {
        record(target, session.error().message);
        continue;  // the local connection closes: its client sees the end, last_failure says why
      }
      f.channel = ChannelPtr(ssh_channel_new(session_.get()));
      if (!f.channel) {
        record(target, what(target.address, target.port) + ": cannot allocate a channel");
        continue;
      }
      forwards_.push_back(std::move(f));
    }
  }

  void record(Target& target, const std::string& failure) {
    std::lock_guard lock(mutex_);
    target.last_failure = failure;
  }

  void step_all() {
    for (auto& f : forwards_) {
      if (!f.open) try_open(f);
      if (f.open && !f.done) move_bytes(f);
    }
    finish_done();
    for (auto& r : running_) step_command(r);
    finish_commands();
  }

  void finish_done() {
    for (auto it = forwards_.begin(); it != forwards_.end();) {
      if (!it->done) {
        ++it;
        continue;
      }
      if (!it->failure.empty()) record(*it->target, it->failure);
      it = forwards_.erase(it);  // closes the channel and the local connection
    }
  }

  void try_open(Forward& f) {
    const Target& t = *f.target;
    int rc = ssh_channel_open_forward(f.channel.get(), t.address.c_str(), t.port, "127.0.0.1", 0);
    if (rc == SSH_OK) {
      f.open = true;
      std::lock_guard lock(mutex_);
      f.target->last_failure.clear();
      return;
    }
    if (rc == SSH_AGAIN && Clock::now() < f.open_deadline) return;
    f.failure = what(t.address, t.port) + ": " +
                (rc == SSH_AGAIN ? "the host did not answer the channel request in time"
                                 : open_failure_text(error_of(session_.get())));
    f.done = true;
  }

  // Moves what each side can take, then ends the forward once both directions are finished.
  void move_bytes(Forward& f) {
    if (!f.local_gone) local_to_channel(f);
    if (!f.done) channel_to_local(f);
    if (f.done) return;
    const bool channel_closed = ssh_channel_is_closed(f.channel.get()) != 0;
    if (f.local_gone || (f.local_shut && (f.eof_sent || channel_closed))) f.done = true;
  }

  void local_to_channel(Forward& f) {
    ssh_channel channel = f.channel.get();
    if (!f.local_eof && f.to_remote.size() < k_buffer) {
      char buffer[k_buffer];
      ssize_t n = ::recv(f.local.get(), buffer, k_buffer - f.to_remote.size(), 0);
      if (n > 0) f.to_remote.append(buffer, static_cast<std::size_t>(n));
      else if (n == 0) f.local_eof = true;
      else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) f.local_gone = true;
    }
    if (ssh_channel_is_closed(channel) != 0) {
      f.to_remote.clear();  // the remote side is gone: nothing more reaches it
      return;
    }
    while (!f.to_remote.empty()) {
      auto window = ssh_channel_window_size(channel);
      if (window == 0) break;
      auto chunk = static_cast<uint32_t>(std::min<std::size_t>({f.to_remote.size(), window, k_chunk}));
      int written = ssh_channel_write(channel, f.to_remote.data(), chunk);
      if (written == SSH_ERROR) {
        f.failure = what(f.target->address, f.target->port) + ": sending: " + error_of(session_.get());
        f.done = true;
        return;
      }
      if (written == 0) break;
      f.to_remote.erase(0, static_cast<std::size_t>(written));
    }
    if (f.local_eof && f.to_remote.empty() && !f.eof_sent) {
      ssh_channel_send_eof(channel);
      f.eof_sent = true;
    }
  }

  void channel_to_local(Forward& f) {
    ssh_channel channel = f.channel.get();
    while (!f.remote_eof && f.to_local.size() < k_buffer) {
      char buffer[k_buffer];
      int n = ssh_channel_read_nonblocking(channel, buffer, static_cast<uint32_t>(k_buffer - f.to_local.size()), 0);
      if (n > 0) {
        f.to_local.append(buffer, static_cast<std::size_t>(n));
      } else if (n == SSH_EOF || ssh_channel_is_eof(channel) != 0 || ssh_channel_is_closed(channel) != 0) {
        f.remote_eof = true;  // a close without EOF ends the stream too
      } else if (n == 0) {
        break;
      } else {
        f.failure = what(f.target->address, f.target->port) + ": receiving: " + error_of(session_.get());
        f.done = true;
        return;
      }
    }
    while (!f.to_local.empty() && !f.local_gone) {
      ssize_t n = ::send(f.local.get(), f.to_local.data(), f.to_local.size(), MSG_NOSIGNAL);
      if (n > 0) {
        f.to_local.erase(0, static_cast<std::size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        break;
      } else {
        f.local_gone = true;  // the client went away: what the target still says has no reader
      }
    }
    if (f.remote_eof && f.to_local.empty() && !f.local_shut && !f.local_gone) {
      ::shutdown(f.local.get(), SHUT_WR);
      f.local_shut = true;
    }
  }

  // ---- commands (the pump thread) ----

  // Starts queued commands while fewer than max_commands_ run.
  void start_commands() {
    std::vector<Job> jobs;
    {
      std::lock_guard lock(mutex_);
      while (!queue_.empty() && running_.size() + jobs.size() < max_commands_) {
        jobs.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    for (auto& job : jobs) start(std::move(job));
    finish_commands();
  }

  // A channel for job on the session (opened again first when it was lost).
  void start(Job job) {
    const bool reused = session_alive();
    if (auto session = ensure_session(); !session) {
      job.promise.set_value(std::unexpected(session.error()));
      return;
    }
    Running& r = running_.emplace_back(std::move(job));
    r.reused = reused;
    r.channel = ChannelPtr(ssh_channel_new(session_.get()));
    if (!r.channel) {
      r.outcome = transport_failure(r, "cannot allocate a channel");
      return;
    }
    ssh_set_channel_callbacks(r.channel.get(), &r.callbacks);
    step_command(r);
  }

  void fail_queued(const std::string& why) {
    std::lock_guard lock(mutex_);
    for (auto& job : queue_) job.promise.set_value(fail(login_.who + ": ssh: " + job.exec.what + ": " + why));
    queue_.clear();
  }

  [[nodiscard]] std::unexpected<Error> transport_failure(const Running& r, const std::string& step) const {
    std::string detail = session_ ? error_of(session_.get()) : std::string("no session");
    return fail(login_.who + ": ssh: " + r.job.exec.what + ": " + step + ": " + detail);
  }

  // Gives up on a command and closes its channel (which closes its pipes). A non-root user's
  // command is first sent SIGTERM through sshd; OpenSSH refuses that for root (and logs an
  // error), so root relies on the host's timeout(1) (ssh_host.cpp's with_remote_timeout).
  void abandon(Running& r) {
    ssh_channel channel = r.channel.get();
    if (channel == nullptr || ssh_channel_is_closed(channel) != 0) return;
    if (options_.user != "root") ssh_channel_request_send_signal(channel, "TERM");
    ssh_channel_close(channel);
  }

  // Moves a command on as far as it goes now: open its channel, send the exec request, feed its
  // stdin, and see whether it finished, overflowed or ran out of time.
  void step_command(Running& r) {
    if (r.outcome || r.requeue) return;
    ssh_channel channel = r.channel.get();
    if (r.phase == Running::Phase::opening) {
      int rc = ssh_channel_open_session(channel);
      if (rc == SSH_ERROR) {
        if (session_alive() && running_.size() > 1) {
          // Refused while other channels are open: sshd's MaxSessions (it counts a session until
          // its process is reaped, a moment after the channel closed). Learn the limit; the
          // command waits for a slot.
          max_commands_ = std::max<std::size_t>(1, running_.size() - 1);
          r.requeue = true;
          r.refused = true;
        } else if (!session_alive() && r.reused && r.job.attempt == 0) {
          r.requeue = true;  // an error on a session that had gone stale: nothing ran
        } else {
          r.outcome = transport_failure(r, "cannot open a channel");
        }
        return;
      }
      if (rc == SSH_OK) r.phase = Running::Phase::requesting;
    }
    if (r.phase == Running::Phase::requesting) {
      int rc = ssh_channel_request_exec(channel, r.job.exec.command_line.c_str());
      if (rc == SSH_ERROR) {
        r.outcome = transport_failure(r, "the server refused the command");
        return;
      }
      if (rc == SSH_OK) r.phase = Running::Phase::running;
    }
    if (r.phase == Running::Phase::running && !feed_input(r)) return;
    if (r.state.overflow) {
      abandon(r);
      r.outcome = fail(login_.who + ": ssh: " + r.job.exec.what + ": the command wrote more than " +
                       std::to_string(k_max_output >> 20) + " MiB to one stream");
      return;
    }
    if (r.phase == Running::Phase::running && r.state.finished()) {
      r.outcome = command_result(r);
      return;
    }
    if (Clock::now() >= r.job.deadline) {
      abandon(r);
      r.outcome = fail(login_.who + ": ssh: timed out after " + format_duration(r.job.exec.timeout) + " " +
                       r.job.exec.what);
    }
  }

  // Stdin: never more than the window, then EOF. False when the command failed.
  bool feed_input(Running& r) {
    ssh_channel channel = r.channel.get();
    ChannelState& state = r.state;
    while (!r.eof_sent && !state.closed && !state.exited()) {
      if (r.pending.empty()) {
        if (ssh_channel_send_eof(channel) == SSH_ERROR) {
          r.outcome = transport_failure(r, "sending end of input");
          return false;
        }
        r.eof_sent = true;
        break;
      }
      uint32_t window = ssh_channel_window_size(channel);
      if (window == 0) break;
      auto chunk = static_cast<uint32_t>(std::min<std::size_t>({r.pending.size(), window, k_chunk}));
      int written = ssh_channel_write(channel, r.pending.data(), chunk);
      if (written == SSH_ERROR) {
        if (state.closed || state.exited()) break;  // the command exited without reading it all
        r.outcome = transport_failure(r, "sending input");
        return false;
      }
      if (written == 0) break;
      r.pending.remove_prefix(static_cast<std::size_t>(written));
    }
    return true;
  }

  // What a finished command reports: its output and exit status (128 + a signal's number).
  Result<CommandResult> command_result(Running& r) const {
    ChannelState& state = r.state;
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
      return fail(login_.who + ": ssh: " + r.job.exec.what + ": the server closed the channel without an exit status");
    }
    return result;
  }

  // Hands finished commands their outcome and frees their channels once the server closed them
  // too (until then they count against k_max_commands); a command to try again goes to the front
  // of the queue.
  void finish_commands() {
    const auto now = Clock::now();
    for (auto it = running_.begin(); it != running_.end();) {
      if (!it->outcome && !it->requeue) {
        ++it;
        continue;
      }
      if (it->outcome && !it->delivered) {
        it->job.promise.set_value(std::move(*it->outcome));
        it->delivered = true;
        if (it->close_deadline == Clock::time_point{}) it->close_deadline = now + k_close_wait;
        if (it->channel && ssh_channel_is_closed(it->channel.get()) == 0) ssh_channel_close(it->channel.get());
      }
      const bool opened = it->phase != Running::Phase::opening;  // only an open channel gets a close back
      if (it->delivered && opened && !it->state.closed && it->channel && now < it->close_deadline && session_alive()) {
        ++it;
        continue;
      }
      if (it->channel) {
        ssh_remove_channel_callbacks(it->channel.get(), &it->callbacks);
        it->channel.reset();  // closes it if still open; libssh keeps it until the server's close
      }
      if (it->requeue && !it->delivered) {
        Job job = std::move(it->job);
        if (!it->refused) job.attempt += 1;
        std::lock_guard lock(mutex_);
        queue_.push_front(std::move(job));
      }
      it = running_.erase(it);
    }
  }

  SshOptions options_;
  ssh_login::Login login_;
  SessionPtr session_;
  EventPtr event_;
  std::string dir_;
  UniqueFd wake_read_;
  UniqueFd wake_write_;

  mutable std::mutex mutex_;  // targets_, fresh_, each Target's last_failure, queue_
  std::map<std::pair<std::string, int>, std::unique_ptr<Target>> targets_;
  std::vector<Target*> fresh_;  // made by local_socket, not yet listened to by the pump

  std::deque<Job> queue_;  // commands asked for, not yet started by the pump

  // The pump thread's own.
  std::vector<Target*> listening_;
  std::list<Forward> forwards_;
  std::list<Running> running_;
  std::size_t max_commands_ = k_max_commands;  // lowered when sshd refuses a session channel

  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

constexpr std::string_view k_dir_prefix = "pgc-tunnel-";

// Removes the socket directories in base that a pgconverge killed before its teardown left
// (SIGKILL): named pgc-tunnel-<pid>-…, a directory (not a link) of this user, and no process
// <pid> any more. A pid used again by another process keeps its directory: never a guess.
void sweep_dead_socket_dirs(const std::string& base) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!name.starts_with(k_dir_prefix)) continue;
    std::string rest = name.substr(k_dir_prefix.size());
    auto dash = rest.find('-');
    if (dash == std::string::npos || dash == 0 || rest.find_first_not_of("0123456789") != dash) continue;
    pid_t pid = static_cast<pid_t>(std::strtol(rest.substr(0, dash).c_str(), nullptr, 10));
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) continue;
    if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code ignored;
    fs::remove_all(it->path(), ignored);  // a link inside is removed, never followed
  }
}

// A private directory for the sockets: $TMPDIR (when the paths fit) or /tmp, mode 0700, named
// by this process's id so that a later run can remove it if this one is killed.
Result<std::string> make_socket_dir(const std::string& who) {
  std::string base = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp == '/' && std::strlen(tmp) < 50) base = tmp;
  sweep_dead_socket_dirs(base);
  std::string pattern = base + "/" + std::string(k_dir_prefix) + std::to_string(::getpid()) + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    return fail(who + ": ssh: forwarding: cannot create a directory in " + base + ": " + errno_text(errno));
  if (::chmod(pattern.c_str(), 0700) != 0) {
    int error = errno;
    ::rmdir(pattern.c_str());
    return fail(who + ": ssh: forwarding: " + pattern + ": " + errno_text(error));
  }
  return pattern;
}

}  // namespace
}  // namespace link_impl

namespace ssh_link {

Result<std::shared_ptr<Link>> open_link(const SshOptions& options) {
  using namespace link_impl;
  auto login = ssh_login::prepare_login(options);
  PGC_TRY(login);
  auto session = ssh_login::open_session(options, *login);
  PGC_TRY(session);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0)
    return fail(login->who + ": ssh: forwarding: cannot create a pipe: " + errno_text(errno));
  UniqueFd wake_read(pipe_fds[0]);
  UniqueFd wake_write(pipe_fds[1]);
  auto dir = make_socket_dir(login->who);
  PGC_TRY(dir);
  return std::shared_ptr<Link>(std::make_shared<SshLink>(options, std::move(*login), std::move(*session),
                                                         std::move(*dir), std::move(wake_read), std::move(wake_write)));
}

}  // namespace ssh_link

namespace {

// Tunnels alone, keeping the connection open.
class TunnelsOnly final : public Tunnels {
 public:
  explicit TunnelsOnly(std::shared_ptr<SshConnection> connection) : connection_(std::move(connection)) {}
  Result<std::string> local_socket(const std::string& address, int port) override {
    return connection_->local_socket(address, port);
  }
  [[nodiscard]] std::string last_failure(const std::string& address, int port) const override {
    return connection_->last_failure(address, port);
  }
  [[nodiscard]] std::string describe() const override { return connection_->describe(); }

 private:
  std::shared_ptr<SshConnection> connection_;
};

}  // namespace

Result<std::shared_ptr<SshConnection>> open_ssh(const SshOptions& options) {
  auto link = ssh_link::open_link(options);
  PGC_TRY(link);
  return std::shared_ptr<SshConnection>(std::move(*link));
}

Result<std::unique_ptr<Tunnels>> open_tunnels(const SshOptions& options) {
  auto connection = open_ssh(options);
  PGC_TRY(connection);
  return std::make_unique<TunnelsOnly>(std::move(*connection));
}

}  // namespace pgc::providers

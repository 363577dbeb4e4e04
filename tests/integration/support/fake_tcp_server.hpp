#pragma once
// A misbehaving TCP server on 127.0.0.1 for fault tests of the clients (Patroni REST, libpq):
// plain sockets, one thread per connection running a behaviour the test gives (never answer,
// answer garbage, stall halfway, send without end, ...). Header-only; link
// pgc_integration_support and Threads::Threads.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace pgc::test {

// Listens on 127.0.0.1:<ephemeral port>; each accepted connection is handed to the behaviour on
// its own thread, and closed when the behaviour returns. Behaviours must return soon once
// `stopping` is set (the helpers below do). The destructor stops accepting, shuts every open
// connection down (which wakes blocked reads and writes), joins all threads and closes the
// sockets: nothing outlives the server.
class FakeTcpServer {
 public:
  using Behaviour = std::function<void(int fd, const std::atomic<bool>& stopping)>;

  explicit FakeTcpServer(Behaviour behaviour) : behaviour_(std::move(behaviour)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    auto* sa = reinterpret_cast<sockaddr*>(&address);
    if (listener_ < 0 || ::bind(listener_, sa, length) != 0 || ::listen(listener_, 64) != 0 ||
        ::getsockname(listener_, sa, &length) != 0) {
      if (listener_ >= 0) ::close(listener_);
      throw std::runtime_error("fake server: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  FakeTcpServer(const FakeTcpServer&) = delete;
  FakeTcpServer& operator=(const FakeTcpServer&) = delete;

  ~FakeTcpServer() {
    stopping_ = true;
    acceptor_.join();
    ::close(listener_);
    std::lock_guard lock(mutex_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& thread : threads_) thread.join();
    for (int fd : fds_) ::close(fd);
  }

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Connections accepted so far.
  [[nodiscard]] int connections() const { return accepted_.load(); }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      std::lock_guard lock(mutex_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd] {
        behaviour_(fd, stopping_);
        ::shutdown(fd, SHUT_RDWR);  // the client sees the end now; the fd is closed by the destructor
      });
    }
  }

  Behaviour behaviour_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::mutex mutex_;  // guards fds_ and threads_
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

// What a behaviour reads: up to `max` bytes once some arrive; "" when the peer closed, on
// error, or once stopping is set.
inline std::string read_some(int fd, const std::atomic<bool>& stopping, std::size_t max = 65536) {
  std::string buffer(max, '\0');
  while (!stopping) {
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, 20);
    if (ready < 0 && errno != EINTR) return {};
    if (ready <= 0) continue;
    auto n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n <= 0) return {};
    buffer.resize(static_cast<std::size_t>(n));
    return buffer;
  }
  return {};
}

// Reads until the data so far holds `marker` (e.g. the end of an HTTP request's headers) or
// `count` bytes, whichever is given; returns what was read, short when the peer went away.
inline std::string read_until(int fd, const std::atomic<bool>& stopping, std::string_view marker,
                              std::size_t count = 0) {
  std::string data;
  while (!stopping && (marker.empty() ? data.size() < count : data.find(marker) == std::string::npos)) {
    auto more = read_some(fd, stopping, count > data.size() ? count - data.size() : 65536);
    if (more.empty()) break;
    data += more;
  }
  return data;
}

// Writes everything (or until the peer goes away or stopping is set); false when it could not.
inline bool write_all(int fd, std::string_view data, const std::atomic<bool>& stopping) {
  while (!data.empty() && !stopping) {
    pollfd p{fd, POLLOUT, 0};
    int ready = ::poll(&p, 1, 20);
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return data.empty();
}

// Keeps the connection open without ever answering: reads and drops whatever arrives until the
// peer closes or stopping is set.
inline void hold_silently(int fd, const std::atomic<bool>& stopping) {
  while (!stopping) {
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, 20);
    if (ready < 0 && errno != EINTR) return;
    if (ready <= 0) continue;
    char sink[4096];
    if (::recv(fd, sink, sizeof sink, 0) <= 0) return;
  }
}

// Sleeps for `duration`, or less once stopping is set.
inline void pause_unless_stopping(std::chrono::milliseconds duration, const std::atomic<bool>& stopping) {
  auto until = std::chrono::steady_clock::now() + duration;
  while (!stopping && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

}  // namespace pgc::test

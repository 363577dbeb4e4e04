// The HTTP server on 127.0.0.1:0 driven by raw non-blocking sockets, so that each test controls
// exactly which bytes arrive when: normal requests, the body and header limits, slow clients,
// malformed requests, the connection limits and who keeps a place when the server is full (idle,
// trickling and never-reading crowds, from one and from many 127.0.0.x source addresses),
// pipelined, HTTP/1.0 keep-alive and half-closed requests, stop() during a request, and bounded
// memory.

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "providers/http/http_server.hpp"

using namespace pgc::providers::http;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A connected socket, closed on destruction.
class Socket {
 public:
  // source: the local IPv4 address to connect from (any of 127.0.0.0/8), or "" for the default.
  explicit Socket(const std::string& address, const std::string& source = "") {
    auto colon = address.rfind(':');
    auto host = address.substr(0, colon);
    auto port = static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)));
    if (host.front() == '[') {
      sockaddr_in6 sa{};
      sa.sin6_family = AF_INET6;
      sa.sin6_port = htons(port);
      ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &sa.sin6_addr);
      fd_ = ::socket(AF_INET6, SOCK_STREAM, 0);
      connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    } else {
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(port);
      ::inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
      fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
      if (!source.empty()) {
        sockaddr_in local{};
        local.sin_family = AF_INET;
        ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local);
      }
      connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { ::close(fd_); }
  int fd() const { return fd_; }
  bool connected() const { return connected_; }
  // Whether the server has closed it (EOF or reset); reads nothing otherwise.
  bool closed_by_peer() const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    char byte;
    auto n = ::recv(fd_, &byte, 1, MSG_PEEK);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
  }
  void send_all(const std::string& data) {
    std::size_t sent = 0;
    auto until = Clock::now() + 2s;
    while (sent < data.size() && Clock::now() < until) {
      auto n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      else if (errno != EAGAIN && errno != EINTR) return;
      else std::this_thread::sleep_for(1ms);
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

struct Outcome {
  std::string received;
  bool closed = false;  // the server closed (EOF or reset) before the time limit
  std::chrono::milliseconds elapsed{0};
  int status() const {
    auto at = received.rfind("HTTP/1.1 ");
    // The last status line, so that a "100 Continue" before it does not count.
    return at == std::string::npos ? 0 : std::stoi(received.substr(at + 9, 3));
  }
  std::string body() const {
    auto at = received.find("\r\n\r\n", received.rfind("HTTP/1.1 "));
    return at == std::string::npos ? "" : received.substr(at + 4);
  }
};

// Sends data (as fast as the server takes it, or piece by piece every `interval`) while reading
// whatever comes back, until the server closes or `limit` passes. Write failures stop writing
// only: the answer may already be on its way.
Outcome exchange(Socket& socket, const std::string& data, std::chrono::milliseconds limit = 5000ms,
                 std::chrono::milliseconds interval = 0ms, std::size_t piece = 1) {
  Outcome out;
  auto start = Clock::now();
  std::size_t sent = 0;
  bool writable = true;
  auto next_write = start;
  char buffer[16384];
  while (true) {
    auto now = Clock::now();
    if (now - start >= limit) break;
    bool want_write = writable && sent < data.size() && now >= next_write;
    pollfd p{socket.fd(), static_cast<short>(POLLIN | (want_write ? POLLOUT : 0)), 0};
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(limit - (now - start));
    if (writable && sent < data.size() && !want_write)
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(next_write - now) + 1ms);
    ::poll(&p, 1, static_cast<int>(wait.count()));
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      auto n = ::recv(socket.fd(), buffer, sizeof buffer, 0);
      if (n > 0) {
        out.received.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        out.closed = true;
        break;
      }
    }
    if (want_write && (p.revents & POLLOUT)) {
      auto size = interval.count() > 0 ? std::min(piece, data.size() - sent) : data.size() - sent;
      auto n = ::send(socket.fd(), data.data() + sent, size, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        next_write = Clock::now() + interval;
      } else if (errno != EAGAIN && errno != EINTR) {
        writable = false;
      }
    }
  }
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return out;
}

Outcome request(const std::string& address, const std::string& data, std::chrono::milliseconds limit = 5000ms) {
  Socket socket(address);
  return exchange(socket, data, limit);
}

std::string get(const std::string& target) { return "GET " + target + " HTTP/1.1\r\nHost: test\r\n\r\n"; }

std::string post(const std::string& target, const std::string& body) {
  return "POST " + target + " HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::unique_ptr<HttpServer> start(HttpServerOptions options, HttpHandler handler) {
  auto server = HttpServer::start(options, std::move(handler));
  if (!server) FAIL(server.error().message);
  return std::move(*server);
}

// The connection table's policy is tested with every connection handed over at once; the
// kernel's deferral of silent connections has its own case ("defer_accept").
HttpServerOptions loopback() {
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  options.defer_accept = 0s;
  return options;
}

HttpResponse echo(const HttpRequest& r) {
  std::string text = r.method + " " + r.target + "\n";
  for (const auto& [name, value] : r.headers) text += name + ": " + value + "\n";
  text += "peer " + r.peer.substr(0, r.peer.rfind(':')) + "\n\n" + r.body;
  return {200, "text/plain; charset=utf-8", text};
}

std::size_t rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6));
  }
  return 0;
}

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds limit = 2000ms) {
  auto until = Clock::now() + limit;
  while (!condition()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}


std::vector<std::string> sources(int first, int count) {
  std::vector<std::string> out;
  for (int i = first; i < first + count; ++i) out.push_back("127.0.0." + std::to_string(i));
  return out;
}

// count connections from the sources (round robin), each sending prefix once and then holding
// on; refill() reopens the ones the server closed, as an attacker who insists would.
class Crowd {
 public:
  Crowd(std::string address, std::size_t count, std::vector<std::string> from, std::string prefix = "",
        int rcvbuf = 0)
      : address_(std::move(address)), from_(std::move(from)), prefix_(std::move(prefix)), rcvbuf_(rcvbuf) {
    for (std::size_t i = 0; i < count; ++i) sockets_.push_back(open(i));
  }
  void refill() {
    for (std::size_t i = 0; i < sockets_.size(); ++i)
      if (sockets_[i]->closed_by_peer()) {
        sockets_[i] = open(i);
        ++reopened_;
      }
  }
  // Sends one more byte on every connection (a slowloris tick).
  void trickle(char byte) {
    for (auto& socket : sockets_) ::send(socket->fd(), &byte, 1, MSG_NOSIGNAL);
  }
  std::size_t still_open(const std::string& source = "") const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < sockets_.size(); ++i)
      if ((source.empty() || from_[i % from_.size()] == source) && !sockets_[i]->closed_by_peer()) ++n;
    return n;
  }
  std::size_t reopened() const { return reopened_; }

 private:
  std::unique_ptr<Socket> open(std::size_t i) {
    auto socket = std::make_unique<Socket>(address_, from_[i % from_.size()]);
    if (rcvbuf_ > 0) ::setsockopt(socket->fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf_, sizeof rcvbuf_);
    if (!prefix_.empty()) socket->send_all(prefix_);
    return socket;
  }
  std::string address_;
  std::vector<std::string> from_;
  std::string prefix_;
  int rcvbuf_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  std::size_t reopened_ = 0;
};

// n requests for target from source, one after the other, with between() run before each:
// how many were not answered 200 within limit, and the latencies (median and max printed).
struct Probes {
  int failed = 0;
  std::vector<std::chrono::milliseconds> latencies;
  std::chrono::milliseconds median() const { return latencies[latencies.size() / 2]; }
  std::chrono::milliseconds max() const { return latencies.back(); }
};

Probes probe(const std::string& address, const std::string& source, int n, const std::function<void()>& between,
             const std::string& what, std::chrono::milliseconds limit = 3000ms) {
  Probes out;
  for (int i = 0; i < n; ++i) {
    between();
    Socket socket(address, source);
    auto got = exchange(socket, get("/healthz"), limit);
    if (got.status() != 200) ++out.failed;
    out.latencies.push_back(got.elapsed);
    std::this_thread::sleep_for(20ms);
  }
  std::sort(out.latencies.begin(), out.latencies.end());
  std::printf("  %-64s median %5lld ms, max %5lld ms, %d/%d not answered 200\n", what.c_str(),
              static_cast<long long>(out.median().count()), static_cast<long long>(out.max().count()), out.failed, n);
  return out;
}

std::size_t options_per_address() { return HttpServerOptions{}.max_connections_per_address; }

HttpResponse healthz(const HttpRequest&) { return {200, "text/plain; charset=utf-8", "ok\n"}; }

}  // namespace

TEST_CASE("http: GET and POST reach the handler with method, target, headers, body and peer") {
  auto server = start(loopback(), echo);
  auto address = server->bound_address();
  CHECK(address.starts_with("127.0.0.1:"));
  CHECK(address != "127.0.0.1:0");

  auto got = request(address, "GET /metrics?x=1 HTTP/1.1\r\nHost: test\r\nX-Thing: a\r\nx-thing: b\r\n\r\n");
  CHECK(got.closed);
  CHECK(got.status() == 200);
  CHECK(got.received.find("Connection: close\r\n") != std::string::npos);
  CHECK(got.received.find("Content-Type: text/plain; charset=utf-8\r\n") != std::string::npos);
  CHECK(got.body() == "GET /metrics?x=1\nhost: test\nx-thing: a, b\npeer 127.0.0.1\n\n");

  auto posted = request(address, post("/hooks/github", "{\"zen\":\"ok\"}"));
  CHECK(posted.status() == 200);
  CHECK(posted.body() == "POST /hooks/github\ncontent-length: 12\nhost: test\npeer 127.0.0.1\n\n{\"zen\":\"ok\"}");

  auto chunked = request(address, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  CHECK(chunked.status() == 200);
  CHECK(chunked.body().ends_with("\n\nabcde"));
}

TEST_CASE("http: the handler's status and content type, HEAD without a body, exceptions become 500") {
  auto server = start(loopback(), [](const HttpRequest& r) -> HttpResponse {
    if (r.target == "/throw") throw std::runtime_error("boom");
    if (r.target == "/odd") return {42, "text/plain", "odd"};
    return {202, "application/json", "{}"};
  });
  auto address = server->bound_address();
  auto json = request(address, get("/"));
  CHECK(json.status() == 202);
  CHECK(json.received.find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(json.body() == "{}");

  auto head = request(address, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(head.status() == 202);
  CHECK(head.received.find("Content-Length: 2\r\n") != std::string::npos);
  CHECK(head.body() == "");

  auto thrown = request(address, get("/throw"));
  CHECK(thrown.status() == 500);
  CHECK(thrown.body() == "internal server error\n");
  CHECK(thrown.body().find("boom") == std::string::npos);
  CHECK(request(address, get("/odd")).status() == 500);
}

TEST_CASE("http: Expect 100-continue is answered before the body is read") {
  auto server = start(loopback(), echo);
  auto got = request(server->bound_address(),
                     "POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
  CHECK(got.received.starts_with("HTTP/1.1 100 Continue\r\n\r\n"));
  CHECK(got.status() == 200);
  CHECK(got.body().ends_with("\n\nhi"));
}

TEST_CASE("http: listen addresses, IPv6 and errors") {
  auto bad = HttpServer::start({.listen = "localhost:9810"}, echo);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "http: listen localhost:9810: want <IPv4>:<port> or [<IPv6>]:<port>");
  CHECK(HttpServer::start({.listen = "::1:9810"}, echo).error().message ==
        "http: listen ::1:9810: want <IPv4>:<port> or [<IPv6>]:<port>");
  CHECK(HttpServer::start({.listen = "127.0.0.1:70000"}, echo).error().message ==
        "http: listen 127.0.0.1:70000: want <IPv4>:<port> or [<IPv6>]:<port>");
  CHECK(HttpServer::start({.listen = "127.0.0.1:0", .max_connections = 0}, echo).error().message ==
        "http: listen 127.0.0.1:0: max_connections must be at least 1");

  auto first = start(loopback(), echo);
  auto taken = HttpServer::start({.listen = first->bound_address()}, echo);
  REQUIRE_FALSE(taken);
  CHECK(taken.error().message == "http: listen " + first->bound_address() + ": address already in use");

  auto v6 = HttpServer::start({.listen = "[::1]:0"}, echo);
  if (!v6) {
    WARN("no IPv6 loopback here, [::1] not tested: " + v6.error().message);
    return;
  }
  auto address = (*v6)->bound_address();
  CHECK(address.starts_with("[::1]:"));
  auto got = request(address, get("/v6"));
  CHECK(got.status() == 200);
  CHECK(got.body().find("peer [::1]\n") != std::string::npos);
}

TEST_CASE("http: a Content-Length above max_body is answered 413 without reading the body") {
  std::atomic<int> calls{0};
  auto options = loopback();
  options.max_body = 1024;
  auto server = start(options, [&](const HttpRequest& r) {
    ++calls;
    return echo(r);
  });
  auto address = server->bound_address();
  // Only the headers are sent: the answer cannot wait for a body that never comes.
  auto got = request(address, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n", 2000ms);
  CHECK(got.status() == 413);
  CHECK(got.body() == "request body larger than 1024 bytes\n");
  CHECK(got.elapsed < 1000ms);
  CHECK(calls == 0);

  CHECK(request(address, post("/", std::string(1024, 'x'))).status() == 200);
  CHECK(calls == 1);
}

TEST_CASE("http: a chunked body growing past max_body is answered 413") {
  std::atomic<int> calls{0};
  auto options = loopback();
  options.max_body = 1024;
  auto server = start(options, [&](const HttpRequest& r) {
    ++calls;
    return echo(r);
  });
  std::string body = "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 64; ++i) body += "100\r\n" + std::string(256, 'y') + "\r\n";  // 16 KiB
  body += "0\r\n\r\n";
  auto got = request(server->bound_address(), body);
  CHECK(got.status() == 413);
  CHECK(got.closed);
  CHECK(calls == 0);
}

TEST_CASE("http: headers over 8 KiB are answered 431") {
  auto server = start(loopback(), echo);
  auto got = request(server->bound_address(), "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(9000, 'h') + "\r\n\r\n");
  CHECK(got.status() == 431);
  CHECK(got.body() == "request headers larger than 8192 bytes\n");
}

TEST_CASE("http: malformed requests are answered 400 and closed") {
  auto server = start(loopback(), echo);
  auto address = server->bound_address();
  for (const std::string& bad : {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/9.9\r\n\r\n"),
                                 std::string("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n"),
                                 std::string("GET / HTTP/1.1\r\nNo colon here\r\n\r\n")}) {
    INFO(bad);
    auto got = request(address, bad);
    CHECK(got.status() == 400);
    CHECK(got.body().starts_with("malformed request: "));
    CHECK(got.closed);
  }
}

TEST_CASE("http: a slow client is closed after read_timeout, however it trickles") {
  auto options = loopback();
  options.read_timeout = 300ms;
  std::atomic<int> calls{0};
  auto server = start(options, [&](const HttpRequest& r) {
    ++calls;
    return echo(r);
  });
  auto address = server->bound_address();

  // One byte every 50 ms: each arrives well within any per-read timeout; the whole never does.
  Socket trickle(address);
  auto slow = exchange(trickle, "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + std::string(200, 's') + "\r\n\r\n", 3000ms, 50ms);
  CHECK(slow.closed);
  CHECK(slow.received == "");
  CHECK(slow.elapsed >= 250ms);
  CHECK(slow.elapsed < 1500ms);

  // Connects and sends nothing.
  Socket silent(address);
  auto idle = exchange(silent, "", 3000ms);
  CHECK(idle.closed);
  CHECK(idle.elapsed >= 250ms);
  CHECK(idle.elapsed < 1500ms);

  // Headers in time, the body never completes.
  Socket half(address);
  auto partial = exchange(half, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part", 3000ms);
  CHECK(partial.closed);
  CHECK(partial.elapsed < 1500ms);
  CHECK(calls == 0);
  CHECK(wait_for([&] { return server->active_connections() == 0; }));
}

TEST_CASE("http: a newcomer beyond max_connections takes the place of the oldest connection still reading") {
  auto options = loopback();
  options.max_connections = 2;
  options.read_timeout = 3000ms;
  auto server = start(options, echo);
  auto address = server->bound_address();

  Socket a(address);
  Socket b(address);
  exchange(a, "GET /a HTTP/1.1\r\n", 50ms);
  exchange(b, "GET /b HTTP/1.1\r\n", 50ms);
  REQUIRE(wait_for([&] { return server->active_connections() == 2; }));

  auto newcomer = request(address, get("/c"), 2000ms);
  CHECK(newcomer.status() == 200);
  CHECK(newcomer.elapsed < 1000ms);
  // a, the oldest, gave up its place; b keeps its own.
  auto evicted = exchange(a, "Host: t\r\n\r\n", 1000ms);
  CHECK(evicted.closed);
  CHECK(evicted.received == "");
  auto kept = exchange(b, "Host: t\r\n\r\n");
  CHECK(kept.status() == 200);
  CHECK(kept.body().starts_with("GET /b\n"));
  CHECK(wait_for([&] { return server->active_connections() == 0; }));
  auto stats = server->stats();
  CHECK(stats.evicted == 1);
  CHECK(stats.refused == 0);
  CHECK(stats.accepted == 3);
}

TEST_CASE("http: a connection whose handler runs keeps its place; when every place is so held, newcomers are refused") {
  auto options = loopback();
  options.max_connections = 2;
  options.threads = 3;  // two in the handlers, one to accept
  std::atomic<int> running{0};
  auto server = start(options, [&](const HttpRequest& r) {
    ++running;
    if (r.target == "/slow") std::this_thread::sleep_for(800ms);
    return echo(r);
  });
  auto address = server->bound_address();
  Outcome first, second;
  std::thread one([&] { first = request(address, get("/slow")); });
  std::thread two([&] { second = request(address, get("/slow")); });
  REQUIRE(wait_for([&] { return running.load() == 2; }));
  auto refused = request(address, get("/c"), 2000ms);
  one.join();
  two.join();
  CHECK(refused.closed);
  CHECK(refused.received == "");
  CHECK(refused.elapsed < 700ms);
  CHECK(first.status() == 200);
  CHECK(second.status() == 200);
  CHECK(server->stats().refused == 1);
  CHECK(server->stats().evicted == 0);
}

TEST_CASE("http: 64 and 70 idle connections from one address do not lock out /healthz") {
  // The defaults serve uses: 64 places, 8 per address, head 5 s, request 10 s.
  auto server = start(loopback(), healthz);
  auto address = server->bound_address();
  for (std::size_t count : {64, 70}) {
    Crowd idle(address, count, {"127.0.0.1"});
    std::this_thread::sleep_for(200ms);
    auto what = std::to_string(count) + " idle connections (reconnecting), 127.0.0.1: /healthz from it";
    auto same = probe(address, "127.0.0.1", 10, [&] { idle.refill(); }, what);
    auto other = probe(address, "127.0.1.1", 10, [&] { idle.refill(); }, "  ... and from 127.0.1.1");
    CHECK(same.failed == 0);
    CHECK(other.failed == 0);
    CHECK(wait_for([&] { return idle.still_open() <= options_per_address(); }));
  }
  CHECK(wait_for([&] { return server->active_connections() == 0; }, 3000ms));
}

TEST_CASE("http: defer_accept: silent connections reach the server only after it, a request at once") {
  auto options = loopback();
  options.defer_accept = HttpServerOptions{}.defer_accept;  // serve's default, 1 s
  REQUIRE(options.defer_accept == 1s);
  auto server = start(options, healthz);
  auto address = server->bound_address();
  std::vector<std::unique_ptr<Socket>> silent;
  for (int i = 0; i < 5; ++i) silent.push_back(std::make_unique<Socket>(address));
  std::this_thread::sleep_for(300ms);
  CHECK(server->stats().accepted == 0);  // held by the kernel, not by the server
  Socket talking(address);
  auto got = exchange(talking, get("/healthz"), 2000ms);
  CHECK(got.status() == 200);
  CHECK(got.elapsed < 1000ms);
  CHECK(server->stats().accepted == 1);
  // Handed over after the kernel's first SYN-ACK resend (about 1 s), then cut at head_timeout.
  CHECK(wait_for([&] { return server->stats().accepted == 6; }, 3000ms));

  // A crowd reconnecting as fast as it is evicted, from the probes' own address: with the
  // deferral it reaches the table about once a second per connection, and a probe's request,
  // there with its connection, is read at once.
  Crowd idle(address, 70, {"127.0.0.1"});
  std::this_thread::sleep_for(1500ms);
  auto same = probe(address, "127.0.0.1", 15, [&] { idle.refill(); },
                    "defer_accept 1 s, 70 idle connections (reconnecting), 127.0.0.1: /healthz from it");
  CHECK(same.failed == 0);
  CHECK(idle.reopened() > 0);
}

TEST_CASE("http: 256 idle connections from 64 addresses do not lock out /healthz") {
  auto server = start(loopback(), healthz);
  auto address = server->bound_address();
  Crowd idle(address, 256, sources(2, 64));
  std::this_thread::sleep_for(300ms);
  auto got = probe(address, "127.0.1.1", 15, [&] { idle.refill(); }, "256 idle connections held, 64 sources: /healthz");
  auto from_crowd = probe(address, "127.0.0.2", 5, [&] { idle.refill(); }, "  ... and from one of the crowd's addresses");
  CHECK(got.failed == 0);
  CHECK(from_crowd.failed == 0);
  CHECK(server->active_connections() <= 64 + 8);  // the evicted close on their own strands
  INFO("reopened " << idle.reopened());
  CHECK(idle.reopened() > 0);
}

TEST_CASE("http: the head deadline is absolute: headers trickled byte by byte are cut at head_timeout") {
  auto options = loopback();
  options.head_timeout = 300ms;
  options.read_timeout = 2500ms;
  std::atomic<int> calls{0};
  auto server = start(options, [&](const HttpRequest& r) {
    ++calls;
    return echo(r);
  });
  auto address = server->bound_address();

  // One byte every 50 ms: the head would take 10 s; the read timeout would allow 2.5 s.
  Socket trickle(address);
  auto slow = exchange(trickle, "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + std::string(200, 's') + "\r\n\r\n", 5000ms, 50ms);
  CHECK(slow.closed);
  CHECK(slow.received == "");
  CHECK(slow.elapsed >= 250ms);
  CHECK(slow.elapsed < 1500ms);

  Socket silent(address);
  auto idle = exchange(silent, "", 5000ms);
  CHECK(idle.closed);
  CHECK(idle.elapsed < 1500ms);

  // Headers in time: the body gets the rest of the read timeout, however slowly it comes.
  Socket body(address);
  body.send_all("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\n");
  auto partial = exchange(body, std::string(500, 'b'), 5000ms, 50ms, 1);
  CHECK(partial.closed);
  CHECK(partial.received == "");
  CHECK(partial.elapsed >= 2000ms);
  CHECK(partial.elapsed < 4000ms);
  CHECK(calls == 0);
  // Counted once the server's read has completed, which may be just after the client saw the close.
  CHECK(wait_for([&] { return server->stats().head_timeouts == 2 && server->stats().request_timeouts == 1; }));
}

TEST_CASE("http: 70 slowloris connections, from one and from 64 addresses, do not lock out /healthz") {
  auto server = start(loopback(), healthz);
  auto address = server->bound_address();
  for (const auto& from : {std::vector<std::string>{"127.0.0.1"}, sources(2, 64)}) {
    Crowd slow(address, 70 + (from.size() > 1 ? 58 : 0), from, "GET /healthz HTTP/1.1\r\nHost: t\r\n");
    std::this_thread::sleep_for(200ms);
    auto what = std::to_string(from.size()) + " source(s), headers trickled every 50 ms: /healthz";
    auto got = probe(address, "127.0.1.1", 10, [&] {
      slow.refill();
      slow.trickle('X');
      std::this_thread::sleep_for(30ms);
      slow.trickle('-');
    }, what);
    CHECK(got.failed == 0);
  }
}

TEST_CASE("http: per client address, a crowd evicts only its own connections") {
  auto options = loopback();
  options.max_connections = 8;
  options.max_connections_per_address = 4;
  auto server = start(options, echo);
  auto address = server->bound_address();

  // A client of another address, its body still on the way (the oldest connection of all).
  Socket other(address, "127.0.0.2");
  other.send_all("POST /other HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n");
  REQUIRE(wait_for([&] { return server->active_connections() == 1; }));
  Crowd crowd(address, 20, {"127.0.0.1"});
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(50ms);
    crowd.refill();
  }
  std::this_thread::sleep_for(100ms);
  CHECK(crowd.still_open() <= 4);
  Socket fresh(address, "127.0.0.3");
  CHECK(exchange(fresh, get("/fresh"), 5000ms).status() == 200);
  auto finished = exchange(other, "hi");
  CHECK(finished.status() == 200);
  CHECK(finished.body().starts_with("POST /other\n"));
}

TEST_CASE("http: over the total, the address holding the most places gives one up first") {
  auto options = loopback();
  options.max_connections = 4;
  options.max_connections_per_address = 4;
  auto server = start(options, echo);
  auto address = server->bound_address();
  Socket lone(address, "127.0.0.2");  // the oldest, but alone at its address
  lone.send_all("GET /lone HTTP/1.1\r\n");
  REQUIRE(wait_for([&] { return server->active_connections() == 1; }));
  Crowd crowd(address, 3, {"127.0.0.1"});
  REQUIRE(wait_for([&] { return server->active_connections() == 4; }));
  Socket newcomer(address, "127.0.0.3");
  CHECK(exchange(newcomer, get("/new"), 5000ms).status() == 200);
  CHECK(wait_for([&] { return crowd.still_open() == 2; }));
  auto finished = exchange(lone, "Host: t\r\n\r\n");
  CHECK(finished.status() == 200);
  CHECK(finished.body().starts_with("GET /lone\n"));
}

TEST_CASE("http: clients that never read a large answer do not lock out /healthz") {
  // 8 MiB answers: more than the kernel buffers (tcp_wmem's 4 MiB at most, and the readers'
  // 4 KiB receive buffers), so each write blocks until its deadline (read_timeout, 10 s).
  auto options = loopback();
  options.max_connections = 4;
  auto server = start(options, [](const HttpRequest& r) {
    if (r.target == "/big") return HttpResponse{200, "text/plain; charset=utf-8", std::string(8 << 20, 'b')};
    return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
  });
  auto address = server->bound_address();
  Crowd readers(address, 6, sources(2, 6), get("/big"), 4096);
  std::this_thread::sleep_for(500ms);
  auto got = probe(address, "127.0.1.1", 10, [&] { readers.refill(); }, "6 clients not reading 8 MiB answers, 4 places: /healthz");
  CHECK(got.failed == 0);
}

TEST_CASE("http: pipelined requests, HTTP/1.0 keep-alive and half-closed sockets get one answer, then a close") {
  std::atomic<int> calls{0};
  auto server = start(loopback(), [&](const HttpRequest& r) {
    ++calls;
    return echo(r);
  });
  auto address = server->bound_address();
  auto count = [](const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };

  std::string pipelined;
  for (int i = 0; i < 200; ++i) pipelined += get("/p" + std::to_string(i));
  auto piped = request(address, pipelined);
  CHECK(piped.closed);
  CHECK(count(piped.received, "HTTP/1.1 ") == 1);
  CHECK(piped.body().starts_with("GET /p0\n"));
  CHECK(calls == 1);

  auto old = request(address, "GET /ten HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n");
  CHECK(old.status() == 200);
  CHECK(old.received.find("Connection: close\r\n") != std::string::npos);
  CHECK(old.closed);
  CHECK(old.elapsed < 1000ms);

  // The request, then the client's half of the connection closed: still answered.
  Socket half(address);
  half.send_all(get("/half"));
  ::shutdown(half.fd(), SHUT_WR);
  auto answered = exchange(half, "");
  CHECK(answered.status() == 200);
  CHECK(answered.closed);

  // Half a head, then closed: nothing to answer, and no waiting for the deadline.
  Socket cut(address);
  cut.send_all("GET /cut HTTP/1.1\r\nHo");
  ::shutdown(cut.fd(), SHUT_WR);
  auto gone = exchange(cut, "");
  CHECK(gone.closed);
  CHECK(gone.received == "");
  CHECK(gone.elapsed < 1000ms);
  CHECK(calls == 3);
}

TEST_CASE("http: stop() lets a request being handled finish, closes idle connections, refuses new ones") {
  auto options = loopback();
  options.read_timeout = 5000ms;
  std::atomic<bool> started{false};
  auto server = start(options, [&](const HttpRequest&) {
    started = true;
    std::this_thread::sleep_for(300ms);
    return HttpResponse{200, "text/plain; charset=utf-8", "finished\n"};
  });
  auto address = server->bound_address();

  Socket idle(address);
  REQUIRE(wait_for([&] { return server->active_connections() == 1; }));
  Outcome in_flight;
  std::thread client([&] { in_flight = request(address, get("/slow")); });
  REQUIRE(wait_for([&] { return started.load(); }));

  auto before = Clock::now();
  server->stop();
  auto took = Clock::now() - before;
  client.join();

  CHECK(in_flight.status() == 200);
  CHECK(in_flight.body() == "finished\n");
  CHECK(took >= 150ms);  // it waited for the handler
  CHECK(took < 2000ms);  // not for the idle connection's read_timeout
  auto idle_end = exchange(idle, "", 1000ms);
  CHECK(idle_end.closed);
  CHECK_FALSE(Socket(address).connected());
  server->stop();  // idempotent
}

TEST_CASE("http: 100 concurrent 2 MiB bodies are refused without being buffered") {
  auto options = loopback();
  options.max_body = 1 << 20;
  options.max_connections = 128;
  std::atomic<int> calls{0};
  auto server = start(options, [&](const HttpRequest& r) {
    ++calls;
    return echo(r);
  });
  auto address = server->bound_address();
  const std::string payload = "POST /hooks/x HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(2 << 20) +
                              "\r\n\r\n" + std::string(2 << 20, 'z');
  // The one copy of the payload is shared by every client thread.
  auto before = rss_kib();
  std::vector<std::thread> clients;
  std::vector<int> statuses(100, 0);
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    clients.emplace_back([&, i] {
      Socket socket(address, "127.0.0." + std::to_string(10 + i % 50));  // 2 per address
      statuses[i] = exchange(socket, payload, 10000ms).status();
    });
  }
  for (auto& thread : clients) thread.join();
  auto after = rss_kib();
  CHECK(std::count(statuses.begin(), statuses.end(), 413) == 100);
  CHECK(calls == 0);
  INFO("RSS before " << before << " KiB, after " << after << " KiB");
  CHECK(after < before + 48 * 1024);  // buffering the bodies would take 200 MiB
  CHECK(wait_for([&] { return server->active_connections() == 0; }, 5000ms));
}

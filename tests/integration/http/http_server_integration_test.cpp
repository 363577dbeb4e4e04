// The HTTP server on 127.0.0.1:0 driven by raw non-blocking sockets, so that each test controls
// exactly which bytes arrive when: normal requests, the body and header limits, slow clients,
// malformed requests, the connection limit, stop() during a request, and bounded memory.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
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
  explicit Socket(const std::string& address) {
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
      connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { ::close(fd_); }
  int fd() const { return fd_; }
  bool connected() const { return connected_; }

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

HttpServerOptions loopback() {
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
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

TEST_CASE("http: connections beyond max_connections are closed at once") {
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

  auto refused = request(address, get("/c"), 2000ms);
  CHECK(refused.closed);
  CHECK(refused.received == "");
  CHECK(refused.elapsed < 1000ms);
  CHECK(server->active_connections() <= 2);

  // Finishing one request frees its place.
  auto finished = exchange(a, "Host: t\r\n\r\n");
  CHECK(finished.status() == 200);
  CHECK(finished.body().starts_with("GET /a\n"));
  REQUIRE(wait_for([&] { return server->active_connections() == 1; }));
  CHECK(request(address, get("/d")).status() == 200);
  CHECK(exchange(b, "Host: t\r\n\r\n").status() == 200);
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
      Socket socket(address);
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

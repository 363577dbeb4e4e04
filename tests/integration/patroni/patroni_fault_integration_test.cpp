// The Patroni REST client (providers/patroni) against misbehaving servers on 127.0.0.1 that the
// test starts on plain sockets (tests/integration/support/fake_tcp_server.hpp): one that accepts
// and never answers, one that trickles bytes, one that speaks another protocol or garbage, one
// that stalls in the middle of the headers or the body, one that sends headers or a body without
// end, and ones that answer 200 with a body that is not JSON or not a JSON object. Every call
// must come back with an error that names the endpoint, the request and what went wrong, within
// the endpoint's timeout plus a margin (or at once, when nothing needs waiting for), and the
// memory it holds must stay bounded. Needs nothing but the loopback interface.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "providers/patroni/patroni_client.hpp"
#include "tests/integration/support/fake_tcp_server.hpp"

using namespace std::chrono_literals;
using pgc::providers::make_patroni_client;
using pgc::providers::PatroniClient;
using pgc::providers::PatroniEndpoint;
using pgc::test::FakeTcpServer;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto k_timeout = 1000ms;
// Scheduling slack on a loaded machine: a timed-out call ends within k_timeout + k_margin, and a
// call that has nothing to wait for within k_margin.
// Four times more under AddressSanitizer (PGC_SANITIZE builds run at -O0, several times slower).
#if defined(__SANITIZE_ADDRESS__)
constexpr auto k_margin = 3000ms;
#else
constexpr auto k_margin = 750ms;
#endif

PatroniEndpoint endpoint(const FakeTcpServer& server) {
  PatroniEndpoint e;
  e.address = "127.0.0.1";
  e.port = server.port();
  e.username = "pgconverge";
  e.password = "rest-api-password-never-shown";
  e.timeout = k_timeout;
  return e;
}

// One call of the client and how it ended.
struct Call {
  std::string name;  // "GET /cluster"
  std::function<std::optional<std::string>(PatroniClient&)> run;  // the error, if any
};

std::vector<Call> calls() {
  auto error = [](const auto& result) -> std::optional<std::string> {
    if (result) return std::nullopt;
    return result.error().message;
  };
  return {
      {"GET /cluster", [=](PatroniClient& c) { return error(c.cluster()); }},
      {"GET /config", [=](PatroniClient& c) { return error(c.config()); }},
      {"PATCH /config", [=](PatroniClient& c) { return error(c.patch_config({{"ttl", 30}})); }},
      {"POST /restart", [=](PatroniClient& c) { return error(c.restart(true)); }},
      {"GET /replica", [=](PatroniClient& c) { return error(c.request("GET", "/replica")); }},
  };
}

struct Outcome {
  std::optional<std::string> error;
  std::chrono::milliseconds took{0};
};

Outcome timed(const Call& call, const FakeTcpServer& server) {
  auto client = make_patroni_client(endpoint(server));
  auto start = Clock::now();
  auto error = call.run(*client);
  return {error, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)};
}

enum class Expect { at_once, at_timeout };

// Every call against the server fails with "patroni <address>: <request>: <what>" in time. Calls
// that wait for the timeout run at the same time, each on its own thread and connection (Catch's
// checks stay on this one); the others one after another, so that memory is measured per call.
void check_every_call(const FakeTcpServer& server, const std::string& what, Expect when) {
  auto all = calls();
  std::vector<Outcome> outcomes(all.size());
  if (when == Expect::at_timeout) {
    std::vector<std::jthread> threads;
    for (std::size_t i = 0; i < all.size(); ++i) threads.emplace_back([&, i] { outcomes[i] = timed(all[i], server); });
  } else {
    for (std::size_t i = 0; i < all.size(); ++i) outcomes[i] = timed(all[i], server);
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& call = all[i];
    const auto& got = outcomes[i];
    INFO(call.name << " took " << got.took.count() << " ms: " << got.error.value_or("(no error)"));
    REQUIRE(got.error);
    CHECK(*got.error == "patroni " + server.address() + ": " + call.name + ": " + what);
    CHECK(got.error->find("never-shown") == std::string::npos);
    if (when == Expect::at_timeout) {
      CHECK(got.took >= k_timeout - 50ms);
      CHECK(got.took < k_timeout + k_margin);
    } else {
      CHECK(got.took < k_margin);
    }
  }
}

// The whole request (headers and Content-Length body), read before answering: closing with
// unread bytes would reset the connection instead.
void read_request_head(int fd, const std::atomic<bool>& stopping) {
  auto data = pgc::test::read_until(fd, stopping, "\r\n\r\n");
  auto end = data.find("\r\n\r\n");
  if (end == std::string::npos) return;
  std::string head = data.substr(0, end);
  std::transform(head.begin(), head.end(), head.begin(), [](unsigned char ch) { return std::tolower(ch); });
  std::size_t length = 0;
  if (auto at = head.find("\r\ncontent-length:"); at != std::string::npos)
    length = std::stoul(head.substr(at + std::strlen("\r\ncontent-length:")));
  auto have = data.size() - end - 4;
  if (have < length) pgc::test::read_until(fd, stopping, "", length - have);
}

// Answers one request with `bytes`, then keeps the connection open without sending more.
FakeTcpServer::Behaviour answer_then_stall(std::string bytes) {
  return [bytes](int fd, const std::atomic<bool>& stopping) {
    read_request_head(fd, stopping);
    pgc::test::write_all(fd, bytes, stopping);
    pgc::test::hold_silently(fd, stopping);
  };
}

// Answers one request with `bytes` and closes.
FakeTcpServer::Behaviour answer_then_close(std::string bytes) {
  return [bytes](int fd, const std::atomic<bool>& stopping) {
    read_request_head(fd, stopping);
    pgc::test::write_all(fd, bytes, stopping);
  };
}

std::string ok_with(const std::string& body, const std::string& content_type = "application/json") {
  return "HTTP/1.1 200 OK\r\nContent-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

}  // namespace

TEST_CASE("patroni faults: a server that accepts and never answers times out on time") {
  FakeTcpServer server(pgc::test::hold_silently);
  check_every_call(server, "timed out after 1s", Expect::at_timeout);
}

TEST_CASE("patroni faults: the deadline covers the whole response, however slowly it trickles") {
  // A well-formed answer, one byte every 50 ms: each byte is in time, the whole never is.
  FakeTcpServer server([](int fd, const std::atomic<bool>& stopping) {
    read_request_head(fd, stopping);
    for (char ch : ok_with(R"({"members": [], "padding": ")" + std::string(200, 'p') + "\"}")) {
      if (stopping || !pgc::test::write_all(fd, std::string(1, ch), stopping)) return;
      pgc::test::pause_unless_stopping(50ms, stopping);
    }
  });
  check_every_call(server, "timed out after 1s", Expect::at_timeout);
}

TEST_CASE("patroni faults: a status line and then silence, in the headers or in the body") {
  SECTION("in the headers") {
    FakeTcpServer server(answer_then_stall("HTTP/1.1 200 OK\r\nContent-Type: appl"));
    check_every_call(server, "timed out after 1s", Expect::at_timeout);
  }
  SECTION("in the body") {
    FakeTcpServer server(answer_then_stall(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"members\": [{\"na"));
    check_every_call(server, "timed out after 1s", Expect::at_timeout);
  }
  SECTION("in a chunked body") {
    FakeTcpServer server(
        answer_then_stall("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"members\": "));
    check_every_call(server, "timed out after 1s", Expect::at_timeout);
  }
}

TEST_CASE("patroni faults: a connection closed early is told apart from a timeout") {
  SECTION("closed at once") {
    FakeTcpServer server([](int, const std::atomic<bool>&) {});
    check_every_call(server, "connection closed before a response", Expect::at_once);
  }
  SECTION("closed in the middle of the body") {
    FakeTcpServer server(answer_then_close("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"members\": "));
    check_every_call(server, "connection closed in the middle of the response", Expect::at_once);
  }
}

TEST_CASE("patroni faults: garbage and other protocols are errors at once, not timeouts") {
  SECTION("random bytes") {
    // sizeof - 1: the bytes without the literal's NUL (a count of 20 read past it: ASan).
    static constexpr char k_garbage[] = "\x00\xff\x13\x37 \x01\x02garbage\r\n\r\n";
    FakeTcpServer server(answer_then_stall(std::string(k_garbage, sizeof k_garbage - 1)));
    check_every_call(server, "not an HTTP response (bad version)", Expect::at_once);
  }
  SECTION("an SSH server on the port") {
    FakeTcpServer server([](int fd, const std::atomic<bool>& stopping) {
      pgc::test::write_all(fd, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", stopping);  // before the request, as sshd does
      pgc::test::hold_silently(fd, stopping);
    });
    check_every_call(server, "not an HTTP response (bad version)", Expect::at_once);
  }
  SECTION("a PostgreSQL server on the port") {
    // What a postmaster answers to bytes that are not a startup packet.
    std::string error("E\0\0\0\x5cSFATAL\0C08P01\0Minvalid length of startup packet\0\0", 52);
    FakeTcpServer server(answer_then_stall(error));
    check_every_call(server, "not an HTTP response (bad version)", Expect::at_once);
  }
  SECTION("a bad status line") {
    FakeTcpServer server(answer_then_stall("HTTP/1.1 OK\r\n\r\n"));
    check_every_call(server, "not an HTTP response (bad status)", Expect::at_once);
  }
  SECTION("a bad Content-Length") {
    FakeTcpServer server(answer_then_stall("HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n{}"));
    check_every_call(server, "not an HTTP response (bad Content-Length)", Expect::at_once);
  }
  SECTION("a bad chunk") {
    FakeTcpServer server(answer_then_stall("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n"));
    check_every_call(server, "not an HTTP response (bad chunk)", Expect::at_once);
  }
}

TEST_CASE("patroni faults: headers and bodies without end are cut at their limits, memory stays bounded") {
  SECTION("headers without end") {
    FakeTcpServer server([](int fd, const std::atomic<bool>& stopping) {
      read_request_head(fd, stopping);
      pgc::test::write_all(fd, "HTTP/1.1 200 OK\r\n", stopping);
      const std::string header = "X-Padding: " + std::string(1000, 'h') + "\r\n";
      while (pgc::test::write_all(fd, header, stopping)) {
      }
    });
    check_every_call(server, "response headers larger than 8192 bytes", Expect::at_once);
  }
  SECTION("one header line without end") {
    FakeTcpServer server([](int fd, const std::atomic<bool>& stopping) {
      read_request_head(fd, stopping);
      pgc::test::write_all(fd, "HTTP/1.1 200 OK\r\nX-Endless: ", stopping);
      while (pgc::test::write_all(fd, std::string(4096, 'h'), stopping)) {
      }
    });
    check_every_call(server, "response headers larger than 8192 bytes", Expect::at_once);
  }
  auto before = rss_kib();
  SECTION("a Content-Length beyond the limit") {
    FakeTcpServer server(answer_then_stall("HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n{\"members\": ["));
    check_every_call(server, "response larger than 8388608 bytes", Expect::at_once);
  }
  SECTION("a chunked body without end") {
    FakeTcpServer server([](int fd, const std::atomic<bool>& stopping) {
      read_request_head(fd, stopping);
      pgc::test::write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", stopping);
      const std::string chunk = "10000\r\n" + std::string(0x10000, 'b') + "\r\n";
      while (pgc::test::write_all(fd, chunk, stopping)) {
      }
    });
    check_every_call(server, "response larger than 8388608 bytes", Expect::at_once);
    INFO("VmRSS before " << before << " KiB, after " << rss_kib() << " KiB");
    CHECK(rss_kib() < before + 64 * 1024);
  }
  SECTION("an HTTP/1.0 body without length or end") {
    FakeTcpServer server([](int fd, const std::atomic<bool>& stopping) {
      read_request_head(fd, stopping);
      pgc::test::write_all(fd, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[", stopping);
      const std::string element = R"({"name": "pg-1"},)";
      std::string block;
      while (block.size() < 65536) block += element;
      while (pgc::test::write_all(fd, block, stopping)) {
      }
    });
    check_every_call(server, "response larger than 8388608 bytes", Expect::at_once);
    INFO("VmRSS before " << before << " KiB, after " << rss_kib() << " KiB");
    CHECK(rss_kib() < before + 64 * 1024);
  }
}

TEST_CASE("patroni faults: a 200 whose body is not JSON, or not a JSON object, is an error for the JSON calls") {
  struct Case {
    std::string body;
    std::string content_type;
    std::string what;
  };
  for (const auto& c : std::vector<Case>{
           {"<html><body>502 Bad Gateway</body></html>", "text/html",
            "the answer is not JSON: <html><body>502 Bad Gateway</body></html>"},
           {"", "application/json", "the answer is not JSON: (empty)"},
           {R"({"members": [{"name": "pg-1", )", "application/json",
            R"(the answer is not JSON: {"members": [{"name": "pg-1",)"},
           {R"([{"name": "pg-1", "role": "leader"}])", "application/json",
            R"(the answer is not a JSON object: [{"name": "pg-1", "role": "leader"}])"},
           {R"("members")", "application/json", R"(the answer is not a JSON object: "members")"},
           {"42", "application/json", "the answer is not a JSON object: 42"},
           {"null", "application/json", "the answer is not a JSON object: null"},
       }) {
    INFO(c.body);
    FakeTcpServer server(answer_then_close(ok_with(c.body, c.content_type)));
    auto client = make_patroni_client(endpoint(server));
    auto prefix = "patroni " + server.address() + ": ";
    auto start = Clock::now();
    auto cluster = client->cluster();
    auto config = client->config();
    auto patched = client->patch_config({{"ttl", 30}});
    CHECK(Clock::now() - start < 3 * k_margin);
    REQUIRE_FALSE(cluster);
    CHECK(cluster.error().message == prefix + "GET /cluster: " + c.what);
    REQUIRE_FALSE(config);
    CHECK(config.error().message == prefix + "GET /config: " + c.what);
    REQUIRE_FALSE(patched);
    CHECK(patched.error().message == prefix + "PATCH /config: " + c.what);
    // The calls whose status is the answer take the body as it is.
    auto raw = client->request("GET", "/replica");
    REQUIRE(raw);
    CHECK(raw->status == 200);
    CHECK(raw->body == c.body);
  }
}

TEST_CASE("patroni faults: 401 and 403 are permanent errors (waiting changes no credentials); 503 is not") {
  for (int status : {401, 403, 503}) {
    INFO(status);
    std::string body = R"({"error": "no"})";
    FakeTcpServer server(answer_then_close("HTTP/1.1 " + std::to_string(status) + " No\r\nContent-Type: " +
                                           "application/json\r\nContent-Length: " + std::to_string(body.size()) +
                                           "\r\n\r\n" + body));
    auto client = make_patroni_client(endpoint(server));
    auto prefix = "patroni " + server.address() + ": ";
    auto cluster = client->cluster();
    auto patched = client->patch_config({{"ttl", 30}});
    REQUIRE_FALSE(cluster);
    REQUIRE_FALSE(patched);
    CHECK(patched.error().message == prefix + "PATCH /config: HTTP " + std::to_string(status) + ": " + body);
    CHECK(patched.error().message.find("never-shown") == std::string::npos);
    bool refused = status != 503;
    CHECK(cluster.error().is_permanent() == refused);
    CHECK(patched.error().is_permanent() == refused);
    if (refused) CHECK(patched.error().permanent == pgc::k_http_forbidden);
  }
}

TEST_CASE("patroni faults: a long non-JSON answer is shown as a short snippet on one line") {
  FakeTcpServer server(answer_then_close(ok_with("line one\r\nline two\t" + std::string(5000, 'x'), "text/plain")));
  auto cluster = make_patroni_client(endpoint(server))->cluster();
  REQUIRE_FALSE(cluster);
  CHECK(cluster.error().message ==
        "patroni " + server.address() + ": GET /cluster: the answer is not JSON: line one  line two " +
            std::string(200 - 19, 'x') + "...");
}

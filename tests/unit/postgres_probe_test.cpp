// observe_postgres / execute_sql without a server: refused and silent endpoints, and values
// that would break a concatenated conninfo string. The real-server cases are in
// tests/integration/postgres/.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "tests/support/free_port.hpp"
#include "providers/postgres/postgres_probe.hpp"

using namespace pgc::providers;

namespace {

using Clock = std::chrono::steady_clock;

// A listening TCP socket on 127.0.0.1 that never accepts: the kernel completes the handshake,
// nobody ever answers. Closing it leaves its port closed (connection refused).
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

PgConnection pg_connection(int port) {
  PgConnection c;
  c.host = "127.0.0.1";
  c.port = port;
  c.password = "s3cret-pw";
  c.connect_timeout = std::chrono::milliseconds(2000);
  c.statement_timeout = std::chrono::milliseconds(2000);
  return c;
}

}  // namespace

TEST_CASE("postgres probe: a closed port is an error at once, naming the endpoint") {
  int port = pgc::test::free_loopback_port();
  auto start = Clock::now();
  auto observed = observe_postgres(pg_connection(port));
  auto elapsed = Clock::now() - start;
  REQUIRE_FALSE(observed);
  const auto& message = observed.error().message;
  CHECK(message.starts_with("postgres 127.0.0.1:" + std::to_string(port) + ": connect: "));
  CHECK(message.find("Connection refused") != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);  // one line, libpq's "\n\tIs the server running" folded
  CHECK(message.find("s3cret-pw") == std::string::npos);
  CHECK(elapsed < std::chrono::milliseconds(500));

  auto rows = execute_sql(pg_connection(port), "SELECT 1");
  REQUIRE_FALSE(rows);
  CHECK(rows.error().message.starts_with("postgres 127.0.0.1:" + std::to_string(port) + ": connect: "));
}

TEST_CASE("postgres probe: a server that never answers the startup is bounded by connect_timeout") {
  Listener silent;
  auto c = pg_connection(silent.port());
  c.connect_timeout = std::chrono::milliseconds(500);
  auto start = Clock::now();
  auto observed = observe_postgres(c);
  auto elapsed = Clock::now() - start;
  REQUIRE_FALSE(observed);
  CHECK(observed.error().message ==
        "postgres 127.0.0.1:" + std::to_string(silent.port()) + ": connect: timed out after 500ms");
  CHECK(elapsed >= std::chrono::milliseconds(450));
  CHECK(elapsed < std::chrono::milliseconds(1000));
}

TEST_CASE("postgres probe: values with spaces, quotes and '=' are passed as keywords, not parsed") {
  // In a concatenated conninfo string these would end the value early or be a syntax error
  // ("missing \"=\" after ..."); as keywords libpq just tries to connect with them.
  int port = pgc::test::free_loopback_port();
  auto c = pg_connection(port);
  c.user = "o'brien x";
  c.password = "p a\"ss' w=rd \\";
  c.dbname = "my db = 'x' sslmode=disable";
  auto observed = observe_postgres(c);
  REQUIRE_FALSE(observed);
  const auto& message = observed.error().message;
  CHECK(message.find("Connection refused") != std::string::npos);
  CHECK(message.find("missing") == std::string::npos);
  CHECK(message.find("invalid") == std::string::npos);
  CHECK(message.find("p a\"ss") == std::string::npos);
}

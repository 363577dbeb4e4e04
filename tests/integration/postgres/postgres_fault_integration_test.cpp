// observe_postgres / execute_sql (providers/postgres, libpq) against fake PostgreSQL servers on
// 127.0.0.1 that the test starts on plain sockets (tests/integration/support/fake_tcp_server.hpp)
// and that speak just enough of the wire protocol (SSL refusal, startup, simple query) to fail
// on purpose: one that accepts and never answers, ones that answer garbage or another protocol,
// stall in the middle of a message, refuse with a FATAL error, never answer the query (and the
// cancel request), flood notices, or answer the query with garbage or with results of the wrong
// shape. A well-behaved fake is observed first, so that every failure below is the fault's.
// Every call must return an error that names the server and the phase within its timeout plus a
// margin, never hang or crash. Needs nothing but the loopback interface.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "providers/postgres/postgres_probe.hpp"
#include "tests/integration/support/fake_tcp_server.hpp"

using namespace std::chrono_literals;
using pgc::providers::execute_sql;
using pgc::providers::observe_postgres;
using pgc::providers::PgConnection;
using pgc::test::FakeTcpServer;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto k_timeout = 1000ms;  // connect_timeout and statement_timeout
// Scheduling slack on a loaded machine.
constexpr auto k_margin = 750ms;
// What the probe may add after a query timed out: delivering the cancel request (1 s at most),
// then draining the server's answer to it (0.5 s); see postgres_probe.cpp.
constexpr auto k_cancel_costs = 1500ms;
constexpr std::uint32_t k_ssl_request = 80877103;
constexpr std::uint32_t k_cancel_request = 80877102;
const std::string k_password = "pg-password-never-shown";

std::string int32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string int16(std::uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::uint32_t read_int32(const std::string& bytes, std::size_t at = 0) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes.at(at + i));
  return v;
}

// A backend message: type byte, length (itself included), payload.
std::string message(char type, const std::string& payload) {
  return std::string(1, type) + int32(static_cast<std::uint32_t>(payload.size() + 4)) + payload;
}
std::string cstr(const std::string& text) { return text + '\0'; }

std::string error_response(const std::string& severity, const std::string& code, const std::string& text) {
  return message('E', cstr("S" + severity) + cstr("V" + severity) + cstr("C" + code) + cstr("M" + text) + '\0');
}

// One result of text columns: RowDescription, DataRows, CommandComplete.
std::string result(const std::vector<std::string>& columns, const std::vector<std::vector<std::string>>& rows) {
  std::string description = int16(static_cast<std::uint16_t>(columns.size()));
  for (const auto& name : columns)
    description += cstr(name) + int32(0) + int16(0) + int32(25) + int16(0xffff) + int32(0xffffffff) + int16(0);
  std::string out = message('T', description);
  for (const auto& row : rows) {
    std::string data = int16(static_cast<std::uint16_t>(row.size()));
    for (const auto& value : row) data += int32(static_cast<std::uint32_t>(value.size())) + value;
    out += message('D', data);
  }
  return out + message('C', cstr("SELECT " + std::to_string(rows.size())));
}

const std::string k_ready = message('Z', "I");

// What observe_postgres expects: settings, replication rows, pending restarts.
const std::string k_observe_answer =
    result({"pg_is_in_recovery", "server_version", "server_version_num", "synchronous_standby_names",
            "system_identifier"},
           {{"f", "15.99 (fake)", "150099", "ANY 1 (pg-2)", "7301234567890123456"}}) +
    result({"application_name", "state", "sync_state"}, {{"pg-2", "streaming", "quorum"}}) +
    result({"name"}, {{"shared_buffers"}}) + k_ready;

// The fake's side of a connection up to the first query; what it does then is the test's.
struct Fake {
  // Called with the query's text once startup has completed; returns when the connection
  // should be closed.
  std::function<void(int fd, const std::string& query, const std::atomic<bool>& stopping)> on_query;
  // What a cancel request's connection gets: closed at once (as PostgreSQL does), or held.
  bool answer_cancel = true;
  std::atomic<int>* cancels = nullptr;
};

FakeTcpServer::Behaviour speaks_startup(Fake fake) {
  return [fake](int fd, const std::atomic<bool>& stopping) {
    auto first = pgc::test::read_until(fd, stopping, "", 8);
    if (first.size() < 8) return;
    auto length = read_int32(first);
    auto code = read_int32(first, 4);
    if (code == k_cancel_request) {
      if (fake.cancels) ++*fake.cancels;
      if (!fake.answer_cancel) pgc::test::hold_silently(fd, stopping);
      return;
    }
    if (code == k_ssl_request) {
      if (!pgc::test::write_all(fd, "N", stopping)) return;
      auto next = pgc::test::read_until(fd, stopping, "", 4);
      if (next.size() < 4) return;
      length = read_int32(next);
      pgc::test::read_until(fd, stopping, "", length - 4);
    } else {
      pgc::test::read_until(fd, stopping, "", length - 8);
    }
    std::string startup = message('R', int32(0)) + message('S', cstr("server_version") + cstr("15.99 (fake)")) +
                          message('S', cstr("client_encoding") + cstr("UTF8")) +
                          message('K', int32(4242) + int32(0x5eed)) + k_ready;
    if (!pgc::test::write_all(fd, startup, stopping)) return;
    auto head = pgc::test::read_until(fd, stopping, "", 5);
    if (head.size() < 5 || head[0] != 'Q') return;
    auto query = pgc::test::read_until(fd, stopping, "", read_int32(head, 1) - 4);
    fake.on_query(fd, query, stopping);
  };
}

// Answers the SSL request (or whatever comes first) with `bytes`, then holds the connection.
FakeTcpServer::Behaviour answers_at_once(std::string bytes) {
  return [bytes](int fd, const std::atomic<bool>& stopping) {
    pgc::test::read_until(fd, stopping, "", 8);
    pgc::test::write_all(fd, bytes, stopping);
    pgc::test::hold_silently(fd, stopping);
  };
}

// Refuses SSL, reads the startup packet, answers `bytes`, then holds the connection.
FakeTcpServer::Behaviour answers_startup_with(std::string bytes) {
  return [bytes](int fd, const std::atomic<bool>& stopping) {
    pgc::test::read_until(fd, stopping, "", 8);
    if (!pgc::test::write_all(fd, "N", stopping)) return;
    auto next = pgc::test::read_until(fd, stopping, "", 4);
    if (next.size() < 4) return;
    pgc::test::read_until(fd, stopping, "", read_int32(next) - 4);
    pgc::test::write_all(fd, bytes, stopping);
    pgc::test::hold_silently(fd, stopping);
  };
}

PgConnection connection(const FakeTcpServer& server) {
  PgConnection c;
  c.host = "127.0.0.1";
  c.port = server.port();
  c.password = k_password;
  c.connect_timeout = k_timeout;
  c.statement_timeout = k_timeout;
  return c;
}

struct Outcome {
  std::string error;  // empty: it succeeded
  std::chrono::milliseconds took{0};
};

Outcome observe(const FakeTcpServer& server) {
  auto start = Clock::now();
  auto got = observe_postgres(connection(server));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return {got ? std::string() : got.error().message, took};
}

// The error starts "postgres 127.0.0.1:<port>: <phase>: " and holds `what`; never the password.
void check_error(const Outcome& got, const FakeTcpServer& server, const std::string& phase, const std::string& what) {
  INFO("took " << got.took.count() << " ms: " << got.error);
  REQUIRE_FALSE(got.error.empty());
  CHECK(got.error.starts_with("postgres " + server.address() + ": " + phase + ": "));
  CHECK(got.error.find(what) != std::string::npos);
  CHECK(got.error.find(k_password) == std::string::npos);
  CHECK(got.error.find('\n') == std::string::npos);
}

void check_at_once(const Outcome& got) {
  INFO("took " << got.took.count() << " ms: " << got.error);
  CHECK(got.took < k_margin);
}

void check_at_timeout(const Outcome& got, std::chrono::milliseconds extra = 0ms) {
  INFO("took " << got.took.count() << " ms: " << got.error);
  CHECK(got.took >= k_timeout - 50ms);
  CHECK(got.took < k_timeout + extra + k_margin);
}

}  // namespace

TEST_CASE("postgres faults: the fake speaks enough of the protocol to be observed") {
  FakeTcpServer server(speaks_startup({[](int fd, const std::string& query, const std::atomic<bool>& stopping) {
    CHECK(query.find("pg_is_in_recovery()") != std::string::npos);
    pgc::test::write_all(fd, k_observe_answer, stopping);
    pgc::test::read_until(fd, stopping, "", 5);  // Terminate
  }}));
  auto got = observe_postgres(connection(server));
  REQUIRE(got);
  CHECK_FALSE(got->in_recovery);
  CHECK(got->server_version == "15.99 (fake)");
  CHECK(got->server_version_num == 150099);
  CHECK(got->synchronous_standby_names == "ANY 1 (pg-2)");
  CHECK(got->system_identifier == "7301234567890123456");
  REQUIRE(got->replication.size() == 1);
  CHECK(got->replication[0].sync_state == "quorum");
  CHECK(got->pending_restart == std::vector<std::string>{"shared_buffers"});
}

TEST_CASE("postgres faults: a server that accepts and never answers times out at connect_timeout") {
  FakeTcpServer server(pgc::test::hold_silently);
  auto got = observe(server);
  check_error(got, server, "connect", "timed out after 1s");
  check_at_timeout(got);
  CHECK(got.error == "postgres " + server.address() + ": connect: timed out after 1s");
}

TEST_CASE("postgres faults: garbage or another protocol during startup is an error at once") {
  SECTION("an HTTP server on the port") {
    FakeTcpServer server(answers_at_once("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
    auto got = observe(server);
    check_error(got, server, "connect", "invalid response to SSL negotiation: H");
    check_at_once(got);
  }
  SECTION("random bytes after the SSL refusal") {
    FakeTcpServer server(answers_startup_with(std::string("\x01\x02\xff\xfegarbage\r\n", 13)));
    auto got = observe(server);
    check_error(got, server, "connect", "expected authentication request from server, but received");
    check_at_once(got);
  }
  SECTION("an authentication message with an absurd length") {
    FakeTcpServer server(answers_startup_with("R" + int32(0x7ffffff0) + int32(0)));
    auto got = observe(server);
    check_error(got, server, "connect", "expected authentication request from server, but received R");
    check_at_once(got);
  }
  SECTION("an SSL acceptance, then plain text for the TLS handshake") {
    FakeTcpServer server([](int fd, const std::atomic<bool>& stopping) {
      pgc::test::read_until(fd, stopping, "", 8);
      // "S", then the ClientHello arrives and is answered in plain text.
      if (!pgc::test::write_all(fd, "S", stopping) || pgc::test::read_some(fd, stopping).empty()) return;
      pgc::test::write_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", stopping);
      pgc::test::hold_silently(fd, stopping);
    });
    auto got = observe(server);
    check_error(got, server, "connect", "SSL error: wrong version number");
    check_at_once(got);
  }
}

TEST_CASE("postgres faults: a FATAL error during startup is shown with the server's words") {
  FakeTcpServer server(answers_startup_with(error_response("FATAL", "53300", "sorry, too many clients already")));
  auto got = observe(server);
  check_error(got, server, "connect", "FATAL:  sorry, too many clients already");
  check_at_once(got);
}

TEST_CASE("postgres faults: a startup that stalls halfway times out at connect_timeout") {
  SECTION("after the SSL refusal") {
    FakeTcpServer server(answers_startup_with(""));
    auto got = observe(server);
    check_error(got, server, "connect", "timed out after 1s");
    check_at_timeout(got);
  }
  SECTION("in the middle of a message") {
    FakeTcpServer server(answers_startup_with(message('R', int32(0)) + "S" + int32(100) + "server_ver"));
    auto got = observe(server);
    check_error(got, server, "connect", "timed out after 1s");
    check_at_timeout(got);
  }
  SECTION("in the middle of the TLS handshake") {
    FakeTcpServer server(answers_at_once("S" + std::string(64, 'x')));  // a TLS record of 30840 bytes, never sent
    auto got = observe(server);
    check_error(got, server, "connect", "timed out after 1s");
    check_at_timeout(got);
  }
  SECTION("before ReadyForQuery") {
    FakeTcpServer server(answers_startup_with(message('R', int32(0)) + message('K', int32(1) + int32(2))));
    auto got = observe(server);
    check_error(got, server, "connect", "timed out after 1s");
    check_at_timeout(got);
  }
}

TEST_CASE("postgres faults: a query that is never answered is cancelled at statement_timeout") {
  std::atomic<int> cancels{0};
  SECTION("the cancel request is taken") {
    FakeTcpServer server(speaks_startup({[](int fd, const std::string&, const std::atomic<bool>& stopping) {
                                           pgc::test::hold_silently(fd, stopping);
                                         },
                                         true, &cancels}));
    auto got = observe(server);
    check_error(got, server, "observe", "timed out after 1s");
    CHECK(got.error == "postgres " + server.address() + ": observe: timed out after 1s");
    check_at_timeout(got, 2 * k_timeout - 500ms);  // connect (at once), query, the cancel's drain
    CHECK(cancels == 1);
  }
  SECTION("the cancel request is never answered either") {
    FakeTcpServer server(speaks_startup({[](int fd, const std::string&, const std::atomic<bool>& stopping) {
                                           pgc::test::hold_silently(fd, stopping);
                                         },
                                         false, &cancels}));
    auto start = Clock::now();
    auto got = execute_sql(connection(server), "SELECT 1");
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    REQUIRE_FALSE(got);
    check_error({got.error().message, took}, server, "query",
                "timed out after 1s (cancel request not answered within 1s)");
    check_at_timeout({got.error().message, took}, k_cancel_costs);
    CHECK(cancels == 1);
  }
}

TEST_CASE("postgres faults: notices without end, or a row that never completes, do not extend the deadline") {
  SECTION("a notice every 10 ms") {
    FakeTcpServer server(speaks_startup({[](int fd, const std::string&, const std::atomic<bool>& stopping) {
      auto notice = message('N', cstr("SNOTICE") + cstr("VNOTICE") + cstr("C00000") + cstr("Mstill working") + '\0');
      while (pgc::test::write_all(fd, notice, stopping)) pgc::test::pause_unless_stopping(10ms, stopping);
    }}));
    auto got = observe(server);
    check_error(got, server, "observe", "timed out after 1s");
    check_at_timeout(got, k_cancel_costs);
  }
  SECTION("a DataRow trickled one byte every 20 ms") {
    FakeTcpServer server(speaks_startup({[](int fd, const std::string&, const std::atomic<bool>& stopping) {
      auto answer = result({"a", "b", "c", "d"}, {{"f", std::string(500, 'v'), "150099", ""}});
      for (char ch : answer) {
        if (!pgc::test::write_all(fd, std::string(1, ch), stopping)) return;
        pgc::test::pause_unless_stopping(20ms, stopping);
      }
    }}));
    auto got = observe(server);
    check_error(got, server, "observe", "timed out after 1s");
    check_at_timeout(got, k_cancel_costs);
  }
}

TEST_CASE("postgres faults: garbage or a dropped connection in answer to the query is an error at once") {
  SECTION("garbage bytes") {
    FakeTcpServer server(speaks_startup({[](int fd, const std::string&, const std::atomic<bool>& stopping) {
      pgc::test::write_all(fd, std::string("garbage\x00\x01\xff\xfe garbage", 19), stopping);
      pgc::test::hold_silently(fd, stopping);
    }}));
    auto got = observe(server);
    check_error(got, server, "observe", "lost synchronization with server: got message type \"g\"");
    check_at_once(got);
  }
  SECTION("malformed notices, one every 10 ms") {
    FakeTcpServer server(speaks_startup({[](int fd, const std::string&, const std::atomic<bool>& stopping) {
      auto notice = message('N', cstr("SNOTICE") + cstr("Mno terminator"));  // the field list lacks its final NUL
      while (pgc::test::write_all(fd, notice, stopping)) pgc::test::pause_unless_stopping(10ms, stopping);
    }}));
    auto got = observe(server);
    // libpq repeats its complaint for every such message; the error says it once.
    CHECK(got.error == "postgres " + server.address() +
                           ": observe: message contents do not agree with length in message type \"N\"");
    CHECK(got.took < k_timeout + k_cancel_costs + k_margin);
  }
  SECTION("the connection closed in the middle of a result") {
    FakeTcpServer server(speaks_startup({[](int fd, const std::string&, const std::atomic<bool>& stopping) {
      pgc::test::write_all(fd, k_observe_answer.substr(0, 40), stopping);
    }}));
    auto got = observe(server);
    check_error(got, server, "observe", "server closed the connection unexpectedly");
    check_at_once(got);
  }
  SECTION("an ERROR for the query") {
    FakeTcpServer server(speaks_startup({[](int fd, const std::string&, const std::atomic<bool>& stopping) {
      auto error = error_response("ERROR", "42P01", "relation \"pg_stat_replication\" does not exist");
      pgc::test::write_all(fd, error + k_ready, stopping);
      pgc::test::hold_silently(fd, stopping);
    }}));
    auto got = observe(server);
    check_error(got, server, "observe", "ERROR: relation \"pg_stat_replication\" does not exist");
    check_at_once(got);
  }
}

TEST_CASE("postgres faults: results of the wrong shape are errors that say what was wrong") {
  struct Case {
    std::string answer;
    std::string what;
  };
  for (const auto& c : std::vector<Case>{
           {result({"one"}, {{"1"}}) + k_ready, "observe: expected 3 results, got 1"},
           {result({"a", "b"}, {{"f", "15"}}) + result({"a"}, {}) + result({"a"}, {}) + k_ready,
            "observe: unexpected settings row"},
           {result({"a", "b", "c", "d", "e"}, {{"f", "15", "fifteen", "", "1"}}) + result({"a", "b", "c"}, {}) +
                result({"a"}, {}) + k_ready,
            "observe: unexpected server_version_num 'fifteen'"},
           {result({"a", "b", "c", "d", "e"}, {}) + result({"a", "b", "c"}, {}) + result({"a"}, {}) + k_ready,
            "observe: unexpected settings row"},
           {result({"a", "b", "c", "d"}, {{"f", "15", "150099", ""}}) + result({"a", "b", "c"}, {}) +
                result({"a"}, {}) + k_ready,
            "observe: unexpected settings row"},
       }) {
    auto answer = c.answer;
    FakeTcpServer server(speaks_startup({[answer](int fd, const std::string&, const std::atomic<bool>& stopping) {
      pgc::test::write_all(fd, answer, stopping);
      pgc::test::read_until(fd, stopping, "", 5);  // Terminate
    }}));
    auto got = observe(server);
    INFO(c.what);
    check_error(got, server, "observe", "");
    CHECK(got.error == "postgres " + server.address() + ": " + c.what);
    check_at_once(got);
  }
}

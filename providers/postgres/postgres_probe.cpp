// libpq, non-blocking all the way: the connection is polled (PQconnectStartParams +
// PQconnectPoll) and each query sent with PQsendQuery and awaited with poll() on PQsocket, all
// against a deadline. On expiry the query is cancelled with PQcancel, because a commit blocked
// on synchronous replication ignores statement_timeout (docs/replication-semantics.md §5.3).

#include "providers/postgres/postgres_probe.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <future>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "util/duration.hpp"
#include "util/strings.hpp"

namespace pgc::providers {
namespace {

using Clock = std::chrono::steady_clock;

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
struct CancelDeleter {
  void operator()(PGcancel* c) const { PQfreeCancel(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;
using CancelPtr = std::unique_ptr<PGcancel, CancelDeleter>;

// How long a timed-out query may spend on being cancelled: delivering the cancel request, then
// letting the server answer it so that the backend is released before we hang up.
constexpr std::chrono::milliseconds k_cancel_delivery{1000};
constexpr std::chrono::milliseconds k_cancel_drain{500};

// libpq's messages span lines ("...failed: Connection refused\n\tIs the server running...");
// one line reads better after a context prefix. libpq appends some complaints once per bad
// message ("message contents do not agree with length..."): a line already shown is dropped.
// Any occurrence of the password is redacted.
std::string clean_message(std::string_view text, const std::string& password) {
  std::string out;
  std::vector<std::string> shown;
  for (const auto& raw : split(text, '\n')) {
    std::string line;
    bool space = false;
    for (char ch : raw) {
      if (ch == '\t' || ch == '\r') {
        space = true;
        continue;
      }
      if (space && !line.empty()) line += ' ';
      space = false;
      line += ch;
    }
    line = trim(line);
    if (line.empty() || std::find(shown.begin(), shown.end(), line) != shown.end()) continue;
    out += (out.empty() ? "" : " ") + line;
    shown.push_back(std::move(line));
  }
  if (!password.empty()) {
    for (auto pos = out.find(password); pos != std::string::npos; pos = out.find(password, pos)) {
      out.replace(pos, password.size(), k_redacted);
      pos += k_redacted.size();
    }
  }
  return out.empty() ? "unknown libpq error" : out;
}

// A connection refused by the server's authentication, from libpq's verbose message
// ("...failed: FATAL:  28P01: password authentication failed for user ...\nLOCATION:  ..."):
// the SQLSTATE codes and the message as the default verbosity prints it (no codes, no LOCATION).
// libpq keeps a failed connection's SQLSTATE to itself; the verbose text is where it shows.
struct RefusedConnection {
  std::string text;
  std::vector<std::string> sqlstates;
};

RefusedConnection split_sqlstates(std::string_view verbose) {
  RefusedConnection out;
  auto is_code = [](std::string_view s) {
    return s.size() == 5 && std::all_of(s.begin(), s.end(), [](char ch) {
             return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z');
           });
  };
  for (const auto& line : split(verbose, '\n')) {
    if (trim(line).starts_with("LOCATION:")) continue;
    std::string kept = line;
    // "SEVERITY:  CODE: message": the code follows the severity's two spaces.
    for (auto at = kept.find(":  "); at != std::string::npos; at = kept.find(":  ", at + 3)) {
      auto code = std::string_view(kept).substr(at + 3, 5);
      if (is_code(code) && kept.compare(at + 8, 2, ": ") == 0) {
        out.sqlstates.emplace_back(code);
        kept.erase(at + 3, 7);
      }
    }
    out.text += kept + "\n";
  }
  return out;
}

// Why waiting cannot fix a refused connection, from its SQLSTATE (util/expected.hpp); empty: it
// may (the server starting up, too many connections).
std::string permanent_refusal(const RefusedConnection& refused) {
  for (const auto& code : refused.sqlstates) {
    if (code == "28P01") return k_wrong_password;  // invalid_password
    if (code == "28000")                            // invalid_authorization_specification
      return refused.text.find("pg_hba.conf") != std::string::npos
                 ? k_no_hba_entry
                 : "the server refuses this role or client; waiting does not change that";
  }
  return "";
}

// "postgres 10.0.0.12:5432" — the prefix of every message.
std::string describe(const PgConnection& c) {
  return "postgres " + (c.host.empty() ? std::string("localhost") : c.host) + ":" + std::to_string(c.port);
}

enum class Wait { ready, timed_out, failed };

// Waits until the socket is readable (or writable) or the deadline passes.
Wait wait_socket(int fd, bool for_write, Clock::time_point deadline) {
  if (fd < 0) {
    errno = EBADF;
    return Wait::failed;
  }
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Wait::timed_out;
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000)));
    if (n > 0) return Wait::ready;  // POLLERR/POLLHUP too: libpq reads the error itself
    if (n < 0 && errno != EINTR) return Wait::failed;
  }
}

// A server notice (e.g. "canceling wait for synchronous replication") is not an error here;
// libpq's default processor would print it on stderr.
void ignore_notice(void* /*arg*/, const char* /*message*/) {}

// One open, non-blocking connection with its description and limits.
class Session {
 public:
  explicit Session(const PgConnection& c) : c_(c), where_(describe(c)) {}

  Result<void> connect() {
    auto deadline = Clock::now() + c_.connect_timeout;
    // libpq's own connect_timeout is whole seconds (and ≥ 2); the deadline below is the real bound.
    auto seconds = std::max<long long>(2, (c_.connect_timeout.count() + 999) / 1000);
    std::string port = std::to_string(c_.port), timeout = std::to_string(seconds);
    // Keywords, never a conninfo string: values with spaces or quotes need no escaping.
    std::array<const char*, 9> keys{"host", "port", "user", "password", "dbname", "connect_timeout",
                                    "application_name", "client_encoding", nullptr};
    const std::string& host = c_.socket_dir.empty() ? c_.host : c_.socket_dir;
    std::array<const char*, 9> values{host.c_str(), port.c_str(), c_.user.c_str(), c_.password.c_str(),
                                      c_.dbname.c_str(), timeout.c_str(), "pgconverge", "UTF8", nullptr};
    conn_.reset(PQconnectStartParams(keys.data(), values.data(), 0));
    if (!conn_) return fail(where_ + ": connect: out of memory");
    if (PQstatus(conn_.get()) == CONNECTION_BAD) return fail(where_ + ": connect: " + libpq_error());
    PQsetNoticeProcessor(conn_.get(), ignore_notice, nullptr);
    // Verbose while connecting: a refusal's SQLSTATE says whether waiting can fix it.
    PQsetErrorVerbosity(conn_.get(), PQERRORS_VERBOSE);
    PostgresPollingStatusType state = PGRES_POLLING_WRITING;
    while (state != PGRES_POLLING_OK) {
      if (state == PGRES_POLLING_FAILED) return std::unexpected(connect_error());
      // The socket may change between attempts (several addresses), so ask every time.
      auto w = wait_socket(PQsocket(conn_.get()), state == PGRES_POLLING_WRITING, deadline);
      if (w == Wait::timed_out)
        return fail(where_ + ": connect: timed out after " + format_duration(c_.connect_timeout));
      if (w == Wait::failed) return fail(where_ + ": connect: " + std::string(std::strerror(errno)));
      state = PQconnectPoll(conn_.get());
    }
    PQsetErrorVerbosity(conn_.get(), PQERRORS_DEFAULT);
    if (PQsetnonblocking(conn_.get(), 1) != 0) return fail(where_ + ": connect: " + libpq_error());
    return {};
  }

  // Sends sql (one or more statements) and collects every result. Bounded by statement_timeout;
  // on expiry the query is cancelled and "timed out after Ns" returned.
  Result<std::vector<ResultPtr>> query(const std::string& sql, const std::string& what) {
    auto deadline = Clock::now() + c_.statement_timeout;
    auto* conn = conn_.get();
    if (PQsendQuery(conn, sql.c_str()) != 1) return fail(where_ + ": " + what + ": " + libpq_error());
    // Push the query out (a large one may not fit the socket buffer at once).
    for (int f = PQflush(conn); f != 0; f = PQflush(conn)) {
      if (f < 0) return fail(where_ + ": " + what + ": " + libpq_error());
      auto w = wait_socket(PQsocket(conn), true, deadline);
      if (w == Wait::timed_out) return timed_out(what);
      if (w == Wait::failed) return fail(where_ + ": " + what + ": " + std::string(std::strerror(errno)));
      if (PQconsumeInput(conn) != 1) return fail(where_ + ": " + what + ": " + libpq_error());
    }
    std::vector<ResultPtr> results;
    for (;;) {
      while (PQisBusy(conn)) {
        auto w = wait_socket(PQsocket(conn), false, deadline);
        if (w == Wait::timed_out) return timed_out(what);
        if (w == Wait::failed) return fail(where_ + ": " + what + ": " + std::string(std::strerror(errno)));
        if (PQconsumeInput(conn) != 1) return fail(where_ + ": " + what + ": " + libpq_error());
      }
      ResultPtr r(PQgetResult(conn));
      if (!r) break;
      auto status = PQresultStatus(r.get());
      if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR) {
        std::string message = server_error(r.get());
        drain(deadline);
        return fail(where_ + ": " + what + ": " + message);
      }
      if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH)
        return fail(where_ + ": " + what + ": COPY is not supported here");
      results.push_back(std::move(r));
    }
    return results;
  }

 private:
  std::string libpq_error() const { return clean_message(PQerrorMessage(conn_.get()), c_.password); }

  // A failed connection: libpq's message without the verbose parts, permanent when the server's
  // authentication refused it.
  Error connect_error() const {
    auto refused = split_sqlstates(PQerrorMessage(conn_.get()));
    return Error{where_ + ": connect: " + clean_message(refused.text, c_.password), permanent_refusal(refused)};
  }

  // "ERROR: relation "x" does not exist" with the detail when the server gave one.
  std::string server_error(const PGresult* r) const {
    const char* severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (!primary) return clean_message(PQresultErrorMessage(r), c_.password);
    std::string text = std::string(severity ? severity : "ERROR") + ": " + primary;
    if (const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)) text += " (" + std::string(detail) + ")";
    return clean_message(text, c_.password);
  }

  // Reads and drops whatever results are still coming, until the deadline.
  void drain(Clock::time_point deadline) {
    auto* conn = conn_.get();
    for (;;) {
      while (PQisBusy(conn)) {
        if (wait_socket(PQsocket(conn), false, deadline) != Wait::ready) return;
        if (PQconsumeInput(conn) != 1) return;
      }
      ResultPtr r(PQgetResult(conn));
      if (!r) return;
    }
  }

  // Cancels the running query and reports the timeout. PQcancel opens its own connection and
  // has no timeout of its own in libpq 15, so it runs on a detached thread that owns the
  // PGcancel: if the server does not take the request in time, we stop waiting for it.
  std::unexpected<Error> timed_out(const std::string& what) {
    std::string message = where_ + ": " + what + ": timed out after " + format_duration(c_.statement_timeout);
    CancelPtr cancel(PQgetCancel(conn_.get()));
    if (!cancel) return fail(message + " (could not cancel: no cancel handle)");
    std::promise<std::string> sent;
    auto outcome = sent.get_future();
    std::thread([cancel = std::move(cancel), sent = std::move(sent)]() mutable {
      std::array<char, 256> buf{};
      int ok = PQcancel(cancel.get(), buf.data(), static_cast<int>(buf.size()));
      sent.set_value(ok == 1 ? std::string() : std::string(buf.data()));
    }).detach();
    if (outcome.wait_for(k_cancel_delivery) != std::future_status::ready)
      return fail(message + " (cancel request not answered within " + format_duration(k_cancel_delivery) + ")");
    if (auto error = outcome.get(); !error.empty())
      return fail(message + " (cancel failed: " + clean_message(error, c_.password) + ")");
    // Let the backend answer the cancel (a released commit warns, a query errors), so that it
    // is idle before we disconnect.
    drain(Clock::now() + k_cancel_drain);
    return fail(message);
  }

  const PgConnection& c_;
  std::string where_;
  ConnPtr conn_;
};

std::string value(const PGresult* r, int row, int column) {
  if (PQgetisnull(r, row, column)) return {};
  return PQgetvalue(r, row, column);
}

// Each observation is one round trip: three statements in one simple-protocol query.
constexpr const char* k_observe_sql =
    "SELECT pg_is_in_recovery(), current_setting('server_version'), current_setting('server_version_num'),"
    " current_setting('synchronous_standby_names'), (SELECT system_identifier::text FROM pg_control_system());"
    "SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY application_name;"
    "SELECT name FROM pg_settings WHERE pending_restart ORDER BY name;";

}  // namespace

Result<PgObservation> observe_postgres(const PgConnection& connection) {
  Session session(connection);
  PGC_TRY(session.connect());
  auto results = session.query(k_observe_sql, "observe");
  PGC_TRY(results);
  auto where = describe(connection) + ": observe: ";
  if (results->size() != 3) return fail(where + "expected 3 results, got " + std::to_string(results->size()));
  PgObservation out;
  const PGresult* settings = (*results)[0].get();
  if (PQntuples(settings) != 1 || PQnfields(settings) != 5) return fail(where + "unexpected settings row");
  out.in_recovery = value(settings, 0, 0) == "t";
  out.server_version = value(settings, 0, 1);
  auto num = value(settings, 0, 2);
  if (auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), out.server_version_num);
      ec != std::errc() || p != num.data() + num.size())
    return fail(where + "unexpected server_version_num '" + num + "'");
  out.synchronous_standby_names = value(settings, 0, 3);
  out.system_identifier = value(settings, 0, 4);
  const PGresult* replication = (*results)[1].get();
  for (int i = 0; i < PQntuples(replication); ++i)
    out.replication.push_back({value(replication, i, 0), value(replication, i, 1), value(replication, i, 2)});
  const PGresult* pending = (*results)[2].get();
  for (int i = 0; i < PQntuples(pending); ++i) out.pending_restart.push_back(value(pending, i, 0));
  return out;
}

Result<std::vector<std::string>> execute_sql(const PgConnection& connection, const std::string& sql) {
  Session session(connection);
  PGC_TRY(session.connect());
  auto results = session.query(sql, "query");
  PGC_TRY(results);
  std::vector<std::string> rows;
  for (const auto& r : *results) {
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQnfields(r.get()) < 1) continue;
    for (int i = 0; i < PQntuples(r.get()); ++i) rows.push_back(value(r.get(), i, 0));
  }
  return rows;
}

}  // namespace pgc::providers

// observe_postgres / execute_sql against a real PostgreSQL 15 that this process creates: a temp
// dir owned by postgres, initdb (scram-sha-256 over TCP, a superuser password with spaces and
// quotes), a primary on 127.0.0.1 at a free port with a private unix socket dir, later a
// streaming replica from pg_basebackup -R. Servers are stopped by their data dir
// (pg_ctl stop -m immediate, i.e. SIGQUIT to the postmaster PID) and the temp dir removed, also
// when a check fails. Needs root (initdb runs as postgres via runuser) and PostgreSQL 15's
// binaries; without them it prints why and exits 77, which CTest reports as skipped.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include "tests/support/catch_session.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>

#include "providers/postgres/postgres_probe.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pgc::shell_quote;
using pgc::providers::execute_sql;
using pgc::providers::observe_postgres;
using pgc::providers::PgConnection;
using pgc::providers::PgObservation;
using Clock = std::chrono::steady_clock;

namespace {

const fs::path k_bin = "/usr/lib/postgresql/15/bin";
// The superuser's password: spaces, quotes and a backslash, to prove the keyword API.
const std::string k_password = "pw with 'quotes' \"and\" \\ spaces";

// Postmaster PIDs for the signal handler: on SIGINT/SIGTERM it SIGQUITs them (what
// pg_ctl stop -m immediate does) before dying, so no server outlives an interrupted run.
std::array<volatile sig_atomic_t, 4> g_postmasters{};

void on_signal(int sig) {
  for (auto pid : g_postmasters)
    if (pid > 0) ::kill(static_cast<pid_t>(pid), SIGQUIT);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void append(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << text;
}

// Runs a shell command built from our own temp paths (quoted); output goes to log.
bool run(const std::string& command, const fs::path& log) {
  append(log, "$ " + command + "\n");
  int rc = std::system((command + " >>" + shell_quote(log.string()) + " 2>&1").c_str());
  return rc == 0;
}

std::string as_postgres(const std::string& command) { return "runuser -u postgres -- " + command; }

// A port that was free a moment ago (bound to learn it, then released).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Polls until check() holds or timeout passes.
template <typename F>
bool eventually(F check, std::chrono::milliseconds timeout = 20s) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (check()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
}

// The temp dir with its servers; stops every started server and removes everything when done.
class Servers {
 public:
  Servers() {
    std::string pattern = (fs::temp_directory_path() / "pgc-pg-test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("no postgres user");
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    chown_postgres(root_);
    fs::create_directory(socket_dir());
    chown_postgres(socket_dir());
  }
  Servers(const Servers&) = delete;
  Servers& operator=(const Servers&) = delete;
  ~Servers() {
    for (auto it = started_.rbegin(); it != started_.rend(); ++it) stop(*it);
    std::error_code ignored;
    if (std::getenv("PGC_KEEP_TEMP") == nullptr) fs::remove_all(root_, ignored);
  }

  [[nodiscard]] fs::path socket_dir() const { return root_ / "sock"; }
  [[nodiscard]] fs::path log() const { return root_ / "commands.log"; }
  [[nodiscard]] const fs::path& root() const { return root_; }

  // initdb + configuration + start; the primary listens on 127.0.0.1:port.
  void create_primary(int port) {
    auto data = root_ / "primary";
    auto pwfile = root_ / "pwfile";
    append(pwfile, k_password + "\n");
    chown_postgres(pwfile);
    if (!run(as_postgres(shell_quote((k_bin / "initdb").string()) + " -D " + shell_quote(data.string()) +
                         " -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile=" +
                         shell_quote(pwfile.string()) + " --no-locale -E UTF8 --no-sync"),
             log()))
      throw std::runtime_error("initdb failed; see " + log().string() + "\n" + slurp(log()));
    append(data / "postgresql.conf", settings(port) + "shared_buffers = '16MB'\nmax_connections = 30\n");
    start(data);
  }

  // pg_basebackup -R over the primary's unix socket, then start it on its own port; it reports
  // itself to the primary as application_name = cluster_name.
  void create_replica(int primary_port, int port, const std::string& name) {
    auto data = root_ / name;
    if (!run(as_postgres(shell_quote((k_bin / "pg_basebackup").string()) + " -h " +
                         shell_quote(socket_dir().string()) + " -p " + std::to_string(primary_port) +
                         " -U postgres -D " + shell_quote(data.string()) + " -R -X stream -c fast --no-sync"),
             log()))
      throw std::runtime_error("pg_basebackup failed\n" + slurp(log()));
    append(data / "postgresql.conf", settings(port) + "cluster_name = '" + name + "'\n");
    start(data);
  }

  void stop(const fs::path& data) {
    run(as_postgres(shell_quote((k_bin / "pg_ctl").string()) + " -D " + shell_quote(data.string()) +
                    " stop -m immediate -w -t 20"),
        log());
  }

 private:
  std::string settings(int port) const {
    return "\n# pgconverge integration test\nport = " + std::to_string(port) +
           "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '" + socket_dir().string() +
           "'\nfsync = off\nwal_sender_timeout = '5s'\nlogging_collector = off\n";
  }

  void start(const fs::path& data) {
    auto server_log = root_ / (data.filename().string() + ".log");
    bool ok = run(as_postgres(shell_quote((k_bin / "pg_ctl").string()) + " -D " + shell_quote(data.string()) +
                              " -l " + shell_quote(server_log.string()) + " -w -t 60 start"),
                  log());
    // Record it even when start failed half way: teardown stops whatever is running.
    started_.push_back(data);
    auto pid_text = slurp(data / "postmaster.pid");
    if (auto slot = std::find(g_postmasters.begin(), g_postmasters.end(), 0); slot != g_postmasters.end())
      *slot = std::atoi(pid_text.c_str());
    if (!ok) throw std::runtime_error("pg_ctl start failed\n" + slurp(log()) + slurp(server_log));
  }

  void chown_postgres(const fs::path& path) const {
    if (::chown(path.c_str(), uid_, gid_) != 0) throw std::runtime_error("chown failed: " + path.string());
  }

  fs::path root_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::vector<fs::path> started_;
};

int g_primary_port = 0;
int g_replica_port = 0;
Servers* g_servers = nullptr;

PgConnection primary(std::chrono::milliseconds statement_timeout = 5s) {
  PgConnection c;
  c.host = "127.0.0.1";
  c.port = g_primary_port;
  c.user = "postgres";
  c.password = k_password;
  c.connect_timeout = 5s;
  c.statement_timeout = statement_timeout;
  return c;
}

// Runs one statement that must succeed.
std::vector<std::string> sql(const std::string& text, const PgConnection& c = primary()) {
  auto rows = execute_sql(c, text);
  INFO(text);
  if (!rows) FAIL(rows.error().message);
  return *rows;
}

PgObservation observe(const PgConnection& c = primary()) {
  auto o = observe_postgres(c);
  if (!o) FAIL(o.error().message);
  return *o;
}

void reload_until(const std::string& what, const std::function<bool(const PgObservation&)>& check) {
  sql("SELECT pg_reload_conf()");
  INFO("waiting for " << what);
  REQUIRE(eventually([&] { return check(observe()); }));
}

std::string sleepers() {
  return sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'").at(0);
}

}  // namespace

TEST_CASE("postgres: a fresh primary is observed: not in recovery, version 15, no sync names, no standbys") {
  auto o = observe();
  CHECK_FALSE(o.in_recovery);
  CHECK(o.server_version.starts_with("15."));
  CHECK(o.server_version_num >= 150000);
  CHECK(o.server_version_num < 160000);
  CHECK(o.synchronous_standby_names.empty());
  CHECK(o.replication.empty());
  CHECK(o.pending_restart.empty());
}

TEST_CASE("postgres: execute_sql returns the first column; server errors carry the server's message") {
  sql("CREATE TABLE t (id int primary key, note text)");
  CHECK(sql("INSERT INTO t VALUES (1, 'one'), (2, NULL)").empty());
  CHECK(sql("SELECT id, note FROM t ORDER BY id") == std::vector<std::string>{"1", "2"});
  CHECK(sql("SELECT note FROM t ORDER BY id") == std::vector<std::string>{"one", ""});
  CHECK(sql("SELECT 'a'; SELECT 'b' UNION ALL SELECT 'c'") == std::vector<std::string>{"a", "b", "c"});

  auto missing = execute_sql(primary(), "SELECT * FROM nope");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message ==
        "postgres 127.0.0.1:" + std::to_string(g_primary_port) + ": query: ERROR: relation \"nope\" does not exist");
  auto duplicate = execute_sql(primary(), "INSERT INTO t VALUES (1, 'again')");
  REQUIRE_FALSE(duplicate);
  CHECK(duplicate.error().message ==
        "postgres 127.0.0.1:" + std::to_string(g_primary_port) +
            ": query: ERROR: duplicate key value violates unique constraint \"t_pkey\" (Key (id)=(1) already exists.)");
}

TEST_CASE("postgres: a wrong password is refused by the server and never printed") {
  auto c = primary();
  c.password = "Wrong-Password-42";
  auto o = observe_postgres(c);
  REQUIRE_FALSE(o);
  CHECK(o.error().message.starts_with("postgres 127.0.0.1:" + std::to_string(g_primary_port) + ": connect: "));
  CHECK(o.error().message.find("password authentication failed for user \"postgres\"") != std::string::npos);
  CHECK(o.error().message.find("Wrong-Password-42") == std::string::npos);
  // SQLSTATE 28P01: waiting cannot fix it; the message reads as libpq's default (no code, no
  // LOCATION line from the verbose message the code is read from).
  CHECK(o.error().permanent == pgc::k_wrong_password);
  CHECK(o.error().message.find("28P01") == std::string::npos);
  CHECK(o.error().message.find("LOCATION") == std::string::npos);
}

TEST_CASE("postgres: no pg_hba.conf entry is a permanent refusal; nothing listening is not") {
  // pg_hba.conf for the postgres role only: another role has no entry (SQLSTATE 28000).
  auto hba = g_servers->root() / "primary" / "pg_hba.conf";
  auto original = slurp(hba);
  {
    std::ofstream out(hba, std::ios::trunc);
    out << "local all all trust\nlocal replication all trust\nhost all postgres 127.0.0.1/32 scram-sha-256\n";
  }
  sql("SELECT pg_reload_conf()");
  auto c = primary();
  c.user = "nobody_listed";
  pgc::Result<PgObservation> refused = pgc::fail("not tried");
  CHECK(eventually([&] {
    refused = observe_postgres(c);
    return !refused && refused.error().message.find("pg_hba.conf") != std::string::npos;
  }));
  {
    std::ofstream out(hba, std::ios::trunc);
    out << original;
  }
  sql("SELECT pg_reload_conf()");
  REQUIRE_FALSE(refused.has_value());
  const auto& e = refused.error();
  INFO(e.message);
  CHECK(e.message.starts_with("postgres 127.0.0.1:" + std::to_string(g_primary_port) + ": connect: "));
  CHECK(e.message.find("FATAL:  no pg_hba.conf entry for host \"127.0.0.1\", user \"nobody_listed\"") !=
        std::string::npos);
  CHECK(e.permanent == pgc::k_no_hba_entry);
  CHECK(e.message.find("28000") == std::string::npos);
  CHECK(e.message.find("LOCATION") == std::string::npos);

  auto nobody = primary();
  nobody.port = free_port();  // nothing listens: the server may be starting, a wait may retry
  auto closed = observe_postgres(nobody);
  REQUIRE_FALSE(closed);
  CHECK(closed.error().message.find("Connection refused") != std::string::npos);
  CHECK_FALSE(closed.error().is_permanent());
  CHECK(eventually([] { return observe_postgres(primary()).has_value(); }));  // pg_hba.conf restored
}

TEST_CASE("postgres: a slow query is cancelled at statement_timeout, server side too") {
  auto start = Clock::now();
  auto slept = execute_sql(primary(1s), "SELECT pg_sleep(30)");
  auto elapsed = Clock::now() - start;
  REQUIRE_FALSE(slept);
  CHECK(slept.error().message == "postgres 127.0.0.1:" + std::to_string(g_primary_port) + ": query: timed out after 1s");
  CHECK(elapsed >= 1s);
  CHECK(elapsed < 2s);
  // The cancel reached the backend: nothing is sleeping any more.
  CHECK(eventually([] { return sleepers() == "0"; }, 2s));
}

TEST_CASE("postgres: a commit blocked on synchronous replication is released by the client's cancel (pitfall 3)") {
  sql("ALTER SYSTEM SET synchronous_standby_names = 'nonexistent'");
  sql("ALTER SYSTEM SET synchronous_commit = 'on'");
  reload_until("synchronous_standby_names = nonexistent",
               [](const PgObservation& o) { return o.synchronous_standby_names == "nonexistent"; });

  // The server's own statement_timeout does not release a commit waiting for a standby.
  auto start = Clock::now();
  auto insert = execute_sql(primary(1s), "SET statement_timeout = '200ms'; INSERT INTO t VALUES (3, 'blocked')");
  auto elapsed = Clock::now() - start;
  REQUIRE_FALSE(insert);
  CHECK(insert.error().message == "postgres 127.0.0.1:" + std::to_string(g_primary_port) + ": query: timed out after 1s");
  CHECK(elapsed >= 1s);
  CHECK(elapsed < 2s);
  // Cancelled, not merely abandoned: no backend is left waiting in SyncRep, and the row was
  // committed locally (PostgreSQL warns and keeps it).
  CHECK(eventually([] { return sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").at(0) == "0"; },
                   2s));
  auto reader = primary();
  CHECK(sql("SELECT note FROM t WHERE id = 3", reader) == std::vector<std::string>{"blocked"});

  sql("ALTER SYSTEM RESET synchronous_standby_names");
  sql("ALTER SYSTEM RESET synchronous_commit");
  reload_until("synchronous_standby_names to clear",
               [](const PgObservation& o) { return o.synchronous_standby_names.empty(); });
  CHECK(sql("INSERT INTO t VALUES (4, 'free') RETURNING id") == std::vector<std::string>{"4"});
}

TEST_CASE("postgres: a changed shared_buffers shows as pending restart after a reload") {
  sql("ALTER SYSTEM SET shared_buffers = '64MB'");
  reload_until("shared_buffers pending restart", [](const PgObservation& o) {
    return o.pending_restart == std::vector<std::string>{"shared_buffers"};
  });
  sql("ALTER SYSTEM RESET shared_buffers");
  reload_until("pending restart to clear", [](const PgObservation& o) { return o.pending_restart.empty(); });
}

TEST_CASE("postgres: a streaming replica is observed on both sides, async then sync when named") {
  g_servers->create_replica(g_primary_port, g_replica_port, "replica1");
  INFO("waiting for replica1 to stream");
  REQUIRE(eventually([] {
    auto o = observe();
    return o.replication.size() == 1 && o.replication[0].state == "streaming";
  }));
  auto o = observe();
  CHECK(o.replication[0].application_name == "replica1");
  CHECK(o.replication[0].sync_state == "async");

  auto on_replica = primary();
  on_replica.port = g_replica_port;
  auto r = observe(on_replica);
  CHECK(r.in_recovery);
  CHECK(r.server_version_num == o.server_version_num);
  CHECK(r.replication.empty());

  sql("ALTER SYSTEM SET synchronous_standby_names = 'replica1'");
  reload_until("replica1 to be sync", [](const PgObservation& p) {
    return p.synchronous_standby_names == "replica1" && p.replication.size() == 1 &&
           p.replication[0].sync_state == "sync";
  });
  // With a sync standby streaming, a commit is not blocked.
  auto start = Clock::now();
  CHECK(sql("INSERT INTO t VALUES (5, 'sync') RETURNING id", primary(2s)) == std::vector<std::string>{"5"});
  CHECK(Clock::now() - start < 1s);
  CHECK(eventually([&] { return sql("SELECT note FROM t WHERE id = 5", on_replica) == std::vector<std::string>{"sync"}; },
                   5s));
  sql("ALTER SYSTEM RESET synchronous_standby_names");
  reload_until("replica1 to be async again", [](const PgObservation& p) {
    return p.replication.size() == 1 && p.replication[0].sync_state == "async";
  });
}

TEST_CASE("postgres: observe_postgres latency over TCP with scram (mean of 50)") {
  observe();  // warm-up
  constexpr int k_runs = 50;
  auto start = Clock::now();
  for (int i = 0; i < k_runs; ++i) observe();
  auto mean = std::chrono::duration<double, std::milli>(Clock::now() - start) / k_runs;
  std::cout << "observe_postgres mean latency (" << k_runs << " runs, 127.0.0.1, scram-sha-256): " << mean.count()
            << " ms\n";
  CHECK(mean < 1000ms);
}

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::cout << "SKIPPED: needs root (initdb and the servers run as postgres via runuser)\n";
    return 77;
  }
  for (const char* tool : {"initdb", "pg_ctl", "pg_basebackup", "postgres"}) {
    if (!fs::exists(k_bin / tool)) {
      std::cout << "SKIPPED: " << (k_bin / tool).string() << " is missing (apt-get install postgresql-15)\n";
      return 77;
    }
  }
  if (getpwnam("postgres") == nullptr || !fs::exists("/usr/sbin/runuser")) {
    std::cout << "SKIPPED: needs the postgres user and runuser\n";
    return 77;
  }
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
  try {
    Servers servers;
    g_servers = &servers;
    g_primary_port = free_port();
    g_replica_port = free_port();
    while (g_replica_port == g_primary_port) g_replica_port = free_port();
    servers.create_primary(g_primary_port);
    int failed = pgc::test::run_catch(argc, argv);
    g_servers = nullptr;
    return failed == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "setup failed: " << e.what() << "\n";
    return 1;
  }
}

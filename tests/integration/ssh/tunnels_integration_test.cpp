// Tunnels (direct-tcpip forwarding over libssh) against a real sshd that this process starts on
// 127.0.0.1, to real TCP servers on 127.0.0.1 (echo, source, sink, closing) and to a real
// PostgreSQL 15 it creates: many connections at once, megabytes both ways, half-closes, a refused
// target, a second sshd with AllowTcpForwarding no, and teardown that leaves no thread, socket,
// directory or sshd child. Needs root, sshd and ssh-keygen (else exits 77: skipped); the
// PostgreSQL case needs PostgreSQL 15's binaries and the postgres user (else it is skipped alone).

#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include "tests/support/catch_session.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include "providers/patroni/patroni_client.hpp"
#include "providers/postgres/postgres_probe.hpp"
#include "providers/ssh/tunnels.hpp"
#include "reconciler/world.hpp"
#include "tests/integration/support/fake_tcp_server.hpp"
#include "tests/integration/support/test_support.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace pgc::test;
using pgc::providers::SshOptions;
using pgc::providers::Tunnels;
using Clock = std::chrono::steady_clock;

namespace {

PrivateSshd* g_sshd = nullptr;
PrivateSshd* g_no_forwarding_sshd = nullptr;
PrivateSshd* g_two_sessions_sshd = nullptr;  // MaxSessions 2

SshOptions options_for(const PrivateSshd& sshd) {
  SshOptions o;
  o.host_name = "lab";
  o.address = "127.0.0.1";
  o.port = sshd.port();
  o.user = "root";
  o.identity_file = sshd.file("client_key").string();
  o.known_hosts_file = sshd.file("known_hosts").string();
  o.connect_timeout = 5s;
  return o;
}

std::unique_ptr<Tunnels> open_or_fail(const PrivateSshd& sshd) {
  auto tunnels = pgc::providers::open_tunnels(options_for(sshd));
  if (!tunnels) FAIL(tunnels.error().message);
  return std::move(*tunnels);
}

std::string local_socket_or_fail(Tunnels& tunnels, int port) {
  auto path = tunnels.local_socket("127.0.0.1", port);
  if (!path) FAIL(path.error().message);
  return *path;
}

// A connected unix stream socket (blocking), or -1.
int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Deterministic bytes that differ by connection and position.
std::string pattern(std::size_t size, unsigned seed) {
  std::string data(size, '\0');
  unsigned x = seed * 2654435761U + 1;
  for (auto& c : data) {
    x = x * 1103515245U + 12345U;
    c = static_cast<char>(x >> 24);
  }
  return data;
}

// Everything until the peer's EOF, or what came before 20 s passed without a byte.
std::string read_to_eof(int fd) {
  std::string data;
  char buffer[65536];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) {
      data += "<no EOF after 20 s>";
      return data;
    }
    auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return data;
    data.append(buffer, static_cast<std::size_t>(n));
  }
}

// Sends data (then EOF) on one thread while reading the answer to EOF on this one.
std::string converse(int fd, const std::string& data) {
  std::atomic<bool> never{false};
  std::thread writer([&] {
    write_all(fd, data, never);
    ::shutdown(fd, SHUT_WR);
  });
  std::string answer = read_to_eof(fd);
  writer.join();
  return answer;
}

// Echoes until EOF, then ends its side.
void echo(int fd, const std::atomic<bool>& stopping) {
  for (std::string more; !(more = read_some(fd, stopping)).empty();)
    if (!write_all(fd, more, stopping)) return;
}

int thread_count() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/task")) ++count;
  return count;
}

template <typename F>
bool eventually(F check, std::chrono::milliseconds timeout = 10s) {
  for (auto until = Clock::now() + timeout; Clock::now() < until; std::this_thread::sleep_for(20ms))
    if (check()) return true;
  return check();
}

}  // namespace

TEST_CASE("tunnels: many connections at once, each echoed byte for byte", "[tunnels]") {
  FakeTcpServer server(echo);
  auto tunnels = open_or_fail(*g_sshd);
  const std::string path = local_socket_or_fail(*tunnels, server.port());
  CHECK(fs::path(path).filename() == ".s.PGSQL." + std::to_string(server.port()));
  CHECK(local_socket_or_fail(*tunnels, server.port()) == path);  // one socket per target

  constexpr int k_connections = 40;
  constexpr std::size_t k_size = 512 * 1024;
  std::vector<std::string> answers(k_connections);
  std::vector<std::thread> clients;
  const auto started = Clock::now();
  for (int i = 0; i < k_connections; ++i)
    clients.emplace_back([&, i] {
      int fd = connect_unix(path);
      if (fd < 0) return;
      answers[static_cast<std::size_t>(i)] = converse(fd, pattern(k_size, static_cast<unsigned>(i)));
      ::close(fd);
    });
  for (auto& client : clients) client.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  for (int i = 0; i < k_connections; ++i) {
    INFO("connection " << i);
    CHECK(answers[static_cast<std::size_t>(i)].size() == k_size);
    CHECK(answers[static_cast<std::size_t>(i)] == pattern(k_size, static_cast<unsigned>(i)));
  }
  CHECK(server.connections() == k_connections);
  CHECK(tunnels->last_failure("127.0.0.1", server.port()).empty());
  std::printf("timing: %d connections echoing %zu KiB each through one tunnel: %.2f s (%.1f MiB/s each way)\n",
              k_connections, k_size / 1024, seconds, k_connections * double(k_size) / (1 << 20) / seconds);
}

TEST_CASE("tunnels: megabytes both ways, with the server closing first or reading to the end", "[tunnels]") {
  constexpr std::size_t k_size = 8 << 20;
  // Sends k_size bytes as soon as a client connects, then closes.
  FakeTcpServer source([&](int fd, const std::atomic<bool>& stopping) { write_all(fd, pattern(k_size, 7), stopping); });
  // Reads to EOF, then answers with the byte count and whether the bytes were the pattern.
  FakeTcpServer sink([&](int fd, const std::atomic<bool>& stopping) {
    std::string got = read_until(fd, stopping, "", k_size + 1);
    write_all(fd, std::to_string(got.size()) + (got == pattern(k_size, 9) ? " same" : " different"), stopping);
  });
  FakeTcpServer big_echo(echo);
  auto tunnels = open_or_fail(*g_sshd);

  int down = connect_unix(local_socket_or_fail(*tunnels, source.port()));
  REQUIRE(down >= 0);
  auto received = read_to_eof(down);
  ::close(down);
  CHECK(received.size() == k_size);
  CHECK(received == pattern(k_size, 7));

  int up = connect_unix(local_socket_or_fail(*tunnels, sink.port()));
  REQUIRE(up >= 0);
  CHECK(converse(up, pattern(k_size, 9)) == std::to_string(k_size) + " same");
  ::close(up);

  int both = connect_unix(local_socket_or_fail(*tunnels, big_echo.port()));
  REQUIRE(both >= 0);
  CHECK(converse(both, pattern(k_size, 11)) == pattern(k_size, 11));
  ::close(both);
}

TEST_CASE("tunnels: a server that closes at once, and one that is not there", "[tunnels]") {
  FakeTcpServer closing([](int, const std::atomic<bool>&) {});
  const int nothing = free_loopback_port();
  auto tunnels = open_or_fail(*g_sshd);

  int fd = connect_unix(local_socket_or_fail(*tunnels, closing.port()));
  REQUIRE(fd >= 0);
  auto started = Clock::now();
  CHECK(read_to_eof(fd).empty());
  CHECK(Clock::now() - started < 5s);
  ::close(fd);

  fd = connect_unix(local_socket_or_fail(*tunnels, nothing));
  REQUIRE(fd >= 0);
  started = Clock::now();
  CHECK(read_to_eof(fd).empty());
  CHECK(Clock::now() - started < 5s);
  ::close(fd);
  CHECK(eventually([&] { return !tunnels->last_failure("127.0.0.1", nothing).empty(); }));
  CHECK(tunnels->last_failure("127.0.0.1", nothing) ==
        "host lab (127.0.0.1): ssh: forwarding to 127.0.0.1:" + std::to_string(nothing) +
            ": the host could not connect: Connection refused");

  // The tunnel still works for others after a refusal.
  FakeTcpServer server(echo);
  int again = connect_unix(local_socket_or_fail(*tunnels, server.port()));
  REQUIRE(again >= 0);
  CHECK(converse(again, "ping") == "ping");
  ::close(again);
}

TEST_CASE("tunnels: sshd with AllowTcpForwarding no: the refusal names the host and says why", "[tunnels]") {
  FakeTcpServer server(echo);
  auto tunnels = open_or_fail(*g_no_forwarding_sshd);
  int fd = connect_unix(local_socket_or_fail(*tunnels, server.port()));
  REQUIRE(fd >= 0);
  CHECK(read_to_eof(fd).empty());
  ::close(fd);
  CHECK(eventually([&] { return !tunnels->last_failure("127.0.0.1", server.port()).empty(); }));
  const std::string failure = tunnels->last_failure("127.0.0.1", server.port());
  CHECK(pgc::starts_with(failure, "host lab (127.0.0.1): ssh: forwarding to 127.0.0.1:" +
                                      std::to_string(server.port()) + ": administratively prohibited"));
  CHECK(server.connections() == 0);
}

TEST_CASE("tunnels: a host key that does not match is refused like connect_ssh refuses it", "[tunnels]") {
  auto options = options_for(*g_sshd);
  options.known_hosts_file = g_sshd->file("known_hosts_changed").string();
  auto tunnels = pgc::providers::open_tunnels(options);
  REQUIRE_FALSE(tunnels);
  CHECK(pgc::starts_with(tunnels.error().message, "host lab (127.0.0.1): ssh: host key mismatch for "));
}

TEST_CASE("tunnels: teardown mid-transfer leaves no thread, socket, directory or sshd child", "[tunnels]") {
  FakeTcpServer server(echo);
  const int threads_before = thread_count();
  // The earlier cases' sessions end on sshd's side a moment after theirs.
  REQUIRE(eventually([] { return g_sshd->connection_processes().empty(); }));
  const std::size_t sshd_children_before = 0;
  auto tunnels = open_or_fail(*g_sshd);
  const std::string path = local_socket_or_fail(*tunnels, server.port());
  const fs::path dir = fs::path(path).parent_path().parent_path();
  CHECK((fs::status(dir).permissions() & fs::perms::all) == fs::perms::owner_all);
  CHECK(thread_count() == threads_before + 1);
  CHECK(g_sshd->connection_processes().size() == sshd_children_before + 1);

  // A client in the middle of a conversation that it never ends.
  int fd = connect_unix(path);
  REQUIRE(fd >= 0);
  std::atomic<bool> never{false};
  REQUIRE(write_all(fd, "hello", never));
  CHECK(read_until(fd, never, "hello") == "hello");

  const auto started = Clock::now();
  tunnels.reset();
  CHECK(Clock::now() - started < 2s);
  CHECK(read_to_eof(fd).empty());  // the client sees the end
  ::close(fd);
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(dir));
  // The pump thread is gone; the echo server's thread for this connection ends once sshd closed
  // the forwarded connection.
  CHECK(eventually([&] { return thread_count() == threads_before; }));
  CHECK(eventually([&] { return g_sshd->connection_processes().size() == sshd_children_before; }));
}

TEST_CASE("tunnels: a killed run's socket directory is removed by the next, a living one's kept", "[tunnels]") {
  FakeTcpServer server(echo);
  auto first = open_or_fail(*g_sshd);
  const fs::path dir = fs::path(local_socket_or_fail(*first, server.port())).parent_path().parent_path();
  const fs::path base = dir.parent_path();
  CHECK(dir.filename().string().starts_with("pgc-tunnel-" + std::to_string(::getpid()) + "-"));

  pid_t child = ::fork();  // a process id that is surely gone once reaped
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  ::waitpid(child, nullptr, 0);
  const fs::path dead = base / ("pgc-tunnel-" + std::to_string(child) + "-killed");
  const fs::path living = base / "pgc-tunnel-1-living";  // pid 1 runs
  fs::create_directories(dead / "t1");
  { std::FILE* f = std::fopen((dead / "t1" / ".s.PGSQL.5432").c_str(), "w"); if (f) std::fclose(f); }
  fs::create_directories(living);

  auto second = open_or_fail(*g_sshd);
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(living));
  CHECK(fs::exists(dir));  // this process's own, still in use
  fs::remove_all(living);
}

// An HTTP server that answers every request with {"ok": true}.
void answer_json(int fd, const std::atomic<bool>& stopping) {
  read_until(fd, stopping, "\r\n\r\n");
  write_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n"
                "{\"ok\":true}", stopping);
}

TEST_CASE("tunnels: the Patroni client over a tunnel's unix socket, and the refusal in its error", "[tunnels]") {
  FakeTcpServer server(answer_json);
  auto tunnels = open_or_fail(*g_sshd);
  pgc::providers::PatroniEndpoint endpoint;
  endpoint.address = "127.0.0.1";
  endpoint.port = server.port();
  endpoint.unix_socket = local_socket_or_fail(*tunnels, server.port());
  auto answer = pgc::providers::make_patroni_client(endpoint)->cluster();
  REQUIRE(answer);
  CHECK((*answer)["ok"] == true);
  CHECK(server.connections() == 1);

  auto refusing = open_or_fail(*g_no_forwarding_sshd);
  endpoint.unix_socket = local_socket_or_fail(*refusing, server.port());
  endpoint.tunnel_failure = [&] { return refusing->last_failure("127.0.0.1", server.port()); };
  auto refused = pgc::providers::make_patroni_client(endpoint)->cluster();
  REQUIRE_FALSE(refused);
  INFO(refused.error().message);
  // The client saw its connection end (closed or reset, with the request unread); the tunnel says why.
  CHECK(pgc::starts_with(refused.error().message, "patroni 127.0.0.1:" + std::to_string(server.port()) + ": GET /cluster: "));
  CHECK(refused.error().message.find(" (host lab (127.0.0.1): ssh: forwarding to 127.0.0.1:" + std::to_string(server.port()) +
                                     ": administratively prohibited: ") != std::string::npos);
  CHECK(server.connections() == 1);
}

// ---- a real PostgreSQL behind the tunnel ------------------------------------------------------

namespace {

const fs::path k_pg_bin = "/usr/lib/postgresql/15/bin";
const std::string k_pg_password = "tunnel pw 'x'";

std::optional<std::string> postgres_missing() {
  for (const char* tool : {"initdb", "pg_ctl", "postgres"})
    if (!fs::exists(k_pg_bin / tool)) return (k_pg_bin / tool).string() + " is missing";
  if (getpwnam("postgres") == nullptr || !fs::exists("/usr/sbin/runuser")) return "no postgres user or runuser";
  return std::nullopt;
}

// initdb + start on 127.0.0.1:port (scram over TCP, a private socket dir); stopped (-m immediate)
// and removed by the destructor.
class Postgres {
 public:
  explicit Postgres(int port) : port_(port) {
    dir_ = make_temp_dir("pgc-tunnel-pg");
    sh("chown postgres: " + q(dir_));
    spit(dir_ / "pw", k_pg_password + "\n");
    sh("chown postgres: " + q(dir_ / "pw") + " && mkdir " + q(dir_ / "sock") + " && chown postgres: " + q(dir_ / "sock"));
    sh(as_postgres(q(k_pg_bin / "initdb") + " -D " + q(dir_ / "data") +
                   " -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile=" + q(dir_ / "pw") +
                   " --no-locale -E UTF8 --no-sync >/dev/null"));
    spit(dir_ / "extra.conf", "port = " + std::to_string(port) + "\nlisten_addresses = '127.0.0.1'\n" +
                                  "unix_socket_directories = '" + (dir_ / "sock").string() + "'\nfsync = off\n");
    sh("cat " + q(dir_ / "extra.conf") + " >> " + q(dir_ / "data" / "postgresql.conf"));
    started_ = true;
    sh(as_postgres(q(k_pg_bin / "pg_ctl") + " -D " + q(dir_ / "data") + " -l " + q(dir_ / "log") +
                   " -w -t 60 start >/dev/null"));
  }
  Postgres(const Postgres&) = delete;
  Postgres& operator=(const Postgres&) = delete;
  ~Postgres() {
    if (started_)
      std::system((as_postgres(q(k_pg_bin / "pg_ctl") + " -D " + q(dir_ / "data") + " stop -m immediate -w -t 20") +
                   " >/dev/null 2>&1")
                      .c_str());
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

 private:
  static std::string as_postgres(const std::string& command) { return "runuser -u postgres -- " + command; }
  fs::path dir_;
  int port_ = 0;
  bool started_ = false;
};

pgc::providers::PgConnection pg_connection(int port, const std::string& socket_dir) {
  pgc::providers::PgConnection c;
  c.host = "127.0.0.1";
  c.port = port;
  c.password = k_pg_password;
  c.socket_dir = socket_dir;
  c.connect_timeout = 5s;
  c.statement_timeout = 5s;
  return c;
}

double mean_ms(const pgc::providers::PgConnection& c, int runs) {
  const auto started = Clock::now();
  for (int i = 0; i < runs; ++i) REQUIRE(pgc::providers::observe_postgres(c));
  return std::chrono::duration<double, std::milli>(Clock::now() - started).count() / runs;
}

}  // namespace

TEST_CASE("tunnels: libpq reaches a real PostgreSQL through host=<socket dir>", "[tunnels][postgres]") {
  if (auto missing = postgres_missing()) {
    WARN("skipped: " << *missing);
    return;
  }
  const int port = free_loopback_port();
  Postgres postgres(port);
  auto tunnels = open_or_fail(*g_sshd);
  const std::string dir = fs::path(local_socket_or_fail(*tunnels, port)).parent_path().string();

  auto observed = pgc::providers::observe_postgres(pg_connection(port, dir));
  REQUIRE(observed);
  CHECK(observed->server_version_num >= 150000);
  CHECK_FALSE(observed->in_recovery);

  // Several at once, each with its own channel.
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&] { ok += pgc::providers::observe_postgres(pg_connection(port, dir)) ? 1 : 0; });
  for (auto& client : clients) client.join();
  CHECK(ok == 8);

  // A wrong password is PostgreSQL's answer, carried through; the message names the member.
  auto wrong = pg_connection(port, dir);
  wrong.password = "wrong";
  auto refused = pgc::providers::observe_postgres(wrong);
  REQUIRE_FALSE(refused);
  CHECK(pgc::starts_with(refused.error().message, "postgres 127.0.0.1:" + std::to_string(port) + ": connect: "));
  CHECK(refused.error().message.find("password authentication failed") != std::string::npos);

  const double direct = mean_ms(pg_connection(port, ""), 20);
  const double tunnelled = mean_ms(pg_connection(port, dir), 20);
  std::printf("timing: observe_postgres mean of 20: direct TCP %.2f ms, through the tunnel %.2f ms\n", direct,
              tunnelled);
  CHECK(tunnelled < 1000);
}

// ---- one session per host: commands and forwards together --------------------------------------

namespace {

pgc::providers::CommandResult run_or_fail(pgc::providers::RemoteHost& host, const std::vector<std::string>& argv) {
  auto r = host.run(argv, 10s);
  if (!r) FAIL(r.error().message);
  return *r;
}

pgc::manifests::Host lab_host(const PrivateSshd& sshd) {
  pgc::manifests::Host host;
  host.metadata.name = "lab";
  host.address = "127.0.0.1";
  host.ssh_port = sshd.port();
  return host;
}

pgc::reconciler::SshSettings lab_settings(const PrivateSshd& sshd) {
  pgc::reconciler::SshSettings settings;
  settings.identity_file = sshd.file("client_key").string();
  settings.known_hosts_file = sshd.file("known_hosts").string();
  settings.connect_timeout_ms = 5000;
  return settings;
}

}  // namespace

TEST_CASE("one session: commands and forwards run at once on one SSH login", "[tunnels][session]") {
  FakeTcpServer server(echo);
  REQUIRE(eventually([] { return g_sshd->connection_processes().empty(); }));
  const int logins_before = g_sshd->accepted_logins();
  auto connection = pgc::providers::open_ssh(options_for(*g_sshd));
  REQUIRE(connection);
  auto host = (*connection)->remote_host();
  const std::string path = local_socket_or_fail(**connection, server.port());

  // Six commands of 1 s each and four echoing connections, all at the same time.
  constexpr int k_commands = 6;
  std::vector<std::string> outputs(k_commands);
  std::vector<std::string> answers(4);
  std::vector<std::thread> threads;
  const auto started = Clock::now();
  for (int i = 0; i < k_commands; ++i)
    threads.emplace_back([&, i] {
      auto r = host->run_script("sleep 1; printf '%s' \"$1\"; cat", {"command " + std::to_string(i)}, 10s);
      outputs[static_cast<std::size_t>(i)] = r ? r->out : "error: " + r.error().message;
    });
  for (std::size_t i = 0; i < answers.size(); ++i)
    threads.emplace_back([&, i] {
      int fd = connect_unix(path);
      if (fd < 0) return;
      answers[i] = converse(fd, pattern(256 * 1024, static_cast<unsigned>(i)));
      ::close(fd);
    });
  for (auto& t : threads) t.join();
  const auto took = Clock::now() - started;
  for (int i = 0; i < k_commands; ++i) CHECK(outputs[static_cast<std::size_t>(i)] == "command " + std::to_string(i));
  for (std::size_t i = 0; i < answers.size(); ++i) CHECK(answers[i] == pattern(256 * 1024, static_cast<unsigned>(i)));
  CHECK(took < 3s);  // the commands ran side by side, not one after another
  // Input on stdin and a file written while the forwards are open.
  auto with_input = host->run_with_input({"cat"}, pattern(1 << 20, 3), 10s);
  REQUIRE(with_input);
  CHECK(with_input->out == pattern(1 << 20, 3));
  CHECK(g_sshd->accepted_logins() == logins_before + 1);
  CHECK(g_sshd->connection_processes().size() == 1);
  std::printf("timing: %d commands of 1 s and 4 echoing forwards on one session: %.2f s\n", k_commands,
              std::chrono::duration<double>(took).count());
}

TEST_CASE("one session: more commands at once than sshd's MaxSessions wait their turn", "[tunnels][session]") {
  auto connection = pgc::providers::open_ssh(options_for(*g_sshd));
  REQUIRE(connection);
  auto host = (*connection)->remote_host();
  constexpr int k_commands = 24;  // sshd allows 10 session channels per connection
  std::vector<int> statuses(k_commands, -1);
  std::vector<std::thread> threads;
  for (int i = 0; i < k_commands; ++i)
    threads.emplace_back([&, i] {
      auto r = host->run({"sleep", "0.3"}, 20s);
      statuses[static_cast<std::size_t>(i)] = r ? r->exit_status : -2;
      if (!r) std::printf("command %d: %s\n", i, r.error().message.c_str());
    });
  for (auto& t : threads) t.join();
  CHECK(std::count(statuses.begin(), statuses.end(), 0) == k_commands);

  // A server that allows 2: the refusals teach the limit, and every command still runs.
  auto small = pgc::providers::open_ssh(options_for(*g_two_sessions_sshd));
  REQUIRE(small);
  auto small_host = (*small)->remote_host();
  std::vector<int> small_statuses(6, -1);
  std::vector<std::thread> small_threads;
  for (std::size_t i = 0; i < small_statuses.size(); ++i)
    small_threads.emplace_back([&, i] {
      auto r = small_host->run({"sleep", "0.3"}, 20s);
      small_statuses[i] = r ? r->exit_status : -2;
      if (!r) std::printf("command %zu: %s\n", i, r.error().message.c_str());
    });
  for (auto& t : small_threads) t.join();
  CHECK(std::count(small_statuses.begin(), small_statuses.end(), 0) == 6);
}

TEST_CASE("one session: a lost session is opened again for the next command and connection", "[tunnels][session]") {
  FakeTcpServer server(echo);
  REQUIRE(eventually([] { return g_sshd->connection_processes().empty(); }));
  const int logins_before = g_sshd->accepted_logins();
  auto connection = pgc::providers::open_ssh(options_for(*g_sshd));
  REQUIRE(connection);
  auto host = (*connection)->remote_host();
  CHECK(run_or_fail(*host, {"echo", "before"}).out == "before\n");
  const std::string path = local_socket_or_fail(**connection, server.port());

  // A command in flight when the session goes: it fails, naming the host and the command.
  std::optional<pgc::Result<pgc::providers::CommandResult>> in_flight;
  std::thread waiting([&] { in_flight = host->run({"sleep", "5"}, 10s); });
  std::this_thread::sleep_for(500ms);
  auto processes = g_sshd->connection_processes();
  REQUIRE(processes.size() == 1);
  ::kill(processes.front(), SIGKILL);
  waiting.join();
  const bool failed = in_flight.has_value() && !in_flight->has_value();
  REQUIRE(failed);
  const std::string message = in_flight->error().message;
  INFO(message);
  CHECK(pgc::starts_with(message, "host lab (127.0.0.1): ssh: running sleep: connection lost"));

  // The next command and the next forwarded connection log in again, once.
  CHECK(run_or_fail(*host, {"echo", "after"}).out == "after\n");
  int fd = connect_unix(path);
  REQUIRE(fd >= 0);
  CHECK(converse(fd, "again") == "again");
  ::close(fd);
  CHECK(g_sshd->accepted_logins() == logins_before + 2);
}

TEST_CASE("one session: a run's commands, Patroni calls and etcd reads share one login per host", "[tunnels][session]") {
  FakeTcpServer server(answer_json);
  REQUIRE(eventually([] { return g_sshd->connection_processes().empty(); }));
  const int logins_before = g_sshd->accepted_logins();
  auto world = pgc::reconciler::make_real_world(lab_settings(*g_sshd));
  auto host = world->connect(lab_host(*g_sshd));
  REQUIRE(host);
  CHECK(run_or_fail(**host, {"echo", "probe"}).out == "probe\n");
  pgc::providers::PatroniEndpoint endpoint;
  endpoint.address = "127.0.0.1";
  endpoint.port = server.port();
  for (int i = 0; i < 3; ++i) {
    auto answer = world->patroni(endpoint)->cluster();
    REQUIRE(answer);
    CHECK((*answer)["ok"] == true);
  }
  // An etcd endpoint at the host's address goes through the host's SSH too ({"ok": true} has no kvs).
  auto has = world->dcs_has_any({"127.0.0.1:" + std::to_string(server.port())}, {"/service/x/config"}, std::nullopt);
  REQUIRE(has);
  CHECK_FALSE(*has);
  CHECK(server.connections() == 4);
  CHECK(g_sshd->accepted_logins() == logins_before + 1);
  CHECK(g_sshd->connection_processes().size() == 1);
}

TEST_CASE("one session: etcd at a host's address goes through its SSH, another endpoint directly", "[tunnels][session]") {
  FakeTcpServer server(answer_json);
  // A host whose sshd refuses forwarding: the etcd read through it fails and says why…
  auto world = pgc::reconciler::make_real_world(lab_settings(*g_no_forwarding_sshd));
  auto host = world->connect(lab_host(*g_no_forwarding_sshd));
  REQUIRE(host);
  auto refused = world->dcs_has_any({"127.0.0.1:" + std::to_string(server.port())}, {"/service/x/config"}, std::nullopt);
  REQUIRE_FALSE(refused);
  CHECK(pgc::starts_with(refused.error().message, "etcd 127.0.0.1:" + std::to_string(server.port()) + ": POST /v3/kv/range: "));
  CHECK(server.connections() == 0);
  // … while an address that is no host's (an external etcd, spec.endpoints) is reached directly.
  auto direct = world->dcs_has_any({"localhost:" + std::to_string(server.port())}, {"/service/x/config"}, std::nullopt);
  REQUIRE(direct);
  CHECK_FALSE(*direct);
  CHECK(server.connections() == 1);
}

int main(int argc, char** argv) {
  if (auto missing = PrivateSshd::missing_prerequisite()) return skip_suite(*missing);
  signal(SIGPIPE, SIG_IGN);
  try {
    PrivateSshd sshd;
    PrivateSshdOptions refusing;
    refusing.extra_config = {"AllowTcpForwarding no"};
    refusing.temp_prefix = "pgc-sshd-nofwd";
    PrivateSshd no_forwarding(refusing);
    PrivateSshdOptions two;
    two.extra_config = {"MaxSessions 2"};
    two.temp_prefix = "pgc-sshd-two";
    PrivateSshd two_sessions(two);
    g_sshd = &sshd;
    g_no_forwarding_sshd = &no_forwarding;
    g_two_sessions_sshd = &two_sessions;
    int result = pgc::test::run_catch(argc, argv);
    g_sshd = nullptr;
    g_no_forwarding_sshd = nullptr;
    g_two_sessions_sshd = nullptr;
    return result;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tunnels integration: %s\n", e.what());
    return 1;
  }
}

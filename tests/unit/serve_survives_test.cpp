// `serve` survives its input: a run that throws (here: the World throws while probing hosts, on a
// worker thread) fails alone — recorded, logged — and the daemon keeps answering /healthz and
// runs the next trigger; a damaged history.json is moved aside and runs go on.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "reconciler/history.hpp"
#include "reconciler/serve.hpp"
#include "tests/support/free_port.hpp"
#include "tests/support/read_all.hpp"
#include "tests/support/temp_dir.hpp"

using namespace pgc::reconciler;
using namespace std::chrono_literals;

namespace {

using pgc::test::read_all;

class ThrowingWorld : public World {
 public:
  pgc::Result<std::unique_ptr<pgc::providers::RemoteHost>> connect(const pgc::manifests::Host& host) override {
    ++connects;
    throw std::runtime_error("boom while connecting to " + host.address);
  }
  std::unique_ptr<pgc::providers::PatroniClient> patroni(const pgc::providers::PatroniEndpoint&) override {
    throw std::runtime_error("not reached");
  }
  pgc::Result<pgc::providers::PgObservation> postgres(const pgc::providers::PgConnection&) override {
    throw std::runtime_error("not reached");
  }
  pgc::Result<bool> dcs_has_any(const std::vector<std::string>&, const std::vector<std::string>&,
                                   const std::optional<pgc::providers::EtcdTls>&) override {
    throw std::runtime_error("not reached");
  }
  std::atomic<int> connects{0};
};

// GET path on 127.0.0.1:port; "" when nothing answered. The status line and body.
std::string http_get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) reply.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return reply;
}

// Waits (bounded) until the history holds at least n runs; their count.
std::size_t wait_for_runs(const History& history, std::size_t n, std::chrono::seconds bound) {
  auto deadline = std::chrono::steady_clock::now() + bound;
  std::size_t have = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto runs = history.load(); runs && (have = runs->size()) >= n) return have;
    std::this_thread::sleep_for(100ms);
  }
  return have;
}

// Waits (bounded) until /metrics counts at least n failed runs; the count. (Not through the
// history: loading it would itself move a damaged file aside.)
int wait_for_failures(int port, int n, std::chrono::seconds bound) {
  const std::string counter = "pgconverge_reconcile_total{result=\"failure\"} ";
  auto deadline = std::chrono::steady_clock::now() + bound;
  int have = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto metrics = http_get(port, "/metrics");
    if (auto at = metrics.find(counter); at != std::string::npos && (have = std::atoi(metrics.c_str() + at + counter.size())) >= n)
      return have;
    std::this_thread::sleep_for(100ms);
  }
  return have;
}

struct Daemon {
  pgc::test::TempDir dir;
  ServeConfig config;
  int port = pgc::test::free_loopback_port();
  std::ostringstream log_text;
  EventLog log{log_text, LogFormat::text};
  std::atomic<bool> stop{false};
  ThrowingWorld world;
  std::thread thread;
  int exit_code = -1;

  Daemon() {
    config.source.locations = {std::string(PGC_SOURCE_DIR) + "/examples/seeds/sync-all"};
    config.source.state_dir = dir.path() / "state";
    config.interval = 1s;
    config.jitter = 0;
    config.workers = 3;  // the probe runs on worker threads
    config.lock_timeout = 5s;
    config.listen = "127.0.0.1:" + std::to_string(port);
    std::filesystem::create_directories(config.source.state_dir);
  }
  void start() {
    thread = std::thread([this] { exit_code = serve(config, world, log, stop); });
  }
  ~Daemon() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
};

}  // namespace

TEST_CASE("serve: a run that throws fails alone; /healthz answers and the next trigger runs") {
  Daemon d;
  d.start();
  History history(d.config.source.state_dir);
  REQUIRE(wait_for_runs(history, 2, 20s) >= 2);  // two polls, each one a failed run
  CHECK(d.world.connects >= 2);
  auto health = http_get(d.port, "/healthz");
  CHECK(health.find("200 OK") != std::string::npos);
  auto runs = history.load();
  REQUIRE(runs);
  CHECK(runs->back().result == "failure");
  REQUIRE_FALSE(runs->back().errors.empty());
  CHECK(runs->back().errors.front().find("boom while connecting") != std::string::npos);
  CHECK(http_get(d.port, "/metrics").find("pgconverge_reconcile_total{result=\"failure\"}") != std::string::npos);
  d.stop = true;
  d.thread.join();
  CHECK(d.exit_code == 0);
  CHECK(d.log_text.str().find("run failed: boom while connecting") != std::string::npos);
}

TEST_CASE("serve: a damaged history.json is moved aside with a warning and runs go on") {
  Daemon d;
  History history(d.config.source.state_dir);
  const std::string damaged = R"({"runs": [{"result": "success", "durationSeconds": "1.5s"}]})";
  std::ofstream(history.path()) << damaged;
  d.start();
  REQUIRE(wait_for_failures(d.port, 2, 20s) >= 2);
  CHECK(http_get(d.port, "/healthz").find("200 OK") != std::string::npos);
  std::size_t aside = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.config.source.state_dir))
    if (e.path().filename().string().starts_with("history.json.damaged-")) {
      ++aside;
      std::ifstream in(e.path());
      CHECK(read_all(in) == damaged);
    }
  CHECK(aside == 1);
  d.stop = true;
  d.thread.join();
  CHECK(d.exit_code == 0);
  CHECK(d.log_text.str().find("moved aside") != std::string::npos);
}

// sync_git_source over ssh:// against a private sshd on 127.0.0.1 that this file starts (its own
// host keys, client key and config in a temp dir) and kills by PID: strict host key checking
// against the known_hosts file given, and key authentication.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <thread>

#include "providers/git/git_source.hpp"
#include "tests/integration/git/test_support.hpp"
#include "util/strings.hpp"

extern char** environ;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pgc::providers::GitSourceOptions;
using pgc::test::q;
using pgc::test::RepoFixture;
using pgc::test::sh;
using pgc::test::slurp;
using pgc::test::spit;
using Clock = std::chrono::steady_clock;

namespace {

int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    throw std::runtime_error("cannot find a free port");
  close(fd);
  return ntohs(address.sin_port);
}

bool port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return ok;
}

std::string user_name() {
  const passwd* pw = getpwuid(geteuid());
  if (pw == nullptr || pw->pw_name == nullptr) throw std::runtime_error("no user name");
  return pw->pw_name;
}

// A throwaway sshd on 127.0.0.1:<free port> accepting client_key for the current user. As root it
// runs in a private mount namespace where ~/.bashrc is empty (sshd's bash sources it for every
// command, and this machine's is slow).
class PrivateSshd {
 public:
  PrivateSshd() {
    for (const char* key : {"host_key", "other_host_key", "client_key", "stranger_key"})
      sh("ssh-keygen -q -t ed25519 -N '' -C pgc-test -f " + q(dir_.path / key));
    fs::copy_file(dir_.path / "client_key.pub", dir_.path / "authorized_keys");
    if (geteuid() == 0 && !fs::exists("/run/sshd")) {  // sshd's privilege separation directory
      fs::create_directories("/run/sshd");
      created_run_sshd_ = true;
    }
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) try_start();
    if (pid_ <= 0) throw std::runtime_error("sshd did not start:\n" + slurp(dir_.path / "sshd.log"));
    spit(dir_.path / "known_hosts", known_hosts_line("host_key.pub"));
    spit(dir_.path / "known_hosts_changed", known_hosts_line("other_host_key.pub"));
    spit(dir_.path / "known_hosts_empty", "");
  }
  PrivateSshd(const PrivateSshd&) = delete;
  PrivateSshd& operator=(const PrivateSshd&) = delete;
  ~PrivateSshd() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    if (created_run_sshd_) fs::remove(fs::path("/run/sshd"), ignored);
  }

  [[nodiscard]] fs::path file(const std::string& name) const { return dir_.path / name; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string fingerprint(const std::string& pub) const {
    return pgc::split(sh("ssh-keygen -E sha256 -lf " + q(dir_.path / pub)), ' ').at(1);
  }

 private:
  void try_start() {
    port_ = free_loopback_port();
    spit(dir_.path / "sshd_config",
         "ListenAddress 127.0.0.1:" + std::to_string(port_) + "\n" +
         "HostKey " + (dir_.path / "host_key").string() + "\n" +
         "PidFile " + (dir_.path / "sshd.pid").string() + "\n" +
         "AuthorizedKeysFile " + (dir_.path / "authorized_keys").string() + "\n" +
         "PermitRootLogin prohibit-password\n"
         "PasswordAuthentication no\n"
         "KbdInteractiveAuthentication no\n"
         "StrictModes no\n"
         "UsePAM no\n"
         "UseDNS no\n"
         "PrintMotd no\n"
         "LogLevel INFO\n");
    const std::string config = (dir_.path / "sshd_config").string();
    const std::string script = "mount --bind /dev/null \"$HOME/.bashrc\" 2>/dev/null; exec /usr/sbin/sshd -D -e -f " +
                               pgc::shell_quote(config);
    bool private_mounts = geteuid() == 0 && access("/usr/bin/unshare", X_OK) == 0;
    std::vector<std::string> words =
        private_mounts
            ? std::vector<std::string>{"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script}
            : std::vector<std::string>{"/usr/sbin/sshd", "-D", "-e", "-f", config};
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = (dir_.path / "sshd.log").string();
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start sshd");
    // unshare and sh exec into sshd: pid is sshd's own.
    for (auto until = Clock::now() + 5s; Clock::now() < until; std::this_thread::sleep_for(20ms)) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) return;  // exited (port taken?): try another port
      if (port_open(port_)) {
        pid_ = pid;
        return;
      }
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }

  [[nodiscard]] std::string known_hosts_line(const std::string& pub) const {
    // Another port's entry (a different key) must not count for this one.
    auto words = pgc::split(pgc::trim(slurp(dir_.path / pub)), ' ');
    auto stranger = pgc::split(pgc::trim(slurp(dir_.path / "stranger_key.pub")), ' ');
    return "# a comment\n[127.0.0.1]:" + std::to_string(port_ + 1) + " " + stranger.at(0) + " " + stranger.at(1) +
           "\n[127.0.0.1]:" + std::to_string(port_) + " " + words.at(0) + " " + words.at(1) + "\n";
  }

  pgc::test::TempDir dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool created_run_sshd_ = false;
};

// One sshd for all the ssh test cases, started by the first.
PrivateSshd& sshd() {
  static PrivateSshd server;
  return server;
}

GitSourceOptions ssh_options(const RepoFixture& repo, const std::string& known_hosts = "known_hosts") {
  GitSourceOptions options;
  options.url = "ssh://" + user_name() + "@127.0.0.1:" + std::to_string(sshd().port()) + repo.bare.string();
  options.cache_dir = repo.cache;
  options.ssh_identity = sshd().file("client_key").string();
  options.known_hosts = sshd().file(known_hosts).string();
  options.timeout = 10s;
  return options;
}

}  // namespace

TEST_CASE("git ssh: a source is fetched over ssh:// with a key and a known host key", "[git][ssh][integration]") {
  RepoFixture repo;
  const std::string sha = repo.commit({{"a.yaml", "over ssh\n"}}, "first");
  repo.push();
  auto sync = pgc::providers::sync_git_source(ssh_options(repo));
  if (!sync) FAIL(sync.error().message);
  CHECK(sync->fetched);
  CHECK(sync->revision.sha == sha);
  CHECK(slurp(sync->checkout / "a.yaml") == "over ssh\n");
}

TEST_CASE("git ssh: an unknown or changed host key is refused", "[git][ssh][integration]") {
  RepoFixture repo;
  repo.commit({{"a.yaml", "1\n"}}, "first");
  repo.push();
  const std::string offered = sshd().fingerprint("host_key.pub");

  auto changed = ssh_options(repo, "known_hosts_changed");
  auto mismatch = pgc::providers::sync_git_source(changed);
  REQUIRE_FALSE(mismatch);
  CHECK(mismatch.error().message == "git " + changed.url + ": fetch: ssh: host key mismatch: the key offered (" +
                                        offered + ") differs from " + changed.known_hosts + "; refusing to connect");

  auto empty = ssh_options(repo, "known_hosts_empty");
  auto unknown = pgc::providers::sync_git_source(empty);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().message == "git " + empty.url + ": fetch: ssh: unknown host key: the key offered (" +
                                       offered + ") for [127.0.0.1]:" + std::to_string(sshd().port()) +
                                       " is not in " + empty.known_hosts + "; refusing to connect");

  auto missing = ssh_options(repo, "no_such_known_hosts");
  auto unreadable = pgc::providers::sync_git_source(missing);
  REQUIRE_FALSE(unreadable);
  CHECK(unreadable.error().message == "git " + missing.url + ": fetch: ssh: cannot verify the host key (" + offered +
                                          "): known_hosts file " + missing.known_hosts +
                                          " is missing or unreadable; refusing to connect");
}

TEST_CASE("git ssh: a key the server does not accept is an error", "[git][ssh][integration]") {
  RepoFixture repo;
  repo.commit({{"a.yaml", "1\n"}}, "first");
  repo.push();
  auto options = ssh_options(repo);
  options.ssh_identity = sshd().file("stranger_key").string();
  auto refused = pgc::providers::sync_git_source(options);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message == "git " + options.url + ": fetch: ssh: authentication as " + user_name() +
                                       " with key " + options.ssh_identity + " was refused");
}

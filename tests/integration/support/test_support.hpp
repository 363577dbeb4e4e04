#pragma once
// Helpers shared by the integration suites (tests/integration/ssh, tests/integration/git): temp
// dirs and files, local shell commands, loopback ports, processes, prerequisite checks, and a
// throwaway sshd on 127.0.0.1. Header-only; CMake target pgc_integration_support.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/free_port.hpp"
#include "tests/support/temp_dir.hpp"
#include "util/strings.hpp"

extern char** environ;

namespace pgc::test {

// The exit code that CTest reports as "skipped" (SKIP_RETURN_CODE 77 on the integration tests).
inline constexpr int k_skip_exit_code = 77;

// Runs a shell command built from our own temp paths (quote them with q) and returns its stdout
// and stderr together; throws with that output when it fails.
inline std::string sh(const std::string& command) {
  std::string wrapped = "{ " + command + "; } 2>&1";
  FILE* pipe = popen(wrapped.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
  std::string out;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  if (pclose(pipe) != 0) throw std::runtime_error("command failed: " + command + "\n" + out);
  return out;
}

// The path quoted as one word for sh.
inline std::string q(const std::filesystem::path& path) { return pgc::shell_quote(path.string()); }

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes the file (replacing it), creating its parent directories.
inline void spit(const std::filesystem::path& path, const std::string& text) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Whether something accepts connections on 127.0.0.1:port.
inline bool port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return ok;
}

// Whether the process has exited (no longer exists, or is a zombie).
inline bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  auto close_paren = line.rfind(')');
  return close_paren != std::string::npos && line.size() > close_paren + 2 && line[close_paren + 2] == 'Z';
}

// The name of the effective user.
inline std::string user_name() {
  const passwd* pw = getpwuid(geteuid());
  if (pw == nullptr || pw->pw_name == nullptr) throw std::runtime_error("no user name");
  return pw->pw_name;
}

// Whether the tool can be run: a path with a slash must be executable, a bare name must be found
// as an executable in one of the directories of PATH.
inline bool tool_installed(std::string_view tool) {
  if (tool.find('/') != std::string_view::npos) return access(std::string(tool).c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  for (const std::string& dir : pgc::split(path != nullptr ? path : "", ':')) {
    std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : dir) / tool;
    if (access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) return true;
  }
  return false;
}

// "<tool> is not installed" for the first of the tools that is not, if any.
inline std::optional<std::string> missing_tool(std::initializer_list<std::string_view> tools) {
  for (std::string_view tool : tools)
    if (!tool_installed(tool)) return std::string(tool) + " is not installed";
  return std::nullopt;
}

// Prints "SKIPPED: <why>" and returns the exit code for main that CTest reports as skipped.
inline int skip_suite(const std::string& why) {
  std::printf("SKIPPED: %s\n", why.c_str());
  return k_skip_exit_code;
}

// What a PrivateSshd makes besides its standard keys (host_key, other_host_key, client_key and
// stranger_key, all ed25519; client_key is the authorized one) and how it runs.
struct PrivateSshdOptions {
  // More key pairs to make in the temp dir: {file name, ssh-keygen -t type}.
  std::vector<std::pair<std::string, std::string>> extra_keys;
  // known_hosts files written once the port is known: {file name, the public key file listed for
  // [127.0.0.1]:<port>, or "" for an empty file}.
  std::vector<std::pair<std::string, std::string>> known_hosts{
      {"known_hosts", "host_key.pub"}, {"known_hosts_changed", "other_host_key.pub"}, {"known_hosts_empty", ""}};
  // Each non-empty known_hosts file also has a comment and another port's entry (stranger_key for
  // [127.0.0.1]:<port + 1>), which must not count for this one.
  bool decoy_known_hosts_entries = false;
  // Lines appended to sshd_config (without the newline).
  std::vector<std::string> extra_config;
  // Files bind-mounted over with /dev/null in sshd's private mount namespace (as root, when
  // /usr/bin/unshare exists). By default the effective user's ~/.bashrc: sshd's bash sources it
  // for every command, and this machine's pyenv setup there costs ~0.7 s a command.
  std::vector<std::filesystem::path> hidden_files{default_hidden_files()};
  // The temp dir for keys, config, log and known_hosts files: <temp>/<prefix>.XXXXXX.
  std::string temp_prefix = "pgc-sshd";

  static std::vector<std::filesystem::path> default_hidden_files() {
    const passwd* pw = getpwuid(geteuid());
    if (pw == nullptr || pw->pw_dir == nullptr) return {};
    return {std::filesystem::path(pw->pw_dir) / ".bashrc"};
  }
};

// A throwaway sshd on 127.0.0.1:<free port>, its keys and config in a temp dir, started by the
// constructor and stopped (by PID) by stop() or the destructor. Set PGC_SSH_TEST_KEEP to keep the
// temp dir (sshd.log, sshd_config) afterwards.
class PrivateSshd {
 public:
  // Why a private sshd cannot run here, if it cannot: it needs root, sshd and ssh-keygen.
  static std::optional<std::string> missing_prerequisite() {
    if (geteuid() != 0) return "not running as root";
    return missing_tool({"/usr/sbin/sshd", "/usr/bin/ssh-keygen"});
  }

  explicit PrivateSshd(PrivateSshdOptions options = {}) : options_(std::move(options)) {
    try {
      start();
    } catch (...) {
      stop();
      throw;
    }
  }
  PrivateSshd(const PrivateSshd&) = delete;
  PrivateSshd& operator=(const PrivateSshd&) = delete;
  ~PrivateSshd() { stop(); }

  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (created_run_sshd_) {
      std::error_code ignored;
      std::filesystem::remove(std::filesystem::path("/run/sshd"), ignored);
      created_run_sshd_ = false;
    }
    if (!dir_.empty() && std::getenv("PGC_SSH_TEST_KEEP") != nullptr) {
      std::fprintf(stderr, "kept %s (PGC_SSH_TEST_KEEP)\n", dir_.c_str());
    } else if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
      dir_.clear();
    }
  }

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  [[nodiscard]] std::filesystem::path file(const std::string& name) const { return dir_ / name; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

  // "SHA256:…" of a public key file in the temp dir, as ssh-keygen prints it.
  [[nodiscard]] std::string fingerprint(const std::string& pub) const {
    return pgc::split(sh("ssh-keygen -E sha256 -lf " + q(dir_ / pub)), ' ').at(1);
  }

  // How many logins sshd has accepted so far.
  [[nodiscard]] int accepted_logins() const {
    std::string log = slurp(dir_ / "sshd.log");
    int count = 0;
    for (std::size_t at = log.find("Accepted publickey"); at != std::string::npos;
         at = log.find("Accepted publickey", at + 1))
      ++count;
    return count;
  }

  // The per-connection sshd processes (children of the listener).
  [[nodiscard]] std::vector<pid_t> connection_processes() const {
    std::ifstream children("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) + "/children");
    std::vector<pid_t> out;
    for (pid_t child = 0; children >> child;) out.push_back(child);
    return out;
  }

 private:
  void start() {
    dir_ = make_temp_dir(options_.temp_prefix);
    std::vector<std::pair<std::string, std::string>> keys{
        {"host_key", "ed25519"}, {"other_host_key", "ed25519"}, {"client_key", "ed25519"}, {"stranger_key", "ed25519"}};
    keys.insert(keys.end(), options_.extra_keys.begin(), options_.extra_keys.end());
    for (const auto& [name, type] : keys)
      sh("ssh-keygen -q -t " + pgc::shell_quote(type) + " -N '' -C pgc-test -f " + q(dir_ / name));
    std::filesystem::copy_file(dir_ / "client_key.pub", dir_ / "authorized_keys");
    if (geteuid() == 0 && !std::filesystem::exists("/run/sshd")) {  // sshd's privilege separation directory
      std::filesystem::create_directories("/run/sshd");
      created_run_sshd_ = true;
    }
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) try_start();
    if (pid_ <= 0)
      throw std::runtime_error("sshd did not start; see " + (dir_ / "sshd.log").string() + ":\n" +
                               slurp(dir_ / "sshd.log"));
    for (const auto& [name, pub] : options_.known_hosts) spit(dir_ / name, pub.empty() ? "" : known_hosts_text(pub));
  }

  void try_start() {
    using namespace std::chrono_literals;
    port_ = free_loopback_port();
    std::string config = "ListenAddress 127.0.0.1:" + std::to_string(port_) + "\n" +
                         "HostKey " + (dir_ / "host_key").string() + "\n" +
                         "PidFile " + (dir_ / "sshd.pid").string() + "\n" +
                         "AuthorizedKeysFile " + (dir_ / "authorized_keys").string() + "\n" +
                         "PermitRootLogin prohibit-password\n"
                         "PasswordAuthentication no\n"
                         "KbdInteractiveAuthentication no\n"
                         "StrictModes no\n"
                         "UsePAM no\n"
                         "UseDNS no\n"
                         "PrintMotd no\n"
                         "LogLevel INFO\n";
    for (const std::string& line : options_.extra_config) config += line + "\n";
    const std::string config_file = (dir_ / "sshd_config").string();
    spit(config_file, config);
    sh("/usr/sbin/sshd -t -f " + q(config_file));
    std::string script;
    for (const auto& hidden : options_.hidden_files)
      script += "mount --bind /dev/null " + q(hidden) + " 2>/dev/null; ";
    script += "exec /usr/sbin/sshd -D -e -f " + q(config_file);
    bool private_mounts = geteuid() == 0 && access("/usr/bin/unshare", X_OK) == 0;
    std::vector<std::string> words =
        private_mounts
            ? std::vector<std::string>{"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script}
            : std::vector<std::string>{"/usr/sbin/sshd", "-D", "-e", "-f", config_file};
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = (dir_ / "sshd.log").string();
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start sshd");
    // unshare and sh exec into sshd: pid is sshd's own.
    using Clock = std::chrono::steady_clock;
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

  // "[127.0.0.1]:<port> <type> <key>\n" for a public key file in the temp dir.
  [[nodiscard]] std::string known_hosts_entry(const std::string& pub, int port) const {
    auto words = pgc::split(pgc::trim(slurp(dir_ / pub)), ' ');
    return "[127.0.0.1]:" + std::to_string(port) + " " + words.at(0) + " " + words.at(1) + "\n";
  }

  [[nodiscard]] std::string known_hosts_text(const std::string& pub) const {
    std::string decoys =
        options_.decoy_known_hosts_entries ? "# a comment\n" + known_hosts_entry("stranger_key.pub", port_ + 1) : "";
    return decoys + known_hosts_entry(pub, port_);
  }

  PrivateSshdOptions options_;
  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool created_run_sshd_ = false;
};

}  // namespace pgc::test

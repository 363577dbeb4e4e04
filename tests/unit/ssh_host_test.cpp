// The SSH provider without a server: command-line quoting (checked by running the lines through
// the local sh and bash, which is what sshd hands them to), script wrapping, and connection
// failures that need no sshd. The real-server tests are tests/integration/ssh/.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tests/support/hostile_words.hpp"
#include "tests/support/shell_output.hpp"
#include "providers/ssh/command_line.hpp"
#include "providers/ssh/remote_host.hpp"
#include "tests/support/temp_dir.hpp"
#include "util/strings.hpp"

using namespace std::chrono_literals;
using pgc::providers::build_command_line;
using pgc::providers::connect_ssh;
using pgc::providers::script_stdin;
using pgc::providers::SshOptions;
using pgc::providers::with_remote_timeout;

using pgc::test::hostile_words;
using pgc::test::shell_output;
using pgc::test::TempDir;

namespace {

std::vector<std::string> split_nul(const std::string& text) {
  std::vector<std::string> words;
  for (std::size_t start = 0, end = 0; (end = text.find('\0', start)) != std::string::npos; start = end + 1)
    words.push_back(text.substr(start, end - start));
  return words;
}

int bound_unlistened_port(int& fd) {
  fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), length) == 0);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  return ntohs(address.sin_port);
}

}  // namespace

TEST_CASE("ssh: build_command_line quotes every word and adds sudo for other users", "[ssh]") {
  CHECK(build_command_line({"systemctl", "is-active", "patroni@15-main"}, "root").value() ==
        "systemctl is-active patroni@15-main");
  CHECK(build_command_line({"systemctl", "start", "patroni"}, "deploy").value() ==
        "sudo -n -- systemctl start patroni");
  CHECK(build_command_line({"echo", "a b", "", "it's", "$(rm -rf /)"}, "root").value() ==
        "echo 'a b' '' 'it'\\''s' '$(rm -rf /)'");
  CHECK(build_command_line({"-rf"}, "deploy").value() == "sudo -n -- -rf");

  auto empty = build_command_line({}, "root");
  REQUIRE_FALSE(empty);
  CHECK(empty.error().message == "empty command");
  auto nul = build_command_line({"printf", "%s", std::string("a\0b", 3)}, "root");
  REQUIRE_FALSE(nul);
  CHECK(nul.error().message == "argument 2 of printf contains a NUL byte");
}

TEST_CASE("ssh: hostile words survive sh -c and bash -c unchanged, and run nothing", "[ssh]") {
  TempDir temp;
  const std::string marker = (temp.path() / "pwned").string();
  const auto hostile = hostile_words(marker);
  std::vector<std::string> argv{"printf", "%s\\0"};
  argv.insert(argv.end(), hostile.begin(), hostile.end());
  auto line = build_command_line(argv, "root");
  REQUIRE(line);
  CHECK(split_nul(shell_output(*line)) == hostile);  // popen: /bin/sh (dash) -c line
  if (access("/bin/bash", X_OK) == 0)
    CHECK(split_nul(shell_output("/bin/bash -c " + pgc::shell_quote(*line))) == hostile);

  // Under timeout(1) as well, which is how RemoteHost sends them.
  if (access("/usr/bin/timeout", X_OK) == 0) {
    auto timed = build_command_line(with_remote_timeout(argv, 5s), "root");
    REQUIRE(timed);
    CHECK(split_nul(shell_output(*timed)) == hostile);
  }
  // For another user the words are the same, behind sudo.
  auto sudo = build_command_line(argv, "deploy");
  REQUIRE(sudo);
  CHECK(*sudo == "sudo -n -- " + *line);
  CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("ssh: each word is one argument, wherever it stands", "[ssh]") {
  // Between words that end in a backslash, a hostile word is still exactly one argument: no quote
  // joins it to a neighbour and no blank splits it.
  TempDir temp;
  const std::string marker = (temp.path() / "pwned").string();
  for (const auto& word : hostile_words(marker)) {
    auto line = build_command_line({"sh", "-c", "printf '%s\\0' \"$#\" \"$@\"", "sh", "\\", word, "\\"}, "root");
    REQUIRE(line);
    CHECK(split_nul(shell_output(*line)) == std::vector<std::string>{"3", "\\", word, "\\"});
  }
  CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("ssh: with_remote_timeout runs argv under timeout(1) in seconds", "[ssh]") {
  using V = std::vector<std::string>;
  CHECK(with_remote_timeout({"sleep", "10"}, 11s) == V{"timeout", "-k", "5s", "11s", "sleep", "10"});
  CHECK(with_remote_timeout({"true"}, 2500ms) == V{"timeout", "-k", "5s", "2.5s", "true"});
  CHECK(with_remote_timeout({"true"}, 1ms) == V{"timeout", "-k", "5s", "1s", "true"});
}

TEST_CASE("ssh: script_stdin lets sh -s parse the whole script before running it", "[ssh]") {
  CHECK(script_stdin("echo hi").value() == "{\necho hi\n} </dev/null\n");
  auto nul = script_stdin(std::string("echo\0", 5));
  REQUIRE_FALSE(nul);
  CHECK(nul.error().message == "script contains a NUL byte");

  // Run it the way the host does: `sh -s -- args` with the text on stdin. `cat` must not
  // swallow the rest of the script, and a last line that is a comment must not eat the `}`.
  TempDir temp;
  auto input = temp.path() / "stdin";
  std::ofstream(input, std::ios::binary) << script_stdin("set -eu\necho \"$# [$1] [$2]\"\ncat\necho after # done").value();
  auto line = build_command_line({"sh", "-s", "--", "a b", "$(echo no)"}, "root").value();
  CHECK(shell_output(line + " <" + pgc::shell_quote(input.string())) == "2 [a b] [$(echo no)]\nafter\n");
}

TEST_CASE("ssh: connecting to a closed port fails fast and names the host", "[ssh]") {
  int fd = -1;
  int port = bound_unlistened_port(fd);  // bound, never listening: the kernel refuses connections
  SshOptions options;
  options.host_name = "pg-2";
  options.address = "127.0.0.1";
  options.port = port;
  options.connect_timeout = 5s;
  auto started = std::chrono::steady_clock::now();
  auto host = connect_ssh(options);
  auto took = std::chrono::steady_clock::now() - started;
  close(fd);
  REQUIRE_FALSE(host);
  CHECK(host.error().message == "host pg-2 (127.0.0.1): ssh: cannot connect to port " + std::to_string(port) +
                                    ": Connection refused");
  CHECK(took < 2s);
}

TEST_CASE("ssh: a server that never speaks SSH fails after the connect timeout", "[ssh]") {
  int fd = -1;
  int port = bound_unlistened_port(fd);
  REQUIRE(listen(fd, 4) == 0);  // the kernel completes the handshake; nobody ever answers
  SshOptions options;
  options.host_name = "pg-2";
  options.address = "127.0.0.1";
  options.port = port;
  options.connect_timeout = 500ms;
  auto started = std::chrono::steady_clock::now();
  auto host = connect_ssh(options);
  auto took = std::chrono::steady_clock::now() - started;
  close(fd);
  REQUIRE_FALSE(host);
  CHECK(host.error().message == "host pg-2 (127.0.0.1): ssh: cannot connect to port " + std::to_string(port) +
                                    ": Timeout connecting to 127.0.0.1");
  CHECK(took >= 450ms);
  CHECK(took < 2s);
}

TEST_CASE("ssh: bad options and an unreadable key fail before any network traffic", "[ssh]") {
  SshOptions options;
  options.host_name = "pg-2";
  options.address = "10.250.0.12";

  auto no_key = options;
  no_key.identity_file = "/nonexistent/pgc-test-key";
  auto r = connect_ssh(no_key);
  REQUIRE_FALSE(r);
  CHECK(r.error().message ==
        "host pg-2 (10.250.0.12): ssh: cannot read private key /nonexistent/pgc-test-key: No such file or directory");

  TempDir temp;
  auto not_a_key = temp.path() / "id";
  std::ofstream(not_a_key) << "not a key\n";
  auto garbage = options;
  garbage.identity_file = not_a_key.string();
  auto g = connect_ssh(garbage);
  REQUIRE_FALSE(g);
  CHECK(g.error().message == "host pg-2 (10.250.0.12): ssh: cannot load private key " + not_a_key.string() +
                                 ": not a private key, or protected by a passphrase (use ssh-agent for those)");

  auto no_address = options;
  no_address.address.clear();
  CHECK(connect_ssh(no_address).error().message == "host pg-2 (): ssh: no address");
  auto bad_port = options;
  bad_port.port = 0;
  CHECK(connect_ssh(bad_port).error().message == "host pg-2 (10.250.0.12): ssh: invalid port 0");
}

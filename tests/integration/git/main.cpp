// The git integration suite's runner: checks the tools the tests drive and isolates git from the
// user's configuration; exits 77 (CTest: skipped) when a tool is missing.

#define CATCH_CONFIG_RUNNER
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/integration/git/test_support.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace pgc::test {

std::string sh(const std::string& command) {
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

std::string q(const fs::path& path) { return pgc::shell_quote(path.string()); }

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void spit(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "pgc-git-test.XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path, ignored);
}

std::vector<std::string> list_tree(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    std::string name = fs::relative(entry.path(), root).string();
    if (entry.is_symlink()) name += "@";
    else if (entry.is_directory()) name += "/";
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

RepoFixture::RepoFixture() {
  sh("git init -q -b main " + q(work));
  sh("git init -q --bare -b main " + q(bare));
  git("remote add origin " + q(bare));
}

std::string RepoFixture::git(const std::string& args) const {
  return sh("git -C " + q(work) + " -c user.name='Pat Tester' -c user.email=pat@example.com " + args);
}

std::string RepoFixture::commit(const std::map<std::string, std::string>& files, const std::string& message,
                                const std::string& extra_args) const {
  for (const auto& [name, content] : files) spit(work / name, content);
  git("add -A");
  git("commit -q --allow-empty " + extra_args + " -m " + pgc::shell_quote(message));
  return pgc::trim(git("rev-parse HEAD"));
}

void RepoFixture::push(const std::string& args) const { git("push -q " + args); }

}  // namespace pgc::test

int main(int argc, char** argv) {
  for (const char* tool : {"git", "ssh-keygen", "gpg", "gpgv", "gpg-agent", "gpgconf", "/usr/sbin/sshd"}) {
    if (std::system(("command -v " + std::string(tool) + " >/dev/null 2>&1").c_str()) != 0) {
      std::printf("SKIPPED: %s is not installed\n", tool);
      return 77;
    }
  }
  // The git CLI reads neither the user's nor the system's configuration. SIGPIPE keeps its
  // default action: run_process must absorb it on its own.
  setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
  setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  return Catch::Session().run(argc, argv);
}

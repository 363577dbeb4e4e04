// The git integration suite's runner: checks the tools the tests drive and isolates git from the
// user's configuration; exits 77 (CTest: skipped) when a tool is missing.

#include <catch2/catch.hpp>
#include "tests/support/catch_session.hpp"
#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "tests/integration/git/test_support.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace pgc::test {

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

pgc::providers::GitSourceOptions options_for(const RepoFixture& repo, const std::string& ref) {
  pgc::providers::GitSourceOptions options;
  options.url = repo.url;
  options.ref = ref;
  options.cache_dir = repo.cache;
  options.timeout = std::chrono::seconds(10);
  return options;
}

pgc::providers::GitSync sync_or_fail(const pgc::providers::GitSourceOptions& options) {
  auto sync = pgc::providers::sync_git_source(options);
  if (!sync) FAIL(sync.error().message);
  return std::move(*sync);
}

}  // namespace pgc::test

int main(int argc, char** argv) {
  if (auto missing =
          pgc::test::missing_tool({"git", "ssh-keygen", "gpg", "gpgv", "gpg-agent", "gpgconf", "/usr/sbin/sshd"}))
    return pgc::test::skip_suite(*missing);
  // The git CLI reads neither the user's nor the system's configuration. SIGPIPE keeps its
  // default action: run_process must absorb it on its own.
  setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
  setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  return pgc::test::run_catch(argc, argv);
}

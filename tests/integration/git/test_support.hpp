#pragma once
// Helpers shared by the git integration tests: the integration suites' common helpers (temp dirs,
// files, running the real tools, a private sshd), repositories made with the git CLI, and
// syncing them.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "providers/git/git_source.hpp"
#include "tests/integration/support/test_support.hpp"

namespace pgc::test {

// Every path under root (relative, sorted; directories included), and symlinks marked "@".
std::vector<std::string> list_tree(const std::filesystem::path& root);

// A working repository "work" with a bare remote "remote.git" (default branch main) in a temp
// dir, and an empty cache dir for the source under test.
struct RepoFixture {
  TempDir temp{"pgc-git-test"};
  std::filesystem::path work = temp.path() / "work";
  std::filesystem::path bare = temp.path() / "remote.git";
  std::filesystem::path cache = temp.path() / "cache";
  std::string url = "file://" + bare.string();

  RepoFixture();
  // `git -C work <args>` with a fixed author and committer.
  std::string git(const std::string& args) const;
  // Writes the files (path → content), stages everything and commits; returns the new sha.
  std::string commit(const std::map<std::string, std::string>& files, const std::string& message,
                     const std::string& extra_args = "") const;
  void push(const std::string& args = "origin main") const;
};

// Options that sync the fixture's remote (file://) at ref (empty: the remote's HEAD) into its
// cache dir, with a 10 s timeout.
pgc::providers::GitSourceOptions options_for(const RepoFixture& repo, const std::string& ref = "");

// sync_git_source, failing the test case with its error when it fails.
pgc::providers::GitSync sync_or_fail(const pgc::providers::GitSourceOptions& options);

}  // namespace pgc::test

#pragma once
// Helpers shared by the git integration tests: temp dirs, files, and running the real tools.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace pgc::test {

// Runs a shell command built from our own temp paths (quote them with q) and returns its stdout;
// throws with its output when it fails.
std::string sh(const std::string& command);

// The word quoted for sh.
std::string q(const std::filesystem::path& path);

std::string slurp(const std::filesystem::path& path);
void spit(const std::filesystem::path& path, const std::string& text);

// A fresh directory per test, removed afterwards.
struct TempDir {
  std::filesystem::path path;
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
};

// Every path under root (relative, sorted; directories included), and symlinks marked "@".
std::vector<std::string> list_tree(const std::filesystem::path& root);

// A working repository "work" with a bare remote "remote.git" (default branch main) in a temp
// dir, and an empty cache dir for the source under test.
struct RepoFixture {
  TempDir temp;
  std::filesystem::path work = temp.path / "work";
  std::filesystem::path bare = temp.path / "remote.git";
  std::filesystem::path cache = temp.path / "cache";
  std::string url = "file://" + bare.string();

  RepoFixture();
  // `git -C work <args>` with a fixed author and committer.
  std::string git(const std::string& args) const;
  // Writes the files (path → content), stages everything and commits; returns the new sha.
  std::string commit(const std::map<std::string, std::string>& files, const std::string& message,
                     const std::string& extra_args = "") const;
  void push(const std::string& args = "origin main") const;
};

}  // namespace pgc::test

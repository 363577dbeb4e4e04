#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>

#include "providers/git/git_credentials.hpp"
#include "tests/support/temp_dir.hpp"

using pgc::providers::read_git_credentials;

namespace {

std::filesystem::path write(const std::filesystem::path& file, const std::string& text, mode_t mode) {
  std::ofstream(file) << text;
  ::chmod(file.c_str(), mode);
  return file;
}

}  // namespace

TEST_CASE("git credentials file: the entry for the URL's scheme, host and path") {
  pgc::test::TempDir dir;
  auto file = write(dir.path() / "creds",
                    "# deploy tokens\n"
                    "https://x:repo-token@git.example/org/special.git\n"
                    "https://deploy:host-token@git.example\n"
                    "https://oauth2:p%40ss@other.example:8443\n",
                    0600);
  auto special = read_git_credentials(file, "https://git.example/org/special.git");
  REQUIRE(special);
  REQUIRE(*special);
  CHECK((*special)->password == "repo-token");
  CHECK((*special)->origin == file.string() + " line 2");
  auto other_repo = read_git_credentials(file, "https://git.example/org/other.git");
  REQUIRE(*other_repo);
  CHECK((*other_repo)->user == "deploy");
  CHECK((*other_repo)->password == "host-token");
  auto port = read_git_credentials(file, "https://other.example:8443/r.git");
  REQUIRE(*port);
  CHECK((*port)->password == "p@ss");
  CHECK_FALSE(*read_git_credentials(file, "https://other.example/r.git"));  // another port
  CHECK_FALSE(*read_git_credentials(file, "http://git.example/org/other.git"));  // another scheme
}

TEST_CASE("git credentials file: refused when others may read it, never echoing a secret") {
  pgc::test::TempDir dir;
  auto open_file = write(dir.path() / "creds", "https://deploy:s3cret@git.example\n", 0644);
  auto refused = read_git_credentials(open_file, "https://git.example/r.git");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("mode 0644") != std::string::npos);
  CHECK(refused.error().message.find("s3cret") == std::string::npos);

  ::chmod(open_file.c_str(), 0620);
  CHECK_FALSE(read_git_credentials(open_file, "https://git.example/r.git"));

  auto link = dir.path() / "link";
  ::chmod(open_file.c_str(), 0600);
  std::filesystem::create_symlink(open_file, link);
  CHECK_FALSE(read_git_credentials(link, "https://git.example/r.git"));  // a symlink is not followed

  auto bad = write(dir.path() / "bad", "deploy s3cret git.example\n", 0600);
  auto malformed = read_git_credentials(bad, "https://git.example/r.git");
  REQUIRE_FALSE(malformed);
  CHECK(malformed.error().message.find("line 1") != std::string::npos);
  CHECK(malformed.error().message.find("s3cret") == std::string::npos);

  CHECK_FALSE(read_git_credentials(dir.path() / "absent", "https://git.example/r.git"));
}

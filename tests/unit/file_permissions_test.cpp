#include <catch2/catch.hpp>

#include <filesystem>

#include "tests/support/temp_dir.hpp"
#include "util/file_permissions.hpp"

using pgc::readable_by_everyone;
using pgc::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("file permissions: readable by everyone is the others-read bit, nothing else") {
  TempDir dir;
  auto file = dir.write("secret", "0123456789abcdef");
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  auto closed = readable_by_everyone(file.string());
  REQUIRE(closed);
  CHECK_FALSE(*closed);

  fs::permissions(file, fs::perms::owner_read | fs::perms::group_read | fs::perms::group_write);
  auto group = readable_by_everyone(file.string());
  REQUIRE(group);
  CHECK_FALSE(*group);

  fs::permissions(file, fs::perms::owner_read | fs::perms::others_read);
  auto open = readable_by_everyone(file.string());
  REQUIRE(open);
  CHECK(*open);
}

TEST_CASE("file permissions: a symbolic link is judged by its target, as stat(2) does") {
  TempDir dir;
  auto file = dir.write("secret", "0123456789abcdef");
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  fs::create_symlink(file, dir.path() / "link");  // the link itself reads as 0777
  auto linked = readable_by_everyone((dir.path() / "link").string());
  REQUIRE(linked);
  CHECK_FALSE(*linked);
}

TEST_CASE("file permissions: a missing file is an error naming it") {
  TempDir dir;
  auto missing = (dir.path() / "absent").string();
  auto r = readable_by_everyone(missing);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find(missing + ": ") == 0);
}

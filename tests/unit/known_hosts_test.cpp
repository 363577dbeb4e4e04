// util/known_hosts: appending a host key the way accept-new does — atomically, keeping what the
// file held, its mode and its symlink, and never losing an entry to a concurrent writer.

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.hpp"
#include "util/known_hosts.hpp"

namespace fs = std::filesystem;
using pgc::append_known_hosts_entry;
using pgc::Result;

namespace {

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) out.push_back(entry.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

Result<bool> always(const std::string&) { return true; }

const std::string k_entry =
    "[10.0.0.12]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5ZpVmQ4ZbE0wq1r0pX8d9x2pzm4nq8y9v0c0Yt2Q1m\n";

}  // namespace

TEST_CASE("known_hosts: an entry is appended after the existing ones, keeping the mode", "[known_hosts]") {
  pgc::test::TempDir temp;
  auto file = temp.path() / "known_hosts";
  write(file, "# site hosts\n10.0.0.11 ssh-ed25519 AAAA1");  // no final newline
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  auto appended = append_known_hosts_entry(file, k_entry, always);
  REQUIRE(appended);
  CHECK(*appended);
  CHECK(read(file) == "# site hosts\n10.0.0.11 ssh-ed25519 AAAA1\n" + k_entry);
  CHECK(mode_of(file) == 0640);
  CHECK(names_in(temp.path()) == std::vector<std::string>{"known_hosts"});

  // An entry without its newline gets one.
  REQUIRE(append_known_hosts_entry(file, "10.0.0.13 ssh-ed25519 AAAA3", always));
  CHECK(read(file).ends_with(k_entry + "10.0.0.13 ssh-ed25519 AAAA3\n"));
}

TEST_CASE("known_hosts: a missing file and directory are created, 0644 and 0700", "[known_hosts]") {
  pgc::test::TempDir temp;
  auto file = temp.path() / "home" / ".ssh" / "known_hosts";
  std::string seen = "unset";
  auto appended = append_known_hosts_entry(file, k_entry, [&](const std::string& current) -> Result<bool> {
    seen = current;
    return true;
  });
  REQUIRE(appended);
  CHECK(*appended);
  CHECK(seen.empty());
  CHECK(read(file) == k_entry);
  CHECK(mode_of(file) == 0644);
  CHECK(mode_of(file.parent_path()) == 0700);
}

TEST_CASE("known_hosts: nothing is written when the host became known or is refused", "[known_hosts]") {
  pgc::test::TempDir temp;
  auto file = temp.path() / "known_hosts";
  write(file, k_entry);
  auto inode = [&] {
    struct stat st {};
    REQUIRE(stat(file.c_str(), &st) == 0);
    return st.st_ino;
  };
  const auto before = inode();

  std::string seen;
  auto known = append_known_hosts_entry(file, k_entry, [&](const std::string& current) -> Result<bool> {
    seen = current;
    return false;
  });
  REQUIRE(known);
  CHECK_FALSE(*known);
  CHECK(seen == k_entry);  // the decision sees the file as it is under the lock

  auto refused = append_known_hosts_entry(file, "10.0.0.12 ssh-ed25519 AAAA2\n", [](const std::string&) -> Result<bool> {
    return pgc::fail("host key mismatch");
  });
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message == "host key mismatch");
  CHECK(read(file) == k_entry);
  CHECK(inode() == before);
  CHECK(names_in(temp.path()) == std::vector<std::string>{"known_hosts"});
}

TEST_CASE("known_hosts: a symlink is followed and stays a symlink", "[known_hosts]") {
  pgc::test::TempDir temp;
  fs::create_directories(temp.path() / "real");
  write(temp.path() / "real" / "known_hosts", "");
  fs::create_symlink(temp.path() / "real" / "known_hosts", temp.path() / "known_hosts");
  REQUIRE(append_known_hosts_entry(temp.path() / "known_hosts", k_entry, always));
  CHECK(fs::is_symlink(temp.path() / "known_hosts"));
  CHECK(read(temp.path() / "real" / "known_hosts") == k_entry);

  fs::create_symlink(temp.path() / "nowhere" / "file", temp.path() / "dangling");
  auto dangling = append_known_hosts_entry(temp.path() / "dangling", k_entry, always);
  REQUIRE_FALSE(dangling);
  CHECK(dangling.error().message.starts_with((temp.path() / "dangling").string() + " is a symlink to nothing"));
}

TEST_CASE("known_hosts: what is not a file or cannot be read is an error", "[known_hosts]") {
  pgc::test::TempDir temp;
  fs::create_directories(temp.path() / "a-dir");
  auto dir = append_known_hosts_entry(temp.path() / "a-dir", k_entry, always);
  REQUIRE_FALSE(dir);
  CHECK(dir.error().message == (temp.path() / "a-dir").string() + " is not a regular file");

  write(temp.path() / "file", "");
  auto under_file = append_known_hosts_entry(temp.path() / "file" / "known_hosts", k_entry, always);
  REQUIRE_FALSE(under_file);
  CHECK(under_file.error().message ==
        "cannot open the directory " + (temp.path() / "file").string() + ": Not a directory");
}

TEST_CASE("known_hosts: concurrent writers lose no entry", "[known_hosts]") {
  // Each writer adds its own host unless the file already lists it, as accept-new does; the
  // directory lock makes read-decide-rename one step, so all of them end up in the file once.
  pgc::test::TempDir temp;
  auto file = temp.path() / "known_hosts";
  constexpr int writers = 16;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(writers);
  for (int i = 0; i < writers; ++i)
    threads.emplace_back([&, i] {
      for (int round = 0; round < 2; ++round) {  // the second round finds its entry and writes nothing
        const std::string entry = "10.0.1." + std::to_string(i) + " ssh-ed25519 AAAA" + std::to_string(i) + "\n";
        auto r = append_known_hosts_entry(file, entry, [&](const std::string& current) -> Result<bool> {
          return current.find(entry) == std::string::npos;
        });
        if (!r) errors[static_cast<std::size_t>(i)] = r.error().message;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(errors == std::vector<std::string>(writers));
  const std::string text = read(file);
  for (int i = 0; i < writers; ++i) {
    const std::string entry = "10.0.1." + std::to_string(i) + " ssh-ed25519 AAAA" + std::to_string(i) + "\n";
    auto first = text.find(entry);
    CHECK(first != std::string::npos);
    CHECK(text.find(entry, first + 1) == std::string::npos);
  }
  CHECK(std::count(text.begin(), text.end(), '\n') == writers);
  CHECK(names_in(temp.path()) == std::vector<std::string>{"known_hosts"});
}

TEST_CASE("known_hosts: describe names the connection, key, host and file", "[known_hosts]") {
  pgc::RecordedHostKey key{"host pg-2 (10.0.0.12)", "[10.0.0.12]:2222", "ssh-ed25519", "SHA256:abc",
                           "/root/.ssh/known_hosts"};
  CHECK(pgc::describe(key) == "host pg-2 (10.0.0.12): ssh: recorded the new host key ssh-ed25519 SHA256:abc for "
                              "[10.0.0.12]:2222 in /root/.ssh/known_hosts (accept-new)");
}

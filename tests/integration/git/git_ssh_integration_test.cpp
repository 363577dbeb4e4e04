// sync_git_source over ssh:// against a private sshd on 127.0.0.1 that this file starts (its own
// host keys, client key and config in a temp dir) and kills by PID: strict host key checking
// against the known_hosts file given, and key authentication.

#include <catch2/catch.hpp>
#include <chrono>

#include "providers/git/git_source.hpp"
#include "tests/integration/git/test_support.hpp"

using namespace std::chrono_literals;
using namespace pgc::test;
using pgc::providers::GitSourceOptions;

namespace {

// One sshd for all the ssh test cases, started by the first: it accepts client_key for the
// current user, and its known_hosts files also list another port's key.
PrivateSshd& sshd() {
  static PrivateSshd server([] {
    PrivateSshdOptions options;
    options.decoy_known_hosts_entries = true;
    return options;
  }());
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

// sync_git_source over ssh:// against a private sshd on 127.0.0.1 that this file starts (its own
// host keys, client key and config in a temp dir) and kills by PID: strict host key checking
// against the known_hosts file given, and key authentication.

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

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

// "[127.0.0.1]:<port>", as known_hosts names the sshd.
std::string known_name() { return "[127.0.0.1]:" + std::to_string(sshd().port()); }

// The refusal when options.known_hosts lists other_host_key for the sshd (on line 3, after the
// decoys): both fingerprints, the host and the file.
std::string changed_key_message(const GitSourceOptions& options) {
  return "git " + options.url + ": fetch: ssh: host key mismatch for " + known_name() +
         ": the server offered ssh-ed25519 " + sshd().fingerprint("host_key.pub") + ", but " + options.known_hosts +
         " lists ssh-ed25519 " + sshd().fingerprint("other_host_key.pub") +
         " (line 3); refusing to connect (if the host was reinstalled, remove the old key with ssh-keygen -R " +
         pgc::shell_quote(known_name()) + " -f " + pgc::shell_quote(options.known_hosts) + ")";
}

// The entry OpenSSH would write for the sshd's host key.
std::string host_key_entry() {
  auto words = pgc::split(pgc::trim(slurp(sshd().file("host_key.pub"))), ' ');
  return known_name() + " " + words.at(0) + " " + words.at(1);
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
  CHECK(mismatch.error().message == changed_key_message(changed));

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

TEST_CASE("git ssh: accept-new records an unknown server's key once; a changed key is still refused",
          "[git][ssh][integration]") {
  RepoFixture repo;
  repo.commit({{"a.yaml", "1\n"}}, "first");
  repo.push();
  TempDir temp;
  auto options = ssh_options(repo);
  options.known_hosts = (temp.path() / "known_hosts").string();  // missing: created
  options.new_host_keys = pgc::NewHostKeys::accept;
  std::vector<pgc::RecordedHostKey> recorded;
  options.on_host_key_recorded = [&](const pgc::RecordedHostKey& key) { recorded.push_back(key); };

  auto first = pgc::providers::sync_git_source(options);
  if (!first) FAIL(first.error().message);
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].who == "git " + options.url);
  CHECK(recorded[0].name == known_name());
  CHECK(recorded[0].type == "ssh-ed25519");
  CHECK(recorded[0].fingerprint == sshd().fingerprint("host_key.pub"));
  CHECK(recorded[0].file == options.known_hosts);
  CHECK(slurp(options.known_hosts) == host_key_entry() + "\n");
  // OpenSSH finds the entry, and so does the next sync, which writes nothing.
  const std::string found = sh("ssh-keygen -F " + pgc::shell_quote(known_name()) + " -f " + q(options.known_hosts));
  CHECK(found.find(host_key_entry()) != std::string::npos);
  auto second = pgc::providers::sync_git_source(options);
  if (!second) FAIL(second.error().message);
  CHECK(recorded.size() == 1);
  CHECK(slurp(options.known_hosts) == host_key_entry() + "\n");

  auto changed = ssh_options(repo, "known_hosts_changed");
  changed.cache_dir = temp.path() / "fresh-cache";  // no last good revision to fall back on
  changed.new_host_keys = pgc::NewHostKeys::accept;
  changed.on_host_key_recorded = options.on_host_key_recorded;
  const std::string before = slurp(changed.known_hosts);
  auto mismatch = pgc::providers::sync_git_source(changed);
  REQUIRE_FALSE(mismatch);
  CHECK(mismatch.error().message == changed_key_message(changed));
  CHECK(slurp(changed.known_hosts) == before);
  CHECK(recorded.size() == 1);
}

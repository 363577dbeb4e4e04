// sync_git_source against file:// remotes made with the git CLI: clone, checkout, refs, fetch,
// fetch failure, rewinds; and the URL helpers.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>

#include "providers/git/git_source.hpp"
#include "tests/integration/git/test_support.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pgc::providers::GitSourceOptions;
using pgc::providers::is_git_url;
using pgc::providers::redact_git_url;
using pgc::providers::sync_git_source;
using namespace pgc::test;

namespace {

std::string sync_error(const GitSourceOptions& options) {
  auto sync = sync_git_source(options);
  if (sync) FAIL("sync of " + options.url + " succeeded, resolving " + sync->revision.sha);
  return sync.error().message;
}

unsigned mode_of(const fs::path& path) {
  struct stat st{};
  stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("git: the first sync clones and checks out exactly the committed files", "[git][integration]") {
  RepoFixture repo;
  pgc::test::spit(repo.work / "outside.txt", "not committed\n");
  pgc::test::spit(repo.work / ".gitignore", "outside.txt\n");
  sh("ln -s clusters/prod.yaml " + q(repo.work / "link.yaml"));
  sh("ln -s /etc " + q(repo.work / "escape"));
  const std::string sha = repo.commit({{"clusters/prod.yaml", "kind: Cluster\n"},
                                       {"hosts/a/pg-1.yaml", "kind: Host\n"},
                                       {"bin/hook.sh", "#!/bin/sh\n"}},
                                      "Add the prod cluster\n\nWith a body.");
  sh("chmod +x " + q(repo.work / "bin/hook.sh"));
  repo.git("add -A");
  const std::string final_sha = repo.commit({}, "Make the hook executable");
  repo.push();
  REQUIRE(final_sha != sha);

  auto sync = sync_or_fail(options_for(repo));
  CHECK(sync.fetched);
  CHECK(sync.fetch_error.empty());
  CHECK_FALSE(sync.previous_sha);
  CHECK_FALSE(sync.rewound);
  CHECK(sync.revision.sha == final_sha);
  CHECK(sync.revision.short_sha == final_sha.substr(0, 7));
  CHECK(sync.revision.subject == "Make the hook executable");
  CHECK(sync.revision.author == "Pat Tester <pat@example.com>");
  CHECK(std::abs(sync.revision.commit_time - std::chrono::duration_cast<std::chrono::seconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count()) < 600);
  CHECK(sync.signature.signature.empty());
  CHECK(sync.signature.signed_data.empty());
  CHECK(sync.checkout == repo.cache / "checkouts" / final_sha);
  // Symlinks are skipped (never created, never followed); nothing else leaks in.
  CHECK(list_tree(sync.checkout) == std::vector<std::string>{".gitignore", "bin/", "bin/hook.sh", "clusters/",
                                                              "clusters/prod.yaml", "hosts/", "hosts/a/",
                                                              "hosts/a/pg-1.yaml"});
  CHECK(slurp(sync.checkout / "clusters/prod.yaml") == "kind: Cluster\n");
  CHECK(mode_of(sync.checkout / "bin/hook.sh") == 0755);
  CHECK(mode_of(sync.checkout / "clusters/prod.yaml") == 0644);
  CHECK(list_tree(repo.cache / "checkouts") ==
        std::vector<std::string>{final_sha + "/", final_sha + "/.gitignore", final_sha + "/bin/",
                                 final_sha + "/bin/hook.sh", final_sha + "/clusters/",
                                 final_sha + "/clusters/prod.yaml", final_sha + "/hosts/",
                                 final_sha + "/hosts/a/", final_sha + "/hosts/a/pg-1.yaml"});

  // Nothing new: the same revision, the checkout reused, the previous sha remembered.
  auto again = sync_or_fail(options_for(repo));
  CHECK(again.fetched);
  CHECK(again.revision.sha == final_sha);
  CHECK(again.previous_sha == final_sha);
  CHECK_FALSE(again.rewound);
  CHECK(again.checkout == sync.checkout);
}

TEST_CASE("git: ref selects a branch, a tag, a commit or a short sha", "[git][integration]") {
  RepoFixture repo;
  const std::string first = repo.commit({{"a.yaml", "1\n"}}, "first");
  repo.git("tag -a v1 -m 'release 1'");
  repo.git("tag light");
  const std::string second = repo.commit({{"a.yaml", "2\n"}}, "second");
  repo.git("checkout -q -b feature");
  const std::string feature = repo.commit({{"b.yaml", "feature\n"}}, "on feature");
  repo.git("checkout -q main");
  repo.push("origin main feature v1 light");

  CHECK(sync_or_fail(options_for(repo)).revision.sha == second);  // the remote's HEAD: main
  CHECK(sync_or_fail(options_for(repo, "main")).revision.sha == second);
  CHECK(sync_or_fail(options_for(repo, "refs/heads/main")).revision.sha == second);
  auto on_feature = sync_or_fail(options_for(repo, "feature"));
  CHECK(on_feature.revision.sha == feature);
  CHECK(slurp(on_feature.checkout / "b.yaml") == "feature\n");
  CHECK(sync_or_fail(options_for(repo, "v1")).revision.sha == first);  // annotated: peeled to its commit
  CHECK(sync_or_fail(options_for(repo, "refs/tags/v1")).revision.sha == first);
  CHECK(sync_or_fail(options_for(repo, "light")).revision.sha == first);
  CHECK(sync_or_fail(options_for(repo, first)).revision.sha == first);
  auto short_ref = sync_or_fail(options_for(repo, first.substr(0, 7)));
  CHECK(short_ref.revision.sha == first);
  CHECK(slurp(short_ref.checkout / "a.yaml") == "1\n");

  // The remote's default branch is whatever its HEAD names now.
  sh("git -C " + q(repo.bare) + " symbolic-ref HEAD refs/heads/feature");
  CHECK(sync_or_fail(options_for(repo)).revision.sha == feature);
}

TEST_CASE("git: an unknown ref is an error naming the URL and the ref", "[git][integration]") {
  RepoFixture repo;
  repo.commit({{"a.yaml", "1\n"}}, "first");
  repo.push();
  CHECK(sync_error(options_for(repo, "nope")) ==
        "git " + repo.url + ": ref \"nope\" not found (not a branch, tag or commit)");
  CHECK(sync_error(options_for(repo, "deadbeef")) ==
        "git " + repo.url + ": ref \"deadbeef\" not found (not a branch, tag or commit)");
}

TEST_CASE("git: a new commit is fetched on the next sync; old checkouts are pruned", "[git][integration]") {
  RepoFixture repo;
  const std::string first = repo.commit({{"a.yaml", "1\n"}}, "first");
  repo.push();
  auto one = sync_or_fail(options_for(repo));
  REQUIRE(one.revision.sha == first);

  const std::string second = repo.commit({{"a.yaml", "2\n"}, {"b.yaml", "new\n"}}, "second");
  repo.push();
  auto two = sync_or_fail(options_for(repo));
  CHECK(two.fetched);
  CHECK(two.revision.sha == second);
  CHECK(two.previous_sha == first);
  CHECK_FALSE(two.rewound);
  CHECK(slurp(two.checkout / "a.yaml") == "2\n");
  CHECK(slurp(two.checkout / "b.yaml") == "new\n");
  CHECK(fs::exists(one.checkout));  // the previous checkout stays for a run still reading it

  std::string last;
  for (int i = 3; i <= 6; ++i) {
    last = repo.commit({{"a.yaml", std::to_string(i) + "\n"}}, "commit " + std::to_string(i));
    repo.push();
    REQUIRE(sync_or_fail(options_for(repo)).revision.sha == last);
  }
  std::vector<std::string> kept;
  for (const auto& entry : fs::directory_iterator(repo.cache / "checkouts")) kept.push_back(entry.path().filename());
  CHECK(kept.size() == 3);
  CHECK(std::find(kept.begin(), kept.end(), last) != kept.end());
  CHECK(std::find(kept.begin(), kept.end(), first) == kept.end());
}

TEST_CASE("git: when the fetch fails the last good revision is returned with the error", "[git][integration]") {
  RepoFixture repo;
  const std::string sha = repo.commit({{"a.yaml", "1\n"}}, "first");
  repo.push();
  auto good = sync_or_fail(options_for(repo));
  fs::remove_all(good.checkout);  // pruned or lost: rebuilt from the cache
  fs::remove_all(repo.bare);

  auto stale = sync_or_fail(options_for(repo));
  CHECK_FALSE(stale.fetched);
  CHECK(stale.revision.sha == sha);
  CHECK(stale.previous_sha == sha);
  CHECK_FALSE(stale.rewound);
  CHECK(pgc::starts_with(stale.fetch_error, "git " + repo.url + ": fetch: "));
  CHECK(stale.fetch_error.size() > ("git " + repo.url + ": fetch: ").size());
  CHECK(slurp(stale.checkout / "a.yaml") == "1\n");

  // The last good revision is for another ref: nothing to fall back on.
  auto other_ref = sync_git_source(options_for(repo, "v2"));
  REQUIRE_FALSE(other_ref);
  CHECK(other_ref.error().message == stale.fetch_error);

  // No cache yet: the fetch error itself.
  auto fresh = options_for(repo);
  fresh.cache_dir = repo.temp.path() / "fresh-cache";
  CHECK(sync_error(fresh) == stale.fetch_error);
}

TEST_CASE("git: a force-push to an unrelated commit is reported as a rewind", "[git][integration]") {
  RepoFixture repo;
  repo.commit({{"a.yaml", "1\n"}}, "first");
  const std::string before = repo.commit({{"a.yaml", "2\n"}}, "second");
  repo.push();
  REQUIRE(sync_or_fail(options_for(repo)).revision.sha == before);

  repo.git("checkout -q --orphan rewritten");
  const std::string unrelated = repo.commit({{"a.yaml", "rewritten\n"}}, "rewritten history");
  repo.push("--force origin rewritten:main");
  auto sync = sync_or_fail(options_for(repo));
  CHECK(sync.revision.sha == unrelated);
  CHECK(sync.previous_sha == before);
  CHECK(sync.rewound);

  // Going back to an ancestor is a rewind too; going forward again is not.
  repo.git("checkout -q main");
  repo.push("--force origin main");
  auto back = sync_or_fail(options_for(repo));
  CHECK(back.revision.sha == before);
  CHECK(back.rewound);
  const std::string forward = repo.commit({{"a.yaml", "3\n"}}, "third");
  repo.push();
  auto ahead = sync_or_fail(options_for(repo));
  CHECK(ahead.revision.sha == forward);
  CHECK_FALSE(ahead.rewound);
}

TEST_CASE("git: a deleted branch is pruned from the cache", "[git][integration]") {
  RepoFixture repo;
  repo.commit({{"a.yaml", "1\n"}}, "first");
  repo.git("branch gone");
  repo.git("tag gone-tag");
  repo.push("origin main gone gone-tag");
  REQUIRE(sync_git_source(options_for(repo, "gone")));
  REQUIRE(sync_git_source(options_for(repo, "gone-tag")));
  repo.push("origin --delete gone gone-tag");
  CHECK(sync_error(options_for(repo, "gone")) ==
        "git " + repo.url + ": ref \"gone\" not found (not a branch, tag or commit)");
  CHECK(sync_error(options_for(repo, "gone-tag")) ==
        "git " + repo.url + ": ref \"gone-tag\" not found (not a branch, tag or commit)");
}

TEST_CASE("git: a tree entry that could escape the checkout is refused", "[git][integration]") {
  RepoFixture repo;
  repo.commit({{"a.yaml", "1\n"}}, "first");
  // git itself never writes such trees; a hostile server can.
  const std::string blob = pgc::trim(sh("printf 'x\\n' | git -C " + q(repo.work) + " hash-object -w --stdin"));
  for (const std::string name : {"..", ".git", ".GIT"}) {
    const std::string tree =
        pgc::trim(sh("printf '100644 blob " + blob + "\\t" + name + "\\n' | git -C " + q(repo.work) + " mktree"));
    const std::string outer =
        pgc::trim(sh("printf '040000 tree " + tree + "\\tclusters\\n' | git -C " + q(repo.work) + " mktree"));
    const std::string commit = pgc::trim(repo.git("commit-tree -m hostile " + outer));
    repo.push("--force origin " + commit + ":refs/heads/hostile");
    CHECK(sync_error(options_for(repo, "hostile")) == "git " + repo.url + ": checkout " + commit +
                                                          ": tree entry \"clusters/" + name +
                                                          "\" is not a safe file name");
    std::vector<std::string> left;
    for (const auto& entry : fs::directory_iterator(repo.cache / "checkouts")) left.push_back(entry.path().filename());
    CHECK(left.empty());
  }
}

TEST_CASE("git: a password in the URL never appears in an error", "[git][integration]") {
  pgc::test::TempDir temp;
  GitSourceOptions options;
  options.url = "https://deploy:s3cret@127.0.0.1:1/repo.git";  // port 1: connection refused at once
  options.cache_dir = temp.path() / "cache";
  options.timeout = 5s;
  std::string error = sync_error(options);
  CHECK(pgc::starts_with(error, "git https://127.0.0.1:1/repo.git: fetch: "));
  CHECK(error.find("s3cret") == std::string::npos);
  CHECK(error.find("deploy") == std::string::npos);  // an https user name may be a token
  // Nor on disk: the cache fetches through an anonymous remote, its config holds no URL.
  CHECK(slurp(options.cache_dir / "repo.git/config").find("s3cret") == std::string::npos);

  options.url = "https://ghp_TOKEN0123456789@127.0.0.1:1/repo.git";  // a token as the user
  error = sync_error(options);
  CHECK(pgc::starts_with(error, "git https://127.0.0.1:1/repo.git: fetch: "));
  CHECK(error.find("ghp_TOKEN") == std::string::npos);

  CHECK(redact_git_url("https://user:secret@host/r.git") == "https://host/r.git");
  CHECK(redact_git_url("https://user:se:cr@et@host:8443/r.git") == "https://host:8443/r.git");
  CHECK(redact_git_url("https://TOKEN@host/r.git") == "https://host/r.git");
  CHECK(redact_git_url("https://host/a@b:c") == "https://host/a@b:c");
  CHECK(redact_git_url("ssh://git:pw@host:2222/r.git") == "ssh://git@host:2222/r.git");
  CHECK(redact_git_url("git@github.com:org/repo.git") == "git@github.com:org/repo.git");
}

TEST_CASE("git: the cache is 0700 and its FETCH_HEAD names no URL", "[git][integration]") {
  RepoFixture repo;
  repo.commit({{"a.yaml", "a: 1\n"}}, "first");
  repo.push();
  auto options = options_for(repo);
  sync_or_fail(options);
  CHECK(mode_of(options.cache_dir) == 0700);
  // libgit2 leaves an empty FETCH_HEAD; with update_fetchhead it would name the URL.
  const auto fetch_head = options.cache_dir / "repo.git/FETCH_HEAD";
  CHECK((!fs::exists(fetch_head) || slurp(fetch_head).find(repo.bare.string()) == std::string::npos));
}

TEST_CASE("git: the cache's lock is waited for up to the timeout, then an error", "[git][integration]") {
  RepoFixture repo;
  repo.commit({{"a.yaml", "a: 1\n"}}, "first");
  repo.push();
  auto options = options_for(repo);
  options.timeout = 1s;
  sync_or_fail(options);
  int fd = ::open((options.cache_dir / "lock").c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);  // another fetch holds it (flock locks are per open file)
  auto started = std::chrono::steady_clock::now();
  std::string error = sync_error(options);
  auto took = std::chrono::steady_clock::now() - started;
  ::close(fd);
  CHECK(error.find("is locked by another fetch; waited 1000 ms") != std::string::npos);
  CHECK(took >= 1s);
  CHECK(took < 3s);
  sync_or_fail(options);  // free again
}

TEST_CASE("git: a damaged cache is moved aside with a warning and cloned anew", "[git][integration]") {
  RepoFixture repo;
  auto sha = repo.commit({{"a.yaml", "a: 1\n"}}, "first");
  repo.push();
  auto options = options_for(repo);
  sync_or_fail(options);
  // Damage it: its object store replaced by a file (no longer a repository libgit2 opens).
  fs::remove_all(options.cache_dir / "repo.git/objects");
  { std::ofstream(options.cache_dir / "repo.git/objects") << "garbage"; }
  auto sync = sync_or_fail(options);
  CHECK(sync.revision.sha == sha);
  REQUIRE(sync.warnings.size() == 1);
  CHECK(sync.warnings.front().find("was damaged") != std::string::npos);
  CHECK(sync.warnings.front().find("moved aside to " + (options.cache_dir / "repo.git.damaged-").string()) !=
        std::string::npos);
  bool kept = false;
  for (const auto& e : fs::directory_iterator(options.cache_dir))
    kept = kept || e.path().filename().string().starts_with("repo.git.damaged-");
  CHECK(kept);
}

TEST_CASE("git: ref locks left by a killed fetch are removed under the cache's lock", "[git][integration]") {
  RepoFixture repo;
  repo.commit({{"a.yaml", "a: 1\n"}}, "first");
  repo.push();
  auto options = options_for(repo);
  sync_or_fail(options);
  auto second = repo.commit({{"a.yaml", "a: 2\n"}}, "second");
  repo.push();
  std::ofstream(options.cache_dir / "repo.git/refs/remotes/origin/main.lock") << "stale\n";
  CHECK(sync_or_fail(options).revision.sha == second);
}

TEST_CASE("git: is_git_url tells URLs from manifest directories", "[git]") {
  CHECK(is_git_url("file:///srv/git/manifests.git"));
  CHECK(is_git_url("https://github.com/org/manifests.git"));
  CHECK(is_git_url("http://git.internal/manifests"));
  CHECK(is_git_url("ssh://git@git.internal:2222/manifests.git"));
  CHECK(is_git_url("git://git.internal/manifests.git"));
  CHECK(is_git_url("git@github.com:org/manifests.git"));
  CHECK(is_git_url("deploy@10.0.0.5:manifests"));
  CHECK_FALSE(is_git_url("/srv/manifests"));
  CHECK_FALSE(is_git_url("./manifests"));
  CHECK_FALSE(is_git_url("manifests"));
  CHECK_FALSE(is_git_url("clusters/prod.yaml"));
  CHECK_FALSE(is_git_url("dir/user@host:path"));  // a relative path with '@' and ':' in it
  CHECK_FALSE(is_git_url("host:path"));            // scp-like needs a user
  CHECK_FALSE(is_git_url(""));

  // A local git repository is a directory, not a URL.
  RepoFixture repo;
  CHECK_FALSE(is_git_url(repo.work.string()));
  CHECK_FALSE(is_git_url(repo.bare.string()));
}

TEST_CASE("git: a local repository path works as a URL", "[git][integration]") {
  RepoFixture repo;
  const std::string sha = repo.commit({{"a.yaml", "1\n"}}, "first");
  repo.push();
  auto options = options_for(repo);
  options.url = repo.bare.string();
  auto sync = sync_or_fail(options);
  CHECK(sync.revision.sha == sha);
  CHECK(slurp(sync.checkout / "a.yaml") == "1\n");
}

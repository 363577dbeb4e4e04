#include <catch2/catch.hpp>

#include <algorithm>

#include "util/url_userinfo.hpp"

using pgc::redact_url;
using pgc::redact_urls_in;
using pgc::split_url_userinfo;

TEST_CASE("url userinfo: every credential goes; an ssh user name stays") {
  CHECK(redact_url("https://user:secret@host/r.git") == "https://host/r.git");
  CHECK(redact_url("https://ghp_TOKEN@github.com/org/r.git") == "https://github.com/org/r.git");
  CHECK(redact_url("https://user:se:cr@et@host:8443/r.git") == "https://host:8443/r.git");
  CHECK(redact_url("https://user:@host/r.git") == "https://host/r.git");
  CHECK(redact_url("http://u%40x:p%2Fw@host/r.git") == "http://host/r.git");
  CHECK(redact_url("https://host/a@b:c") == "https://host/a@b:c");  // '@' in the path is no userinfo
  CHECK(redact_url("https://host?x=a@b") == "https://host?x=a@b");
  CHECK(redact_url("ssh://git:pw@host:2222/r.git") == "ssh://git@host:2222/r.git");
  CHECK(redact_url("git+ssh://git:pw@host/r.git") == "git+ssh://git@host/r.git");
  CHECK(redact_url("ssh://:pw@host/r.git") == "ssh://host/r.git");
  CHECK(redact_url("git@github.com:org/repo.git") == "git@github.com:org/repo.git");
  CHECK(redact_url("file:///srv/git/r.git") == "file:///srv/git/r.git");
  CHECK(redact_url("/srv/manifests") == "/srv/manifests");
}

TEST_CASE("url userinfo: the parts, decoded, and the secrets to scrub") {
  auto u = split_url_userinfo("https://dep%40loy:p%3Ass@host/r.git");
  CHECK(u.user == "dep@loy");
  CHECK(u.password == "p:ss");
  CHECK(u.has_password);
  CHECK(u.bare == "https://host/r.git");
  auto secrets = u.secrets();
  for (const std::string s : {"dep%40loy:p%3Ass", "dep%40loy", "dep@loy", "p%3Ass", "p:ss"})
    CHECK(std::find(secrets.begin(), secrets.end(), s) != secrets.end());
  auto ssh = split_url_userinfo("ssh://git:pw@host/r.git");
  CHECK(ssh.ssh);
  CHECK(ssh.user == "git");
  CHECK(ssh.bare == "ssh://git@host/r.git");
  CHECK(ssh.secrets() == std::vector<std::string>{"pw"});  // the user is not a secret
}

TEST_CASE("url userinfo: URLs in running text and scrubbing") {
  CHECK(redact_urls_in("sources: https://a:b@h/r.git, /etc/x and ssh://git:pw@h2/r") ==
        "sources: https://h/r.git, /etc/x and ssh://git@h2/r");
  CHECK(redact_urls_in("\"https://TOKEN@h/r\" failed") == "\"https://h/r\" failed");
  CHECK(redact_urls_in("no url here: a@b") == "no url here: a@b");
  CHECK(redact_urls_in("://x@y") == "://x@y");
  CHECK(pgc::scrub("token s3cret and s3cret again", {"s3cret"}) == "token *** and *** again");
  CHECK(pgc::scrub("aaaa", {"a"}) == "************");
}

// The daemon's config file: the ssh settings (host key policy) as load_serve_config reads them.

#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "reconciler/serve.hpp"
#include "tests/support/temp_dir.hpp"

using pgc::NewHostKeys;
using pgc::reconciler::load_serve_config;
using pgc::test::TempDir;

namespace {

std::filesystem::path config_file(const TempDir& dir, const std::string& ssh) {
  auto path = dir.path() / "serve.yaml";
  std::ofstream(path) << "source: {url: /srv/manifests}\nstateDir: " << (dir.path() / "state").string() << "\n"
                      << "ssh: " << ssh << "\nlisten: \"\"\n";
  return path;
}

}  // namespace

TEST_CASE("serve config: unknown host keys are refused unless ssh.acceptNewHostKeys is true") {
  TempDir dir;
  auto strict = load_serve_config(config_file(dir, "{knownHosts: /etc/pgconverge/known_hosts}"));
  REQUIRE(strict);
  CHECK(strict->ssh.known_hosts_file == "/etc/pgconverge/known_hosts");
  CHECK(strict->ssh.new_host_keys == NewHostKeys::refuse);
  CHECK(strict->source.new_host_keys == NewHostKeys::refuse);

  auto accept =
      load_serve_config(config_file(dir, "{knownHosts: /etc/pgconverge/known_hosts, acceptNewHostKeys: true}"));
  REQUIRE(accept);
  CHECK(accept->ssh.new_host_keys == NewHostKeys::accept);
  CHECK(accept->source.new_host_keys == NewHostKeys::accept);  // the git source's ssh server too
  CHECK(accept->source.known_hosts == "/etc/pgconverge/known_hosts");

  auto off = load_serve_config(config_file(dir, "{acceptNewHostKeys: false}"));
  REQUIRE(off);
  CHECK(off->ssh.new_host_keys == NewHostKeys::refuse);
}

TEST_CASE("serve config: ssh.acceptNewHostKeys must be a boolean") {
  TempDir dir;
  auto file = config_file(dir, "{acceptNewHostKeys: \"yes\"}");
  auto r = load_serve_config(file);
  REQUIRE_FALSE(r);
  CHECK(r.error().message == file.string() + ": ssh.acceptNewHostKeys: must be true or false");

  auto typo = config_file(dir, "{acceptNewHostKey: true}");
  auto t = load_serve_config(typo);
  REQUIRE_FALSE(t);
  CHECK(t.error().message ==
        typo.string() + ": ssh.acceptNewHostKey: unknown field (did you mean 'acceptNewHostKeys'?)");
}

TEST_CASE("serve config: metricsListen, maxConnectionsPerAddress and webhooks[].minInterval") {
  TempDir dir;
  auto secret = dir.path() / "github.secret";
  std::ofstream(secret) << "0123456789abcdef0123456789abcdef\n";
  std::filesystem::permissions(secret, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto write = [&](const std::string& extra) {
    auto path = dir.path() / "serve.yaml";
    std::ofstream(path) << "source: {url: /srv/manifests}\nstateDir: " << (dir.path() / "state").string() << "\n"
                        << extra;
    return path;
  };
  auto defaults = load_serve_config(
      write("webhooks:\n  - {name: gh, kind: github, path: /hooks/gh, secretFile: " + secret.string() + "}\n"));
  REQUIRE(defaults);
  CHECK(defaults->listen == "127.0.0.1:9810");
  CHECK(defaults->metrics_listen.empty());
  CHECK(defaults->max_connections_per_address == 8);
  CHECK(defaults->webhooks.at(0).min_interval == std::chrono::seconds(5));

  auto set = load_serve_config(write("listen: 0.0.0.0:9810\nmetricsListen: 127.0.0.1:9811\nmaxConnectionsPerAddress: 32\n"
                                     "webhooks:\n  - {name: gh, kind: github, path: /hooks/gh, minInterval: 30s, secretFile: " +
                                     secret.string() + "}\n"));
  REQUIRE(set);
  CHECK(set->metrics_listen == "127.0.0.1:9811");
  CHECK(set->max_connections_per_address == 32);
  CHECK(set->webhooks.at(0).min_interval == std::chrono::seconds(30));

  auto file = write("listen: 127.0.0.1:9810\nmetricsListen: 127.0.0.1:9810\nmaxConnectionsPerAddress: 0\n"
                    "webhooks:\n  - {name: gh, kind: github, path: /hooks/gh, minInterval: 10ms, secretFile: " +
                    secret.string() + "}\n");
  auto bad = load_serve_config(file);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == file.string() + ": maxConnectionsPerAddress: must be 1 to 64 (the server holds 64 connections in all)\n" +
                                   file.string() + ": metricsListen: must differ from listen\n" + file.string() +
                                   ": webhooks[0].minInterval: must be at least 1000ms");
}

// PgBouncer and the Postgres exporter: validation (StackGres' blocklist), rendering, compile,
// the probe's role lines, SCRAM verifiers, secrets and the plan (reconciler/sidecars.cpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>

#include "core_fixtures.hpp"
#include "manifests_fixtures.hpp"
#include "providers/crypto/x509.hpp"
#include "reconciler/member_tls.hpp"
#include "reconciler/observe.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/plan_output.hpp"
#include "manifests/pool_roles.hpp"
#include "reconciler/sidecars.hpp"

using namespace pgc;
using namespace pgc::reconciler;
using Lines = std::vector<std::string>;
using json = nlohmann::json;

namespace {

// The valid lab of the manifests tests, with the cluster below (spec lines from 12 on).
const std::string k_cluster_head =
    "apiVersion: stackgres.io/v1\n"      // 1
    "kind: SGCluster\n"                  // 2
    "metadata:\n"                        // 3
    "  name: c\n"                        // 4
    "spec:\n"                            // 5
    "  postgres:\n"                      // 6
    "    version: '15'\n"                // 7
    "  instances: 2\n"                   // 8
    "  configurations:\n"                // 9
    "    sgPostgresConfig: pgconfig\n"   // 10
    "    sgPoolingConfig: poolconfig\n"; // 11

struct Loaded {
  manifests::LoadResult result;
  Lines printed;
};

Loaded load(const std::string& cluster_text, const std::string& extra_name = "", const std::string& extra = "") {
  testing::ManifestDir dir;
  dir.write("lab.yaml", testing::k_valid_lab);
  dir.write("c.yaml", cluster_text);
  if (!extra_name.empty()) dir.write(extra_name, extra);
  Loaded out;
  out.result = dir.load();
  out.printed = dir.printed(out.result);
  return out;
}

DesiredCluster compiled(const std::string& cluster_text) {
  auto loaded = load(cluster_text);
  for (const auto& line : loaded.printed) UNSCOPED_INFO(line);
  REQUIRE_FALSE(has_errors(loaded.result.diagnostics));
  auto result = compile(loaded.result.manifests);
  for (const auto& d : result.diagnostics) UNSCOPED_INFO(d.str());
  REQUIRE_FALSE(has_errors(result.diagnostics));
  REQUIRE(result.state.clusters.size() == 1);
  return result.state.clusters.front();
}

bool has(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

const ManagedService* service(const DesiredCluster& c, const std::string& unit) {
  for (const auto& s : c.services)
    if (s.unit == unit) return &s;
  return nullptr;
}

ClusterSecrets secrets_with_pooler() {
  auto s = testing::fixed_secrets();
  s.values[SecretKind::pgbouncer] = "POOLERsecret5";
  return s;
}

// A compiled two-member cluster with PgBouncer and the exporter, and hosts where Patroni runs
// as declared (members c-0 leader, c-1 replica) but nothing of the sidecars exists yet.
struct Fixture {
  DesiredCluster cluster = compiled(k_cluster_head + "  prometheusAutobind: true\n");
  ClusterSecrets secrets = secrets_with_pooler();
  manifests::ManifestSet manifests;
  ObservedState observed;

  Fixture() {
    // TLS as declared too: each member's files issued by the cluster's CA (member_tls_test).
    auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    auto ca = *providers::crypto::create_ca("pgconverge CA default/c", now - std::chrono::days{1},
                                            now + std::chrono::days{3650});
    secrets.ca_certificate_pem = ca.certificate_pem;
    for (const auto& m : cluster.members) {
      manifests::Host h;
      h.metadata.name = m.host;
      h.address = m.address;
      manifests.hosts.push_back(h);
      ObservedHost oh = testing::debian_host(m.host);
      for (const auto& p : cluster.packages) oh.packages[p] = true;
      oh.files[m.config_path] = config_text(m, secrets);
      oh.services[m.service] = "active";
      oh.service_enabled[m.service] = "enabled";
      oh.data_dirs[m.patroni_config["postgresql"]["data_dir"].get<std::string>()] = true;
      for (const auto& f : m.files) oh.files[f.path] = std::nullopt;
      auto tls = member_tls_content(cluster, m, &ca, now);
      REQUIRE(tls.has_value());
      oh.files[m.tls.certificate] = tls->certificate;
      oh.files[m.tls.private_key] = tls->private_key;
      oh.files[m.tls.ca] = tls->ca;
      for (const auto& s : cluster.services) {
        oh.services[s.unit] = "inactive";
        oh.service_enabled[s.unit] = "disabled";
      }
      observed.hosts[m.host] = oh;
    }
    ObservedCluster oc;
    oc.name = cluster.name;
    oc.api_reachable = true;
    oc.dcs_config = cluster.dynamic_config;
    for (std::size_t i = 0; i < cluster.members.size(); ++i) {
      ObservedMember om;
      om.name = cluster.members[i].name;
      om.host = cluster.members[i].address;
      om.role = i == 0 ? "leader" : "sync_standby";
      om.state = i == 0 ? "running" : "streaming";
      om.tags = {{"nofailover", false}, {"noloadbalance", false}};
      oc.members.push_back(om);
    }
    observed.clusters[cluster.name] = oc;
  }

  // Every sidecar as declared: files written, services running, roles present.
  void converge() {
    for (const auto& m : cluster.members) {
      auto& oh = observed.hosts[m.host];
      for (const auto& f : m.files) oh.files[f.path] = managed_file_text(f, secrets);
      for (const auto& s : cluster.services) {
        oh.services[s.unit] = s.wanted ? "active" : "inactive";
        oh.service_enabled[s.unit] = s.wanted ? "enabled" : "disabled";
      }
      ObservedRole authenticator{true, false, {}, scram_verifier("POOLERsecret5", "0123456789abcdef"), true};
      ObservedRole monitor{true, false, {"pg_monitor"}, "", false};
      oh.roles["authenticator"] = authenticator;
      oh.roles["prometheus"] = monitor;
    }
  }

  ClusterPlan plan() {
    DesiredState desired;
    desired.clusters.push_back(cluster);
    auto p = diff(manifests, desired, observed, {{cluster.name, secrets}});
    REQUIRE(p.clusters.size() == 1);
    for (const auto& e : p.clusters[0].errors) UNSCOPED_INFO(e);
    REQUIRE(p.clusters[0].errors.empty());
    return p.clusters[0];
  }
};

std::vector<std::string> summary(const ClusterPlan& p) {
  std::vector<std::string> out;
  for (const auto& c : p.changes) {
    std::string line = to_string(c.step) + " " + (c.member.empty() ? c.cluster : c.member);
    if (const auto* file = std::get_if<steps::WriteFile>(&c.step)) line += " " + file->path;
    if (const auto* service = std::get_if<steps::Service>(&c.step))
      line += " " + to_string(service->action) + " " + service->unit;
    out.push_back(line);
  }
  return out;
}

}  // namespace

TEST_CASE("sidecars: StackGres' PgBouncer blocklist is an error at the parameter's line", "[sidecars]") {
  const std::string pool =
      "apiVersion: stackgres.io/v1\n"  // 1
      "kind: SGPoolingConfig\n"        // 2
      "metadata:\n"                    // 3
      "  name: pool2\n"                // 4
      "spec:\n"                        // 5
      "  pgBouncer:\n"                 // 6
      "    pgbouncer.ini:\n"           // 7
      "      pgbouncer:\n"             // 8
      "        listen_port: '7432'\n"  // 9
      "        auth_type: trust\n"     // 10
      "        pool_mode: sessions\n"  // 11
      "        max_client_conn: '50'\n";  // 12: allowed
  auto loaded = load(k_cluster_head, "p.yaml", pool);
  CHECK(loaded.printed ==
        Lines{"p.yaml:9:9: spec.pgBouncer.pgbouncer.ini.pgbouncer.listen_port: is managed by pgconverge and may not be "
              "set (StackGres' PgBouncer blocklist)",
              "p.yaml:10:9: spec.pgBouncer.pgbouncer.ini.pgbouncer.auth_type: is managed by pgconverge and may not be "
              "set (StackGres' PgBouncer blocklist)",
              "p.yaml:11:9: spec.pgBouncer.pgbouncer.ini.pgbouncer.pool_mode: must be one of session, transaction or "
              "statement (got \"sessions\")"});
  CHECK(manifests::pgbouncer_blocklist().size() == 53);  // StackGres' 52 and resolv_conf (a file PgBouncer reads)
  CHECK(manifests::pgbouncer_blocklist().contains("admin_users"));
  CHECK_FALSE(manifests::pgbouncer_blocklist().contains("pool_mode"));
}

TEST_CASE("sidecars: prometheusAutobind is honoured, not ignored", "[sidecars]") {
  auto loaded = load(k_cluster_head + "  prometheusAutobind: true\n");
  CHECK(loaded.printed.empty());
  REQUIRE(loaded.result.manifests.clusters.size() == 1);
  CHECK(loaded.result.manifests.clusters[0].prometheus_autobind == std::optional<bool>(true));
  auto typo = load(k_cluster_head + "  prometheusAutobind: 'yes'\n");
  REQUIRE(typo.printed.size() == 1);
  CHECK(typo.printed[0].starts_with("c.yaml:12:3: spec.prometheusAutobind: must be a boolean"));
}

TEST_CASE("sidecars: pgbouncer.ini has StackGres' sections, its defaults, the manifest's values and ours", "[sidecars]") {
  manifests::SGPoolingConfig pool;
  pool.metadata.name = "poolconfig1";
  pool.metadata.namespace_ = "failover";
  pool.pgbouncer = {{"pool_mode", "transaction"}, {"default_pool_size", "80"}, {"listen_port", "1"}};
  pool.databases = {{"app", "dbname=app pool_size=10"}};
  pool.users = {{"alice", "pool_mode=session"}};
  auto rendered = render_pgbouncer_ini(&pool, "10.0.0.11");
  REQUIRE(rendered);
  const std::string& ini = *rendered;
  CHECK(ini ==
        "# Managed by pgconverge from SGPoolingConfig failover/poolconfig1: local edits are reverted on the next apply.\n"
        "[databases]\n"
        "app = dbname=app pool_size=10\n"
        "* = host=/var/run/postgresql port=5432\n"
        "\n"
        "[users]\n"
        "alice = pool_mode=session\n"
        "\n"
        "[pgbouncer]\n"
        "admin_users = pgbouncer_admin\n"
        "application_name_add_host = 1\n"
        "auth_file = /etc/pgbouncer/userlist.txt\n"
        "auth_query = SELECT usename, passwd FROM pgconverge.pgbouncer_lookup($1)\n"
        "auth_type = md5\n"
        "auth_user = authenticator\n"
        "default_pool_size = 80\n"
        "ignore_startup_parameters = extra_float_digits\n"
        "listen_addr = 10.0.0.11,127.0.0.1\n"
        "listen_port = 6432\n"
        "max_client_conn = 1000\n"
        "max_db_connections = 0\n"
        "max_user_connections = 0\n"
        "pool_mode = transaction\n"
        "server_check_query = ;\n"
        "stats_users = pgbouncer_stats\n"
        "unix_socket_dir = /var/run/postgresql\n");
  // Without an SGPoolingConfig: StackGres' defaults (session pooling), no [users].
  auto plain = ini_entries(render_pgbouncer_ini(nullptr, "fd00::11").value());
  CHECK(plain.at("pgbouncer.pool_mode") == "session");
  CHECK(plain.at("pgbouncer.default_pool_size") == "1000");
  CHECK(plain.at("pgbouncer.listen_addr") == "fd00::11,127.0.0.1");
  CHECK(plain.at("databases.*") == "host=/var/run/postgresql port=5432");
  CHECK_FALSE(plain.contains("users.alice"));
}

TEST_CASE("sidecars: the exporter's defaults file: peer login as prometheus, the host's address, port 9187", "[sidecars]") {
  auto entries = ini_entries(render_exporter_defaults("10.0.0.12"));
  CHECK(entries.at("DATA_SOURCE_NAME") == "user=prometheus host=/var/run/postgresql port=5432 dbname=postgres sslmode=disable");
  CHECK(entries.at("ARGS") == "--web.listen-address=10.0.0.12:9187");
  CHECK(ini_entries(render_exporter_defaults("fd00::12")).at("ARGS") == "--web.listen-address=[fd00::12]:9187");
}

TEST_CASE("sidecars: compile adds packages, services, roles, files and pg_hba lines", "[sidecars]") {
  auto c = compiled(k_cluster_head + "  prometheusAutobind: true\n");
  CHECK(has(c.packages, "pgbouncer"));
  CHECK(has(c.packages, "prometheus-postgres-exporter"));
  REQUIRE(service(c, "pgbouncer.service"));
  CHECK(service(c, "pgbouncer.service")->wanted);
  REQUIRE(service(c, "prometheus-postgres-exporter.service"));
  CHECK(service(c, "prometheus-postgres-exporter.service")->wanted);
  REQUIRE(c.roles.size() == 2);
  CHECK(c.roles[0].name == "authenticator");
  CHECK_FALSE(c.roles[0].superuser);
  CHECK(c.roles[0].password == std::optional<SecretKind>(SecretKind::pgbouncer));
  CHECK(c.roles[1].name == "prometheus");
  CHECK(c.roles[1].member_of == std::vector<std::string>{"pg_monitor"});
  CHECK_FALSE(c.roles[1].password);
  for (const auto& m : c.members) {
    REQUIRE(m.files.size() == 3);
    CHECK(m.files[0].path == "/etc/pgbouncer/pgbouncer.ini");
    CHECK(ini_entries(m.files[0].content).at("pgbouncer.listen_addr") == m.address + ",127.0.0.1");
    CHECK(ini_entries(m.files[0].content).at("pgbouncer.max_client_conn") == "200");  // the lab's poolconfig
    CHECK(m.files[0].mode == 0640);
    CHECK(m.files[0].group == "postgres");
    CHECK(m.files[1].path == "/etc/pgbouncer/userlist.txt");
    CHECK(m.files[1].content == "\"authenticator\" \"secret:pgbouncer\"\n");  // a reference, never the value
    CHECK(m.files[1].secret == std::optional<SecretKind>(SecretKind::pgbouncer));
    CHECK(m.files[2].path == "/etc/default/prometheus-postgres-exporter");
    CHECK_FALSE(m.files[2].service_reloads);
  }
  auto hba = c.dynamic_config["postgresql"]["pg_hba"];
  REQUIRE(hba.size() > 4);
  CHECK(hba[0] == "local all postgres peer");
  CHECK(hba[1] == "local all prometheus peer");
  CHECK(hba[2] == "local all all scram-sha-256");
  CHECK(hba[3] == "host all authenticator all reject");
  CHECK(c.members[0].patroni_config["bootstrap"]["pg_hba"] == hba);

  SECTION("disableConnectionPooling: no PgBouncer, and a running one is stopped") {
    auto d = compiled(k_cluster_head + "  pods:\n    disableConnectionPooling: true\n");
    CHECK_FALSE(has(d.packages, "pgbouncer"));
    REQUIRE(service(d, "pgbouncer.service"));
    CHECK_FALSE(service(d, "pgbouncer.service")->wanted);
    CHECK(d.members[0].files.empty());
    CHECK(d.roles.empty());
    CHECK(d.dynamic_config["postgresql"]["pg_hba"][1] != "local all all scram-sha-256");
  }
  SECTION("prometheusAutobind: false stops the exporter, absent leaves it alone") {
    auto off = compiled(k_cluster_head + "  prometheusAutobind: false\n");
    CHECK_FALSE(has(off.packages, "prometheus-postgres-exporter"));
    REQUIRE(service(off, "prometheus-postgres-exporter.service"));
    CHECK_FALSE(service(off, "prometheus-postgres-exporter.service")->wanted);
    CHECK(off.members[0].files.size() == 2);
    auto absent = compiled(k_cluster_head);
    CHECK_FALSE(service(absent, "prometheus-postgres-exporter.service"));
    auto disabled = compiled(k_cluster_head + "  prometheusAutobind: true\n  pods:\n    disableMetricsExporter: true\n");
    REQUIRE(service(disabled, "prometheus-postgres-exporter.service"));
    CHECK_FALSE(service(disabled, "prometheus-postgres-exporter.service")->wanted);
  }
}

TEST_CASE("sidecars: SCRAM-SHA-256 verifiers as PostgreSQL stores them", "[sidecars]") {
  // Computed independently (Python's hashlib.pbkdf2_hmac, hmac) for "pencil" and salt 00..0f.
  const std::string expected =
      "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+E4U/QApd/5Y=:"
      "dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE=";
  std::string salt;
  for (int i = 0; i < 16; ++i) salt += static_cast<char>(i);
  CHECK(scram_verifier("pencil", salt) == expected);
  CHECK(scram_matches(expected, "pencil"));
  CHECK_FALSE(scram_matches(expected, "pencil2"));
  CHECK_FALSE(scram_matches("md5abcdef", "pencil"));
  CHECK_FALSE(scram_matches("SCRAM-SHA-256$x:AA==$a:b", "pencil"));
  CHECK_FALSE(scram_matches("", "pencil"));
}

TEST_CASE("sidecars: roles SQL carries a verifier of the secret, never the secret", "[sidecars]") {
  auto secrets = secrets_with_pooler();
  std::vector<ManagedRole> roles{{"authenticator", SecretKind::pgbouncer, false, {}},
                                 {"prometheus", std::nullopt, false, {"pg_monitor"}}};
  auto sql = roles_sql(roles, secrets);
  CHECK(sql.find("POOLERsecret5") == std::string::npos);
  CHECK(sql.find("ALTER ROLE \"authenticator\" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION "
                 "PASSWORD 'SCRAM-SHA-256$4096:") != std::string::npos);
  CHECK(sql.find("GRANT \"pg_monitor\" TO \"prometheus\";") != std::string::npos);
  CHECK(sql.find("SET log_min_error_statement = 'panic';") != std::string::npos);
  auto start = sql.find("'SCRAM-SHA-256$");
  auto verifier = sql.substr(start + 1, sql.find('\'', start + 1) - start - 1);
  CHECK(scram_matches(verifier, "POOLERsecret5"));
}

TEST_CASE("sidecars: the host probe asks for roles and reads their lines", "[sidecars][observe]") {
  DesiredState desired;
  desired.clusters.push_back(compiled(k_cluster_head + "  prometheusAutobind: true\n"));
  auto probe = probe_for(desired);
  CHECK(probe.roles == std::vector<std::string>{"authenticator", "prometheus"});
  CHECK(has(probe.files, "/etc/pgbouncer/userlist.txt"));
  CHECK(has(probe.services, "pgbouncer.service"));
  CHECK(has(probe.packages, "prometheus-postgres-exporter"));
  auto args = host_probe_args(probe);
  const std::vector<std::string> pair{"role", "authenticator"};
  CHECK(std::search(args.begin(), args.end(), pair.begin(), pair.end()) != args.end());
  auto parsed = parse_host_probe("h1", "role authenticator 1 1 - 1 SCRAM-SHA-256$4096:AA==$b:c\n"
                                       "role prometheus 1 0 pg_monitor,pg_read_all_stats 0 -\n"
                                       "role other 0\nend\n");
  REQUIRE(parsed);
  REQUIRE(parsed->roles.size() == 3);
  CHECK(parsed->roles["authenticator"].superuser);
  CHECK(parsed->roles["authenticator"].password == "SCRAM-SHA-256$4096:AA==$b:c");
  CHECK(parsed->roles["authenticator"].lookup);
  CHECK_FALSE(parsed->roles["prometheus"].lookup);
  CHECK(parsed->roles["prometheus"].member_of == std::vector<std::string>{"pg_monitor", "pg_read_all_stats"});
  CHECK(parsed->roles["prometheus"].password.empty());
  CHECK_FALSE(parsed->roles["other"].exists);
  CHECK_FALSE(parse_host_probe("h1", "role authenticator 1\nend\n"));
}

TEST_CASE("sidecars: secrets: the pooler's is added to an older state file, or read back from userlist.txt", "[sidecars][secrets]") {
  auto old = testing::fixed_secrets();
  CHECK(old.complete());
  CHECK(add_missing_secrets(old));
  CHECK(old.get(SecretKind::pgbouncer).size() == 32);
  CHECK_FALSE(add_missing_secrets(old));
  CHECK(generate_secrets().values.size() == 5);

  Fixture f;
  auto lost = testing::fixed_secrets();
  f.observed.hosts[f.cluster.members[1].host].files["/etc/pgbouncer/userlist.txt"] = "\"authenticator\" \"Kept0nHost\"\n";
  recover_sidecar_secrets(f.cluster, f.observed.hosts, lost);
  CHECK(lost.get(SecretKind::pgbouncer) == "Kept0nHost");
}

TEST_CASE("sidecars: plan from nothing: files, then roles, then services; then nothing", "[sidecars][plan]") {
  Fixture f;
  auto p = f.plan();
  CHECK(summary(p) == Lines{"write-file c-0 /etc/pgbouncer/pgbouncer.ini",
                            "write-file c-0 /etc/pgbouncer/userlist.txt",
                            "write-file c-0 /etc/default/prometheus-postgres-exporter",
                            "write-file c-1 /etc/pgbouncer/pgbouncer.ini",
                            "write-file c-1 /etc/pgbouncer/userlist.txt",
                            "write-file c-1 /etc/default/prometheus-postgres-exporter",
                            "ensure-roles c",
                            // Written just now: restarted (a package's postinst may run Debian's config).
                            "service c-0 restart pgbouncer.service",
                            "service c-0 restart prometheus-postgres-exporter.service",
                            "service c-1 restart pgbouncer.service",
                            "service c-1 restart prometheus-postgres-exporter.service"});
  CHECK(p.changes[1].after == "(holds a secret: content not shown)");
  CHECK(p.changes[6].reason == "authenticator: not observed (no member's PostgreSQL answered); "
                               "prometheus: not observed (no member's PostgreSQL answered)");
  CHECK(std::get<steps::Service>(p.changes[7].step).enable);

  f.converge();
  CHECK(summary(f.plan()).empty());
}

TEST_CASE("sidecars: the packages come first, with the cluster's other packages", "[sidecars][plan]") {
  Fixture f;
  for (auto& [name, h] : f.observed.hosts) {
    h.packages["pgbouncer"] = false;
    h.packages["prometheus-postgres-exporter"] = false;
  }
  DesiredState desired;
  desired.clusters.push_back(f.cluster);
  auto p = diff(f.manifests, desired, f.observed, {{f.cluster.name, f.secrets}});
  REQUIRE(p.host_changes.size() == 2);
  for (const auto& c : p.host_changes) {
    CHECK(is<steps::InstallPackages>(c.step));
    CHECK(std::get<steps::InstallPackages>(c.step).packages == std::vector<std::string>{"pgbouncer", "prometheus-postgres-exporter"});
  }
}

TEST_CASE("sidecars: plan corrects drift: reload for pool settings, restart for where PgBouncer listens", "[sidecars][plan]") {
  Fixture f;
  f.converge();
  auto& h1 = f.observed.hosts[f.cluster.members[0].host];
  auto& h2 = f.observed.hosts[f.cluster.members[1].host];
  const std::string ini = *h1.files["/etc/pgbouncer/pgbouncer.ini"];
  auto replace = [](std::string text, const std::string& from, const std::string& to) {
    auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    return text.replace(pos, from.size(), to);
  };
  h1.files["/etc/pgbouncer/pgbouncer.ini"] = replace(ini, "max_client_conn = 200", "max_client_conn = 5");
  h2.files["/etc/pgbouncer/pgbouncer.ini"] =
      replace(*h2.files["/etc/pgbouncer/pgbouncer.ini"], "listen_port = 6432", "listen_port = 7777");
  auto p = f.plan();
  CHECK(summary(p) == Lines{"write-file c-0 /etc/pgbouncer/pgbouncer.ini", "write-file c-1 /etc/pgbouncer/pgbouncer.ini",
                            "service c-0 reload pgbouncer.service", "service c-1 restart pgbouncer.service"});
  REQUIRE(p.changes[0].fields.size() == 1);
  CHECK(p.changes[0].fields[0].key == "pgbouncer.max_client_conn");
  CHECK(p.changes[0].fields[0].before == "5");
  CHECK(p.changes[0].fields[0].after == "200");
  CHECK(p.changes[1].reason == "drift in pgbouncer.listen_port");
}

TEST_CASE("sidecars: a changed secret file reloads PgBouncer and never shows the secret", "[sidecars][plan]") {
  Fixture f;
  f.converge();
  f.observed.hosts[f.cluster.members[0].host].files["/etc/pgbouncer/userlist.txt"] = "\"authenticator\" \"old\"\n";
  // The role's password differs too (someone changed it).
  f.observed.hosts[f.cluster.members[0].host].roles["authenticator"].password = scram_verifier("old", "saltsaltsaltsalt");
  f.observed.hosts[f.cluster.members[1].host].roles["authenticator"].password = scram_verifier("old", "saltsaltsaltsalt");
  auto p = f.plan();
  CHECK(summary(p) == Lines{"write-file c-0 /etc/pgbouncer/userlist.txt", "ensure-roles c",
                            "service c-0 reload pgbouncer.service"});
  CHECK(p.changes[1].reason == "authenticator: password differs from the one pgconverge keeps");
  Plan whole;
  whole.clusters.push_back(p);
  std::ostringstream text;
  print_plan(whole, text);
  CHECK(text.str().find("POOLERsecret5") == std::string::npos);
  CHECK(text.str().find("\"old\"") == std::string::npos);
  CHECK(text.str().find("/etc/pgbouncer/userlist.txt") != std::string::npos);
}

TEST_CASE("sidecars: a role without pg_monitor, a stopped service, a service not enabled", "[sidecars][plan]") {
  Fixture f;
  f.converge();
  for (auto& [name, h] : f.observed.hosts) h.roles["prometheus"].member_of.clear();
  f.observed.hosts[f.cluster.members[0].host].services["pgbouncer.service"] = "failed";
  f.observed.hosts[f.cluster.members[1].host].service_enabled["prometheus-postgres-exporter.service"] = "disabled";
  auto p = f.plan();
  CHECK(summary(p) == Lines{"ensure-roles c", "service c-0 start pgbouncer.service",
                            "service c-1 enable prometheus-postgres-exporter.service"});
  CHECK(p.changes[0].reason == "prometheus: not a member of pg_monitor");
  CHECK(p.changes[1].reason == "service failed");
}

TEST_CASE("sidecars: prometheusAutobind turned off stops and disables the exporter, nothing else", "[sidecars][plan]") {
  Fixture f;
  f.converge();
  f.cluster = compiled(k_cluster_head + "  prometheusAutobind: false\n");
  auto p = f.plan();
  // pg_hba loses the exporter's line (one DCS patch), the exporter stops on each member.
  std::vector<std::string> services;
  for (const auto& c : p.changes)
    if (is<steps::Service>(c.step)) services.push_back(c.member + " " + to_string(std::get<steps::Service>(c.step).action) + " " +
                                                    std::get<steps::Service>(c.step).unit);
  CHECK(services == Lines{"c-0 stop prometheus-postgres-exporter.service", "c-1 stop prometheus-postgres-exporter.service"});
  CHECK(std::none_of(p.changes.begin(), p.changes.end(), [](const Change& c) { return is<steps::WriteFile>(c.step); }));
  for (auto& [name, h] : f.observed.hosts) {
    h.services["prometheus-postgres-exporter.service"] = "inactive";
    h.service_enabled["prometheus-postgres-exporter.service"] = "disabled";
  }
  f.observed.clusters["c"].dcs_config = f.cluster.dynamic_config;
  CHECK(summary(f.plan()).empty());
}

namespace {

// A RemoteHost that records what apply asks of it; every command succeeds.
struct RecordingHost final : providers::RemoteHost {
  struct Call {
    std::string kind;
    std::vector<std::string> argv;
    std::string input;
  };
  std::vector<Call> calls;

  [[nodiscard]] std::string describe() const override { return "pg-1 (10.0.0.11)"; }
  Result<providers::CommandResult> run(const std::vector<std::string>& argv, std::chrono::milliseconds) override {
    calls.push_back({"run", argv, ""});
    return providers::CommandResult{0, "", ""};
  }
  Result<providers::CommandResult> run_with_input(const std::vector<std::string>& argv, const std::string& input,
                                                  std::chrono::milliseconds) override {
    calls.push_back({"run_with_input", argv, input});
    return providers::CommandResult{0, "", ""};
  }
  Result<providers::CommandResult> run_script(const std::string& script, const std::vector<std::string>& args,
                                              std::chrono::milliseconds) override {
    std::vector<std::string> argv{script};
    argv.insert(argv.end(), args.begin(), args.end());
    calls.push_back({"run_script", argv, ""});
    return providers::CommandResult{0, "", ""};
  }
  Result<std::optional<std::string>> read_file(const std::string& path) override {
    calls.push_back({"read_file", {path}, ""});
    return std::optional<std::string>();
  }
  Result<void> write_file(const std::string& path, const std::string& content, const providers::FileMode&) override {
    calls.push_back({"write_file", {path}, content});
    return {};
  }
  Result<void> make_directory(const std::string& path, const providers::FileMode& mode,
                              ExistingDirectory existing) override {
    calls.push_back({"make_directory",
                     {path, mode.owner, mode.group, std::to_string(mode.mode),
                      existing == ExistingDirectory::keep ? "keep" : "owned"},
                     ""});
    return {};
  }
};

}  // namespace

TEST_CASE("sidecars: the roles SQL reaches psql on stdin, never as a file on the host", "[sidecars][apply]") {
  // A file in postgres' home is one the postgres user can swap for a link: root would write
  // the verifiers through it. No file, no secret on the command line.
  auto secrets = secrets_with_pooler();
  ManagedRole pooler;
  pooler.name = "authenticator";
  pooler.password = SecretKind::pgbouncer;
  RecordingHost host;
  REQUIRE(ensure_roles(host, {pooler}, secrets));
  // The roles first; then (the pooler's role is among them) its lookup function, whose SQL holds no secret.
  REQUIRE(host.calls.size() == 2);
  for (const auto& c : host.calls) CHECK(c.kind != "write_file");
  CHECK(host.calls.back().kind == "run_script");
  for (const auto& word : host.calls.back().argv) CHECK(word.find("SCRAM-SHA-256") == std::string::npos);
  const auto& call = host.calls.front();
  CHECK(call.kind == "run_with_input");
  CHECK(std::find(call.argv.begin(), call.argv.end(), "psql") != call.argv.end());
  CHECK(std::find(call.argv.begin(), call.argv.end(), "-f") == call.argv.end());
  for (const auto& word : call.argv) CHECK(word.find("SCRAM-SHA-256") == std::string::npos);
  CHECK(call.input.find("ALTER ROLE \"authenticator\" WITH LOGIN") != std::string::npos);
  CHECK(call.input.find("POOLERsecret5") == std::string::npos);
}

TEST_CASE("sidecars: a managed file's directory is created, never re-owned", "[sidecars][apply]") {
  Fixture f;
  const auto& file = f.cluster.members.front().files.front();
  RecordingHost host;
  REQUIRE(write_managed_file(host, file, f.secrets));
  REQUIRE(host.calls.size() == 2);
  auto dir = file.path.substr(0, file.path.rfind('/'));
  CHECK(host.calls[0].kind == "make_directory");
  CHECK(host.calls[0].argv == std::vector<std::string>{dir, "root", "root", std::to_string(0755), "keep"});
  CHECK(host.calls[1].kind == "write_file");
  CHECK(host.calls[1].argv == std::vector<std::string>{file.path});
}

TEST_CASE("sidecars: PgBouncer's auth_user is no superuser: it looks passwords up through a SECURITY DEFINER function",
          "[sidecars][security]") {
  auto rendered = render_pgbouncer_ini(nullptr, "10.0.0.11");
  REQUIRE(rendered);
  const std::string& ini = *rendered;
  CHECK(ini.find("pg_shadow") == std::string::npos);
  CHECK(ini.find("auth_query = SELECT usename, passwd FROM pgconverge.pgbouncer_lookup($1)\n") != std::string::npos);
  auto sql = pgbouncer_lookup_sql();
  CHECK(sql.find("SECURITY DEFINER SET search_path = pg_catalog, pg_temp") != std::string::npos);
  CHECK(sql.find("REVOKE ALL ON FUNCTION pgconverge.pgbouncer_lookup(text) FROM PUBLIC;") != std::string::npos);
  CHECK(sql.find("GRANT EXECUTE ON FUNCTION pgconverge.pgbouncer_lookup(text) TO \"authenticator\";") != std::string::npos);
  CHECK(sql.find("REVOKE ALL ON SCHEMA pgconverge FROM PUBLIC;") != std::string::npos);
  // The lookup answers for no superuser and none of pgconverge's own roles.
  CHECK(sql.find("AND NOT s.usesuper") != std::string::npos);
  for (const auto& role : {"'replicator'", "'rewind_user'", "'authenticator'", "'prometheus'"})
    CHECK(sql.find(role) != std::string::npos);
  // A schema of that name someone else owns is refused rather than trusted.
  CHECK(sql.find("not owned by a superuser") != std::string::npos);
}

TEST_CASE("sidecars: an older cluster's superuser authenticator is demoted as a planned change", "[sidecars][security]") {
  Fixture f;
  f.converge();
  CHECK(summary(f.plan()).empty());
  for (auto& [name, h] : f.observed.hosts) h.roles["authenticator"].superuser = true;
  auto p = f.plan();
  CHECK(summary(p) == Lines{"ensure-roles c"});
  CHECK(p.changes[0].reason == "authenticator: a superuser (pgconverge keeps it NOSUPERUSER)");
  auto sql = roles_sql(f.cluster.roles, f.secrets);
  CHECK(sql.find("ALTER ROLE \"authenticator\" WITH LOGIN NOSUPERUSER") != std::string::npos);
  CHECK(sql.find(" SUPERUSER") == std::string::npos);

  f.converge();
  for (auto& [name, h] : f.observed.hosts) h.roles["authenticator"].lookup = false;
  p = f.plan();
  CHECK(summary(p) == Lines{"ensure-roles c"});
  CHECK(p.changes[0].reason == "authenticator: cannot run PgBouncer's lookup function");
}

TEST_CASE("sidecars: every role the compiled cluster logs in as is one a pool may not name", "[sidecars][security]") {
  auto c = compiled(k_cluster_head + "  prometheusAutobind: true\n");
  std::vector<std::string> names;
  for (const auto& r : c.roles) names.push_back(r.name);
  for (const auto* section : {"superuser", "replication", "rewind"})
    names.push_back(c.members.at(0).patroni_config["postgresql"]["authentication"][section]["username"].get<std::string>());
  for (const auto& name : names) {
    INFO(name);
    CHECK(manifests::is_pgconverge_role(name));
  }
}

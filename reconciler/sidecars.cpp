// PgBouncer and the Postgres exporter on every member host (see sidecars.hpp).
#include "reconciler/sidecars.hpp"

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "manifests/loader.hpp"
#include "manifests/pool_roles.hpp"
#include "providers/crypto/crypto.hpp"
#include "reconciler/pgbouncer_ini.hpp"
#include "util/base64.hpp"
#include "util/net_address.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

using json = nlohmann::json;

constexpr const char* k_socket_dir = "/var/run/postgresql";
constexpr int k_postgres_port = 5432;
constexpr const char* k_not_shown = "(holds a secret: content not shown)";
constexpr auto k_sidecar_command_timeout = std::chrono::seconds(60);
// Where ensure_roles stages its SQL (postgres' home, 0600): never on a command line.

// StackGres' defaults for what an SGPoolingConfig leaves out (pgbouncer-default-values).
const std::map<std::string, std::string>& pgbouncer_defaults() {
  static const std::map<std::string, std::string> defaults{
      {"pool_mode", "session"},         {"max_client_conn", "1000"},  {"default_pool_size", "1000"},
      {"max_db_connections", "0"},      {"max_user_connections", "0"},
      {"ignore_startup_parameters", "extra_float_digits"}};
  return defaults;
}

std::string member_subject(const DesiredMember& m) { return "member " + m.name + " (" + m.host + ")"; }

// Why an observed role differs from the declared one, or "" when it matches. verified caches
// SCRAM checks by verifier (every member reports the same one).
std::string role_difference(const ManagedRole& role, const ObservedRole& seen, const ClusterSecrets& secrets,
                            std::map<std::string, bool>& verified) {
  if (!seen.exists) return "absent";
  if (role.superuser && !seen.superuser) return "not a superuser";
  if (!role.superuser && seen.superuser) return "a superuser (pgconverge keeps it NOSUPERUSER)";
  if (role.name == k_pgbouncer_auth_user && !seen.lookup) return "cannot run PgBouncer's lookup function";
  for (const auto& group : role.member_of)
    if (std::find(seen.member_of.begin(), seen.member_of.end(), group) == seen.member_of.end())
      return "not a member of " + group;
  if (role.password) {
    auto it = verified.find(seen.password);
    if (it == verified.end())
      it = verified.emplace(seen.password, scram_matches(seen.password, secrets.get(*role.password))).first;
    if (!it->second) return "password differs from the one pgconverge keeps";
  }
  return "";
}

std::string quote_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// Role names are pgconverge's constants; quoted as identifiers all the same.
std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

bool pooling_enabled(const manifests::SGCluster& cluster) {
  return !cluster.sg_pooling_config.empty() && !cluster.disable_connection_pooling;
}

std::optional<bool> exporter_wanted(const manifests::SGCluster& cluster) {
  if (cluster.disable_metrics_exporter) return false;
  return cluster.prometheus_autobind;
}

std::vector<std::string> sidecar_hba_lines(const manifests::SGCluster& cluster) {
  std::vector<std::string> lines;
  if (exporter_wanted(cluster).value_or(false))
    lines.push_back(std::string("local all ") + k_exporter_role + " peer");
  if (pooling_enabled(cluster)) {
    // PgBouncer (as the OS user postgres) reaches PostgreSQL over the socket as its auth_user and
    // then as each client's role, with the SCRAM secret auth_query read.
    lines.emplace_back("local all all scram-sha-256");
    // Only PgBouncer, over the socket, logs in as its auth_user (a plain role that may only run
    // the lookup function).
    lines.push_back(std::string("host all ") + k_pgbouncer_auth_user + " all reject");
  }
  return lines;
}

Result<std::string> render_pgbouncer_ini(const manifests::SGPoolingConfig* pooling, const std::string& address) {
  // Spaces and tabs around a value are dropped, as PgBouncer drops them; a line break is not
  // (the read-back below refuses it).
  auto blank_trimmed = [](const std::string& text) {
    auto first = text.find_first_not_of(" \t");
    if (first == std::string::npos) return std::string();
    return text.substr(first, text.find_last_not_of(" \t") - first + 1);
  };
  std::map<std::string, std::string> params = pgbouncer_defaults();
  if (pooling)
    for (const auto& [key, value] : pooling->pgbouncer)
      if (!manifests::pgbouncer_blocklist().contains(lower(key))) params[key] = blank_trimmed(value);
  // What pgconverge sets (the blocklist keeps the manifest from setting it).
  std::string listen = address;
  if (address != "127.0.0.1") listen += ",127.0.0.1";
  const std::vector<std::pair<std::string, std::string>> owned{
      {"listen_addr", listen},
      {"listen_port", std::to_string(k_pgbouncer_port)},
      {"unix_socket_dir", k_socket_dir},
      {"auth_file", k_pgbouncer_userlist},
      {"auth_type", "md5"},  // a SCRAM secret from auth_query makes PgBouncer use SCRAM
      {"auth_user", k_pgbouncer_auth_user},
      {"auth_query", k_pgbouncer_auth_query},
      {"admin_users", "pgbouncer_admin"},
      {"stats_users", "pgbouncer_stats"},
      {"application_name_add_host", "1"},
      {"server_check_query", ";"},
  };
  for (const auto& [key, value] : owned) params[key] = value;

  std::vector<IniEntry> entries;
  std::ostringstream out;
  out << "# Managed by pgconverge";
  if (pooling) out << " from SGPoolingConfig " << pooling->metadata.namespace_ << "/" << pooling->metadata.name;
  out << ": local edits are reverted on the next apply.\n";
  auto line = [&](const std::string& section, const std::string& key, const std::string& value) {
    out << key << " = " << value << "\n";
    entries.push_back(IniEntry{section, key, value});
  };
  out << "[databases]\n";
  if (pooling)
    for (const auto& [name, value] : pooling->databases) line("databases", name, blank_trimmed(value));
  line("databases", "*", "host=" + std::string(k_socket_dir) + " port=" + std::to_string(k_postgres_port));
  out << "\n";
  if (pooling && !pooling->users.empty()) {
    out << "[users]\n";
    for (const auto& [name, value] : pooling->users) line("users", name, blank_trimmed(value));
    out << "\n";
  }
  out << "[pgbouncer]\n";
  for (const auto& [key, value] : params) line("pgbouncer", key, value);
  // Read back as PgBouncer reads it: nothing a manifest holds may add a line, a section or a
  // directive, or change what pgconverge owns.
  std::vector<std::string> forbidden(manifests::pgbouncer_blocklist().begin(), manifests::pgbouncer_blocklist().end());
  if (auto checked = check_pgbouncer_ini(out.str(), entries, owned, forbidden); !checked)
    return fail("refusing to write pgbouncer.ini: " + checked.error().message);
  return out.str();
}

std::string render_exporter_defaults(const std::string& address) {
  return "# Managed by pgconverge: local edits are reverted on the next apply.\n"
         "# The exporter (user prometheus) logs in to the local PostgreSQL as the role prometheus (peer,\n"
         "# member of pg_monitor): no password.\n"
         "DATA_SOURCE_NAME='user=" +
         std::string(k_exporter_role) + " host=" + k_socket_dir + " port=" + std::to_string(k_postgres_port) +
         " dbname=postgres sslmode=disable'\n"
         "ARGS='--web.listen-address=" +
         host_port(address, k_exporter_port) + "'\n";
}

std::vector<std::string> add_sidecars(DesiredCluster& cluster, const manifests::SGCluster& manifest,
                                      const manifests::SGPoolingConfig* pooling) {
  std::vector<std::string> problems;
  bool pool = pooling_enabled(manifest);
  auto exporter = exporter_wanted(manifest);
  if (pool) {
    cluster.packages.emplace_back("pgbouncer");
    cluster.services.push_back(ManagedService{k_pgbouncer_unit, "PgBouncer", true});
    cluster.roles.push_back(ManagedRole{k_pgbouncer_auth_user, SecretKind::pgbouncer, false, {}});
  } else if (manifest.disable_connection_pooling) {
    cluster.services.push_back(ManagedService{k_pgbouncer_unit, "PgBouncer", false});
  }
  if (exporter == true) {
    cluster.packages.emplace_back("prometheus-postgres-exporter");
    cluster.services.push_back(ManagedService{k_exporter_unit, "the Postgres exporter", true});
    cluster.roles.push_back(ManagedRole{k_exporter_role, std::nullopt, false, {"pg_monitor"}});
  } else if (exporter == false) {
    cluster.services.push_back(ManagedService{k_exporter_unit, "the Postgres exporter", false});
  }
  for (auto& m : cluster.members) {
    if (pool) {
      ManagedFile ini;
      ini.path = k_pgbouncer_ini;
      auto text = render_pgbouncer_ini(pooling, m.address);
      if (!text) {
        problems.push_back(text.error().message);
        continue;
      }
      ini.content = std::move(*text);
      ini.service = k_pgbouncer_unit;
      // PgBouncer re-reads everything on SIGHUP except where it listens.
      ini.restart_keys = {"pgbouncer.listen_addr", "pgbouncer.listen_port", "pgbouncer.unix_socket_dir"};
      m.files.push_back(ini);
      ManagedFile users;
      users.path = k_pgbouncer_userlist;
      users.content = "\"" + std::string(k_pgbouncer_auth_user) + "\" \"" + secret_reference(SecretKind::pgbouncer) + "\"\n";
      users.secret = SecretKind::pgbouncer;
      users.service = k_pgbouncer_unit;
      m.files.push_back(users);
    }
    if (exporter == true) {
      ManagedFile defaults;
      defaults.path = k_exporter_defaults;
      defaults.content = render_exporter_defaults(m.address);
      defaults.owner = "root";
      defaults.group = "root";
      defaults.mode = 0644;
      defaults.service = k_exporter_unit;
      defaults.service_reloads = false;  // Debian's unit has no ExecReload: a change restarts it
      m.files.push_back(defaults);
    }
  }
  return problems;
}

std::string managed_file_text(const ManagedFile& file, const ClusterSecrets& secrets) {
  if (!file.secret) return file.content;
  const std::string reference = secret_reference(*file.secret);
  const std::string& value = secrets.get(*file.secret);
  std::string out = file.content;
  for (auto pos = out.find(reference); pos != std::string::npos; pos = out.find(reference, pos + value.size()))
    out.replace(pos, reference.size(), value);
  return out;
}

std::map<std::string, std::string> ini_entries(const std::string& text) {
  std::map<std::string, std::string> out;
  std::string section;
  std::istringstream in(text);
  std::string raw;
  while (std::getline(in, raw)) {
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    out[section.empty() ? key : section + "." + key] = value;
  }
  return out;
}

void recover_sidecar_secrets(const DesiredCluster& cluster, const std::map<std::string, ObservedHost>& hosts,
                             ClusterSecrets& secrets) {
  if (secrets.values.contains(SecretKind::pgbouncer)) return;
  const std::string prefix = "\"" + std::string(k_pgbouncer_auth_user) + "\" \"";
  for (const auto& m : cluster.members) {
    auto h = hosts.find(m.host);
    if (h == hosts.end()) continue;
    auto f = h->second.files.find(k_pgbouncer_userlist);
    if (f == h->second.files.end() || !f->second) continue;
    for (const auto& line : split(*f->second, '\n')) {
      if (!starts_with(line, prefix) || line.size() < prefix.size() + 2 || line.back() != '"') continue;
      std::string value = line.substr(prefix.size(), line.size() - prefix.size() - 1);
      bool plain = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      });
      if (plain) {
        secrets.values[SecretKind::pgbouncer] = value;
        return;
      }
    }
  }
}

std::string scram_verifier(const std::string& password, const std::string& salt, int iterations) {
  namespace crypto = providers::crypto;
  // Hi(password, salt, i) of RFC 5802: PBKDF2 with HMAC-SHA-256, one block.
  std::string u = crypto::hmac_sha256(password, salt + std::string("\0\0\0\1", 4));
  std::string salted = u;
  for (int i = 1; i < iterations; ++i) {
    u = crypto::hmac_sha256(password, u);
    for (std::size_t j = 0; j < salted.size(); ++j) salted[j] = static_cast<char>(salted[j] ^ u[j]);
  }
  std::string stored_key = crypto::sha256(crypto::hmac_sha256(salted, "Client Key"));
  std::string server_key = crypto::hmac_sha256(salted, "Server Key");
  return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" + base64_encode(salt) + "$" + base64_encode(stored_key) +
         ":" + base64_encode(server_key);
}

bool scram_matches(const std::string& verifier, const std::string& password) {
  // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
  const std::string scheme = "SCRAM-SHA-256$";
  if (!starts_with(verifier, scheme)) return false;
  auto parts = split(verifier.substr(scheme.size()), '$');
  if (parts.size() != 2) return false;
  auto head = split(parts[0], ':');
  if (head.size() != 2 || head[0].empty() || head[0].size() > 7 ||
      !std::all_of(head[0].begin(), head[0].end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  int iterations = std::stoi(head[0]);
  auto salt = base64_decode_strict(head[1]);
  if (iterations < 1 || iterations > 1'000'000 || !salt) return false;
  return providers::crypto::constant_time_equal(scram_verifier(password, *salt, iterations), verifier);
}

namespace {

// What the files written for a member ask of its sidecars' units.
struct PendingUnits {
  std::set<std::string> written, reload, restart;
};

// 1. Files, and what each change asks of its service.
std::map<std::string, PendingUnits> plan_sidecar_files(const DesiredCluster& desired, const ObservedState& observed,
                                                       const std::vector<const DesiredMember*>& members,
                                                       const ClusterSecrets& secrets, ClusterPlan& plan) {
  std::map<std::string, PendingUnits> pending;  // member → units
  for (const auto* m : members) {
    const auto& oh = observed.hosts.at(m->host);
    for (const auto& file : m->files) {
      std::string text = managed_file_text(file, secrets);
      auto it = oh.files.find(file.path);
      bool present = it != oh.files.end() && it->second.has_value();
      if (present && *it->second == text) continue;
      Change c{.subject = member_subject(*m) + ": " + file.path,
               .action = present ? Action::update : Action::create,
               .step = steps::WriteFile{.path = file.path},
               .cluster = desired.name,
               .member = m->name,
               .host = m->host};
      auto& p = pending[m->name];
      p.written.insert(file.service);
      if (!present) {
        c.after = file.secret ? std::string(k_not_shown) : file.path + " for " + m->name;
        c.reason = "absent";
      } else if (file.secret) {
        c.before = c.after = k_not_shown;
        c.reason = "content differs";
        if (!file.service_reloads) p.restart.insert(file.service);
        else p.reload.insert(file.service);
      } else {
        auto before = ini_entries(*it->second), after = ini_entries(text);
        std::set<std::string> keys;
        for (const auto& [k, v] : before) keys.insert(k);
        for (const auto& [k, v] : after) keys.insert(k);
        std::vector<std::string> changed;
        bool restart = !file.service_reloads;
        for (const auto& k : keys) {
          auto b = before.find(k), a = after.find(k);
          std::string bv = b == before.end() ? "(unset)" : b->second, av = a == after.end() ? "(unset)" : a->second;
          if (bv == av) continue;
          changed.push_back(k);
          c.fields.push_back(FieldChange{k, bv, av});
          if (std::find(file.restart_keys.begin(), file.restart_keys.end(), k) != file.restart_keys.end()) restart = true;
        }
        c.reason = changed.empty() ? "content differs (comments or layout)" : "drift in " + join(changed, ", ");
        (restart ? p.restart : p.reload).insert(file.service);
      }
      plan.changes.push_back(c);
    }
  }
  return pending;
}

// 2. Roles: as the members' PostgreSQL reports them.
void plan_roles(const DesiredCluster& desired, const ObservedState& observed, const ClusterSecrets& secrets,
                ClusterPlan& plan) {
  if (desired.roles.empty()) return;
  std::map<std::string, bool> verified;
  std::vector<std::string> reasons;
  std::vector<std::string> names;
  for (const auto& role : desired.roles) {
    std::string why;
    bool answered = false;
    for (const auto& m : desired.members) {
      auto h = observed.hosts.find(m.host);
      if (h == observed.hosts.end() || !h->second.reachable) continue;
      auto r = h->second.roles.find(role.name);
      if (r == h->second.roles.end()) continue;
      answered = true;
      why = role_difference(role, r->second, secrets, verified);
      if (!why.empty()) break;
    }
    if (!answered) why = "not observed (no member's PostgreSQL answered)";
    if (why.empty()) continue;
    reasons.push_back(role.name + ": " + why);
    names.push_back(role.name);
  }
  if (!names.empty())
    plan.changes.push_back(Change{.subject = "cluster " + desired.name + ": roles " + join(names, ", "),
                                  .action = Action::update,
                                  .after = "created or corrected on the leader",
                                  .reason = join(reasons, "; "),
                                  .step = steps::EnsureRoles{.roles = names},
                                  .cluster = desired.name});

}

// 3. Services: started (restarted when their files were just written: a package's postinst
// may have started one with Debian's config), restarted or reloaded for their files, stopped.
void plan_sidecar_services(const DesiredCluster& desired, const ObservedState& observed,
                           const std::vector<const DesiredMember*>& members,
                           std::map<std::string, PendingUnits>& pending, ClusterPlan& plan) {
  for (const auto* m : members) {
    const auto& oh = observed.hosts.at(m->host);
    const auto& p = pending[m->name];
    for (const auto& service : desired.services) {
      auto a = oh.services.find(service.unit);
      auto e = oh.service_enabled.find(service.unit);
      std::string state = a == oh.services.end() ? "unknown" : a->second;
      bool active = state == "active";
      bool enabled = e != oh.service_enabled.end() && e->second == "enabled";
      using steps::ServiceAction;
      ServiceAction action = ServiceAction::start;
      std::string reason;
      if (!service.wanted) {
        if (!active && !enabled) continue;
        action = ServiceAction::stop;
        reason = service.what + " is not declared for this cluster any more";
      } else if (!active) {
        action = p.written.contains(service.unit) ? ServiceAction::restart : ServiceAction::start;
        reason = "service " + state;
      } else if (p.restart.contains(service.unit)) {
        action = ServiceAction::restart;
        reason = "its configuration changed where a reload does not reach";
      } else if (p.reload.contains(service.unit)) {
        action = ServiceAction::reload;
        reason = "its configuration changed";
      } else if (!enabled) {
        action = ServiceAction::enable;
        reason = "service not enabled at boot";
      } else {
        continue;
      }
      Action kind = action == ServiceAction::stop ? Action::remove
                    : action == ServiceAction::restart || action == ServiceAction::reload
                        ? (active ? Action::restart : Action::create)
                        : (active ? Action::update : Action::create);
      std::string after = action == ServiceAction::stop     ? "stopped and disabled"
                          : action == ServiceAction::reload ? "reloaded"
                                                            : "active";
      Change c{.subject = member_subject(*m) + ": " + service.unit,
               .action = kind,
               .before = state + (enabled ? ", enabled" : ""),
               .after = after,
               .reason = reason,
               .step = steps::Service{.unit = service.unit, .action = action, .enable = service.wanted && !enabled},
               .cluster = desired.name,
               .member = m->name,
               .host = m->host};
      plan.changes.push_back(c);
    }
  }
}

}  // namespace

void plan_sidecars(const DesiredCluster& desired, const ObservedState& observed,
                   const std::vector<const DesiredMember*>& members, const ClusterSecrets& secrets,
                   ClusterPlan& plan) {
  if (desired.services.empty() && desired.roles.empty()) return;
  auto pending = plan_sidecar_files(desired, observed, members, secrets, plan);
  plan_roles(desired, observed, secrets, plan);
  plan_sidecar_services(desired, observed, members, pending, plan);
}

std::string roles_sql(const std::vector<ManagedRole>& roles, const ClusterSecrets& secrets) {
  std::ostringstream sql;
  // The statement holds a SCRAM verifier: keep it out of the server log even if it fails.
  sql << "SET log_statement = 'none';\nSET log_min_error_statement = 'panic';\n";
  for (const auto& role : roles) {
    sql << "DO $pgc$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = " << quote_literal(role.name)
        << ") THEN CREATE ROLE " << quote_ident(role.name) << "; END IF; END$pgc$;\n";
    sql << "ALTER ROLE " << quote_ident(role.name) << " WITH LOGIN";
    if (role.superuser) sql << " SUPERUSER";
    else sql << " NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS";
    if (role.name == k_pgbouncer_auth_user) sql << " NOREPLICATION";
    if (role.password)
      sql << " PASSWORD "
          << quote_literal(scram_verifier(secrets.get(*role.password), providers::crypto::random_bytes(16)));
    sql << ";\n";
    for (const auto& group : role.member_of) sql << "GRANT " << quote_ident(group) << " TO " << quote_ident(role.name) << ";\n";
  }
  return sql.str();
}

Result<void> write_managed_file(providers::RemoteHost& host, const ManagedFile& file, const ClusterSecrets& secrets) {
  std::string dir = std::filesystem::path(file.path).parent_path().string();
  if (auto made = host.make_directory(dir, providers::FileMode{"root", "root", 0755},
                                      providers::RemoteHost::ExistingDirectory::keep);
      !made)
    return made;
  return host.write_file(file.path, managed_file_text(file, secrets),
                         providers::FileMode{file.owner, file.group, file.mode});
}

Result<void> ensure_roles(providers::RemoteHost& host, const std::vector<ManagedRole>& roles,
                          const ClusterSecrets& secrets) {
  // The SQL (it holds SCRAM verifiers) goes to psql on stdin: never a file in postgres' home,
  // where root would write it through whatever link the postgres user put there.
  static const std::vector<std::string> psql{"env", "-C", "/", "PGCONNECT_TIMEOUT=5", "runuser", "-u", "postgres",
                                             "--", "psql", "-h", "/var/run/postgresql", "-p", "5432", "-d",
                                             "postgres", "-XAtq", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null"};
  auto r = host.run_with_input(psql, roles_sql(roles, secrets), k_sidecar_command_timeout);
  PGC_TRY(r);
  if (r->exit_status != 0) {
    // psql's own lines only: its LINE/context lines would quote the statement (a verifier).
    std::vector<std::string> lines;
    for (const auto& line : split(r->err, '\n'))
      if (starts_with(line, "psql:") && line.find("SCRAM-SHA-256$") == std::string::npos) lines.push_back(trim(line));
    return fail("host " + host.describe() + ": creating roles: psql exited with status " +
                std::to_string(r->exit_status) + (lines.empty() ? "" : ": " + join(lines, "; ").substr(0, 300)));
  }
  if (std::any_of(roles.begin(), roles.end(), [](const ManagedRole& role) { return role.name == k_pgbouncer_auth_user; }))
    return ensure_pgbouncer_lookup(host);
  return {};
}

std::string pgbouncer_lookup_sql() {
  std::string reserved;
  for (const auto& name : manifests::pgconverge_roles()) reserved += (reserved.empty() ? "" : ", ") + quote_literal(name);
  const std::string user = quote_ident(k_pgbouncer_auth_user);
  return "SET log_statement = 'none';\n"
         "CREATE SCHEMA IF NOT EXISTS pgconverge AUTHORIZATION CURRENT_USER;\n"
         // A schema of that name someone else made could hold their own lookup: refused.
         "DO $pgc$BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = "
         "n.nspowner WHERE n.nspname = 'pgconverge' AND NOT r.rolsuper) THEN RAISE EXCEPTION 'schema pgconverge "
         "exists and is not owned by a superuser'; END IF; END$pgc$;\n"
         "REVOKE ALL ON SCHEMA pgconverge FROM PUBLIC;\n"
         "GRANT USAGE ON SCHEMA pgconverge TO " + user + ";\n"
         "CREATE OR REPLACE FUNCTION pgconverge.pgbouncer_lookup(i_username text, OUT usename text, OUT passwd text) "
         "RETURNS record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS "
         "$pgc$SELECT s.usename::text, s.passwd::text FROM pg_catalog.pg_shadow s WHERE s.usename = i_username "
         "AND NOT s.usesuper AND s.usename::text <> ALL (ARRAY[" + reserved + "])$pgc$;\n"
         "ALTER FUNCTION pgconverge.pgbouncer_lookup(text) OWNER TO CURRENT_USER;\n"
         "REVOKE ALL ON FUNCTION pgconverge.pgbouncer_lookup(text) FROM PUBLIC;\n"
         "GRANT EXECUTE ON FUNCTION pgconverge.pgbouncer_lookup(text) TO " + user + ";\n";
}

Result<void> ensure_pgbouncer_lookup(providers::RemoteHost& host) {
  // Every database that takes connections (PgBouncer 1.18 runs auth_query in the client's
  // database; no auth_dbname before 1.20), template1 included so that new ones have it; postgres
  // last, where the probe looks for it. The name goes in PGDATABASE: never read as a conninfo.
  static const std::string script = R"SH(
set -eu
cd /
dbs=$(PGCONNECT_TIMEOUT=5 runuser -u postgres -- psql -h /var/run/postgresql -p 5432 -d postgres -XAtq -v ON_ERROR_STOP=1 \
  -c "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND datname !~ '[[:cntrl:]]' ORDER BY datname = 'postgres', datname")
printf '%s\n' "$dbs" | while IFS= read -r db; do
  [ -n "$db" ] || continue
  printf '%s\n' "$1" | PGCONNECT_TIMEOUT=5 runuser -u postgres -- env PGDATABASE="$db" \
    psql -h /var/run/postgresql -p 5432 -XAtq -v ON_ERROR_STOP=1 >/dev/null
done
)SH";
  auto r = host.run_script(script, {pgbouncer_lookup_sql()}, k_sidecar_command_timeout);
  PGC_TRY(r);
  if (r->exit_status != 0)
    return fail("host " + host.describe() + ": PgBouncer's lookup function: exited with status " +
                std::to_string(r->exit_status) + ": " + trim(r->err).substr(0, 300));
  return {};
}

}  // namespace pgc::reconciler

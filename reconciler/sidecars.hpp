#pragma once
// What StackGres runs beside PostgreSQL in each pod, on plain hosts: PgBouncer (an SGCluster
// naming an sgPoolingConfig) and the Prometheus Postgres exporter (prometheusAutobind). Each is a
// Debian package, its files, a systemd service and a role on the cluster, compiled into the
// desired state (compile.cpp calls add_sidecars), planned per member (plan.cpp calls
// plan_sidecars) and applied by apply.cpp through the functions at the end.

#include <optional>
#include <string>
#include <vector>

#include "manifests/model.hpp"
#include "providers/ssh/remote_host.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/secrets.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

inline constexpr int k_pgbouncer_port = 6432;
inline constexpr int k_exporter_port = 9187;
inline constexpr const char* k_pgbouncer_ini = "/etc/pgbouncer/pgbouncer.ini";
inline constexpr const char* k_pgbouncer_userlist = "/etc/pgbouncer/userlist.txt";
inline constexpr const char* k_exporter_defaults = "/etc/default/prometheus-postgres-exporter";
inline constexpr const char* k_pgbouncer_unit = "pgbouncer.service";
inline constexpr const char* k_exporter_unit = "prometheus-postgres-exporter.service";
inline constexpr const char* k_pgbouncer_auth_user = "authenticator";
// PgBouncer's auth_query: a SECURITY DEFINER function (pgbouncer_lookup_sql) the auth_user may
// only execute; it answers for no superuser and none of pgconverge's own roles.
inline constexpr const char* k_pgbouncer_auth_query = "SELECT usename, passwd FROM pgconverge.pgbouncer_lookup($1)";
// The exporter runs as the Debian user prometheus and logs in as the role of that name (peer).
inline constexpr const char* k_exporter_role = "prometheus";

// PgBouncer runs when the cluster names an SGPoolingConfig and does not disable pooling.
bool pooling_enabled(const manifests::SGCluster& cluster);
// true: the exporter runs; false: it is stopped; nullopt: prometheusAutobind is absent and the
// exporter is left alone.
std::optional<bool> exporter_wanted(const manifests::SGCluster& cluster);

// pg_hba lines the sidecars need, after "local all postgres peer" and before the host lines.
std::vector<std::string> sidecar_hba_lines(const manifests::SGCluster& cluster);

// pgbouncer.ini for a member at address: [databases] (the SGPoolingConfig's, then "*" to the local
// PostgreSQL), [users], [pgbouncer] (StackGres' defaults, overridden by the SGPoolingConfig, then
// what pgconverge sets). pooling may be null (no SGPoolingConfig found: defaults only). Values
// are written trimmed, as PgBouncer reads them. Fails when the text, read back as PgBouncer reads
// it (pgbouncer_ini.hpp), is not exactly the entries meant or lets the manifest set a key of
// pgconverge's (validation refuses such input first; this holds whatever reaches the renderer).
Result<std::string> render_pgbouncer_ini(const manifests::SGPoolingConfig* pooling, const std::string& address);
// /etc/default/prometheus-postgres-exporter for a member at address.
std::string render_exporter_defaults(const std::string& address);

// Adds packages, services, roles and each member's files to a compiled cluster; returns why a
// file could not be rendered (empty when all were).
[[nodiscard]] std::vector<std::string> add_sidecars(DesiredCluster& cluster, const manifests::SGCluster& manifest,
                                                    const manifests::SGPoolingConfig* pooling);

// The text of a managed file with its secret resolved.
std::string managed_file_text(const ManagedFile& file, const ClusterSecrets& secrets);

// "section.key" → value for each "key = value" (or KEY=VALUE) line; comments and blank lines
// skipped; surrounding single or double quotes of a value removed.
std::map<std::string, std::string> ini_entries(const std::string& text);

// The secrets the sidecars' files on the hosts hold (PgBouncer's auth_user password in
// userlist.txt), for a cluster whose state dir lost them.
void recover_sidecar_secrets(const DesiredCluster& cluster, const std::map<std::string, ObservedHost>& hosts,
                             ClusterSecrets& secrets);

// SCRAM-SHA-256 as PostgreSQL stores it: "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
// (base64). salt is raw bytes.
std::string scram_verifier(const std::string& password, const std::string& salt, int iterations = 4096);
// Whether verifier (pg_authid.rolpassword) is password's SCRAM-SHA-256 verifier.
bool scram_matches(const std::string& verifier, const std::string& password);

// The sidecar changes of one cluster (files, then roles, then services), appended to plan.
// members: the members whose hosts answered.
void plan_sidecars(const DesiredCluster& desired, const ObservedState& observed,
                   const std::vector<const DesiredMember*>& members, const ClusterSecrets& secrets,
                   ClusterPlan& plan);

// The SQL that creates or corrects roles (passwords as SCRAM verifiers, never in clear).
std::string roles_sql(const std::vector<ManagedRole>& roles, const ClusterSecrets& secrets);

// Apply: writes one managed file (its directory created when missing).
Result<void> write_managed_file(providers::RemoteHost& host, const ManagedFile& file, const ClusterSecrets& secrets);
// The SQL that sets up PgBouncer's lookup function in one database (no secret in it).
std::string pgbouncer_lookup_sql();
// Apply: pgbouncer_lookup_sql in every database that takes connections (template1 included, postgres
// last), as postgres over the local socket; ensure_roles runs it when the roles include the auth user.
Result<void> ensure_pgbouncer_lookup(providers::RemoteHost& host);

// Apply: runs roles_sql on the host as postgres over the local socket (the host of the leader).
Result<void> ensure_roles(providers::RemoteHost& host, const std::vector<ManagedRole>& roles,
                          const ClusterSecrets& secrets);

}  // namespace pgc::reconciler

#pragma once
// The manifest model: plain data for every kind pgconverge reads, with where each field
// was declared so that any later stage can point the user at the right file, line and field.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/source_location.hpp"

namespace pgc::manifests {

// Where each dotted field path of one manifest was declared ("spec.replication.mode" → file:line:col).
// The empty path "" is the document itself.
class FieldLocations {
 public:
  void set(const std::string& path, SourceLocation where) { by_path_[path] = std::move(where); }

  // The location of path, or of its closest declared ancestor, or of the document.
  [[nodiscard]] SourceLocation at(const std::string& path) const;
  // Whether path itself was declared.
  [[nodiscard]] bool contains(const std::string& path) const { return by_path_.contains(path); }

 private:
  std::map<std::string, SourceLocation> by_path_;
};

struct Metadata {
  std::string name;
  std::string namespace_;  // StackGres namespace; "default" when absent
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

// Fields every manifest has: its identity and where its fields were declared.
struct ManifestBase {
  std::string api_version;
  std::string kind;
  Metadata metadata;
  FieldLocations locations;
  // Dotted paths whose values failed the schema check (already reported); validate() skips the
  // rules that read them, so one typo does not cascade into misleading errors.
  std::set<std::string> invalid_fields;
};

enum class ReplicationMode { async, sync, strict_sync, sync_all, strict_sync_all };
enum class Role { ha_read, ha, readonly, none };

// "strict-sync" ↔ ReplicationMode::strict_sync, "ha-read" ↔ Role::ha_read.
std::string to_string(ReplicationMode mode);
std::string to_string(Role role);
std::optional<ReplicationMode> parse_replication_mode(const std::string& text);
std::optional<Role> parse_role(const std::string& text);
// The values accepted in manifests, in documentation order.
const std::vector<std::string>& replication_mode_names();
const std::vector<std::string>& role_names();

// true for strict-sync and strict-sync-all.
bool is_strict(ReplicationMode mode);
// true for sync-all and strict-sync-all.
bool is_all(ReplicationMode mode);

// The PostgreSQL majors pgconverge accepts in spec.postgres.version, ascending.
const std::vector<int>& known_postgres_majors();
// The major of "15" or "16.1" (→ 15, 16); nullopt unless the text is MAJOR or MAJOR.MINOR digits.
// Does not check that the major is known.
std::optional<int> postgres_major(const std::string& version);

// One entry of spec.replication.groups[].
struct ReplicationGroup {
  std::string name;       // defaults to "group-<index+1>"
  Role role = Role::ha_read;
  int instances = 1;
  std::optional<int> min_instances;
};

// spec.replication.
struct Replication {
  ReplicationMode mode = ReplicationMode::async;
  Role role = Role::ha_read;
  std::optional<int> sync_instances;  // as written; defaults to 1 for sync/strict-sync
  std::vector<ReplicationGroup> groups;
  std::string initialization_mode = "FromExistingBackup";
};

// A StackGres SecretKeySelector ({name, key} of a Kubernetes Secret). On VMs a Secret is a
// directory on the controller and each of its keys a file in it: `name` is that directory
// (absolute, or relative to the directory of the manifest that names it) and `key` a file name
// in it (docs/manifests.md, "TLS").
struct SecretKeySelector {
  std::string name;
  std::string key;
};

// The certificate duration StackGres gives generated certificates when spec.postgres.ssl.duration
// is absent: 13 months, counted as 395 days.
inline constexpr long long k_default_ssl_duration_seconds = 395LL * 24 * 3600;

// spec.postgres.ssl: TLS for PostgreSQL (StackGres: enabled by default; certificates generated
// unless both selectors are given).
struct PostgresSsl {
  bool enabled = true;
  // spec.postgres.ssl.duration (ISO 8601, "P395D", "PT720H") in seconds: how long a generated
  // certificate is valid.
  long long duration_seconds = k_default_ssl_duration_seconds;
  std::optional<SecretKeySelector> certificate;  // certificateSecretKeySelector
  std::optional<SecretKeySelector> private_key;  // privateKeySecretKeySelector
};

// An ISO 8601 duration as StackGres's `duration` takes it, PnDTnHnMn.nS (also PnW, and Y and M
// counted as 365 and 30 days), in whole seconds (a fraction of a second is dropped); nullopt
// unless the whole text is one, or when it is zero or longer than 100 years.
std::optional<long long> parse_iso8601_duration(const std::string& text);

// stackgres.io/v1 SGCluster: the fields pgconverge acts on.
struct SGCluster : ManifestBase {
  std::string postgres_version;  // "15" or "16.1"
  std::string postgres_flavor = "vanilla";
  PostgresSsl ssl;                           // spec.postgres.ssl
  int instances = 1;
  std::string sg_instance_profile;           // empty → none referenced
  std::string sg_postgres_config;            // spec.configurations.sgPostgresConfig
  std::string sg_pooling_config;             // spec.configurations.sgPoolingConfig
  bool disable_connection_pooling = false;   // spec.pods.disableConnectionPooling
  // spec.prometheusAutobind: true runs the Postgres exporter on every member, false stops it,
  // absent leaves it alone.
  std::optional<bool> prometheus_autobind;
  std::string persistent_volume_size;        // spec.pods.persistentVolume.size: the data directory's filesystem must hold it
  bool disable_metrics_exporter = false;     // spec.pods.disableMetricsExporter (wins over autobind)
  std::map<std::string, std::string> node_selector;  // spec.pods.scheduling.nodeSelector
  Replication replication;
  // spec.configurations.patroni.dynamicConfig: Patroni DCS keys that override the defaults
  // (StackGres' own field), as a JSON object; null when absent.
  nlohmann::json patroni_dynamic_config;
};

// stackgres.io/v1 SGPostgresConfig.
struct SGPostgresConfig : ManifestBase {
  std::string postgres_version;                      // spec.postgresVersion (a major, e.g. "15")
  std::map<std::string, std::string> parameters;     // spec.postgresql.conf
};

// stackgres.io/v1 SGInstanceProfile.
struct SGInstanceProfile : ManifestBase {
  std::string cpu;     // e.g. "1" or "500m"
  std::string memory;  // e.g. "2Gi"
};

// stackgres.io/v1 SGPoolingConfig (PgBouncer).
struct SGPoolingConfig : ManifestBase {
  std::map<std::string, std::string> pgbouncer;     // spec.pgBouncer.pgbouncer.ini.pgbouncer
  std::map<std::string, std::string> databases;     // ...ini.databases
  std::map<std::string, std::string> users;         // ...ini.users
};

// pgconverge.io/v1 Host: a machine reached over SSH.
struct Host : ManifestBase {
  std::string address;      // where SSH, Patroni's REST API and PostgreSQL are reached
  int ssh_port = 22;
  std::string ssh_user = "root";  // non-root users run commands with `sudo -n`
  // Package repositories pgconverge configures before installing: "pgdg" (apt.postgresql.org).
  std::vector<std::string> package_repositories;
};

// The package repositories a Host may ask for (spec.packageRepositories).
inline constexpr const char* k_repository_pgdg = "pgdg";

// pgconverge.io/v1 EtcdCluster: Patroni's DCS (etcd v3 API). Either an etcd run elsewhere
// (spec.endpoints) or one pgconverge installs and runs on Hosts (spec.hosts).
struct EtcdCluster : ManifestBase {
  std::vector<std::string> endpoints;  // "host:port"
  bool endpoints_declared = false;     // spec.endpoints is present (even empty)
  // spec.hosts: a list of Host names, or {nodeSelector: {label: value}}. hosts_declared is true
  // when spec.hosts is present (in either form).
  bool hosts_declared = false;
  std::vector<std::string> host_names;                 // the list form, in order
  std::map<std::string, std::string> host_selector;    // the nodeSelector form
  bool host_selector_form = false;
  int client_port = 2379;      // spec.clientPort
  int peer_port = 2380;        // spec.peerPort
  std::string data_directory;  // spec.dataDirectory; empty → /var/lib/etcd/<name>
  // spec.tls.enabled (spec.hosts only): peer and client TLS with client certificates from a CA
  // pgconverge keeps in its state dir; false keeps plain HTTP (insecure: anyone who reaches the
  // client port reads and writes the DCS).
  bool tls_enabled = true;
  // spec.tls.{caFile,certFile,keyFile} (spec.endpoints over https only): files on the controller,
  // relative to the manifest's directory or below /etc/pgconverge/tls (as spec.postgres.ssl's);
  // the CA that signed etcd's server certificate, and Patroni's and pgconverge's client
  // certificate and key (both or neither). Empty when not given.
  std::string tls_ca_file;
  std::string tls_certificate_file;
  std::string tls_key_file;

  // spec.endpoints over https (every endpoint https://host:port).
  [[nodiscard]] bool https_endpoints() const;

  // True when pgconverge runs this etcd (spec.hosts) rather than only pointing Patroni at it.
  [[nodiscard]] bool managed() const { return hosts_declared; }
};

// The Hosts an EtcdCluster's spec.hosts selects: the list form in its order (unknown names
// skipped), the nodeSelector form every Host whose labels hold each entry, in manifest order.
std::vector<const Host*> etcd_selected_hosts(const EtcdCluster& etcd, const std::vector<Host>& hosts);
// The data directory of a managed EtcdCluster: spec.dataDirectory or /var/lib/etcd/<name>.
std::string etcd_data_directory(const EtcdCluster& etcd);
// Debian's etcd-server package starts etcd on install with this data directory (a single-member
// cluster "default"); pgconverge never uses or deletes it.
inline constexpr const char* k_debian_etcd_data_dir = "/var/lib/etcd/default";
// Why dir may not be a managed etcd's data directory ("" when it may): it must lie below
// /var/lib/etcd/, written plainly (names of letters, digits and ._@+- between single slashes, no
// . or .., no trailing slash), and not be Debian's /var/lib/etcd/default or below it. pgconverge
// creates it as root and gives it to the etcd user, so no other path may be named.
std::string check_etcd_data_directory(const std::string& dir);

// An endpoint of spec.endpoints without its scheme ("https://10.0.0.2:2379" → "10.0.0.2:2379").
std::string etcd_endpoint_address(const std::string& endpoint);

// Everything loaded from a source directory, each kind in file then document order.
struct ManifestSet {
  std::vector<SGCluster> clusters;
  std::vector<SGPostgresConfig> postgres_configs;
  std::vector<SGInstanceProfile> instance_profiles;
  std::vector<SGPoolingConfig> pooling_configs;
  std::vector<Host> hosts;
  std::vector<EtcdCluster> etcd_clusters;

  // The Host whose metadata.name is name, or nullptr.
  [[nodiscard]] const Host* find_host(const std::string& name) const;
};

// The annotation naming the EtcdCluster a cluster uses when there are several.
inline constexpr const char* k_dcs_annotation = "pgconverge.io/dcs";
// The most members one SGCluster may declare (spec.instances).
inline constexpr int k_max_instances = 64;
// The annotation that suspends applying to a cluster ("true"); plan and status still report drift.
inline constexpr const char* k_suspend_annotation = "pgconverge.io/suspend";
// StackGres's own pause of a resource's reconciliation: "true" in any case pauses, any other value
// does not (StackGres reads it with Java's Boolean.parseBoolean).
inline constexpr const char* k_reconciliation_pause_annotation = "stackgres.io/reconciliation-pause";
// The label that places a cluster's members when it has no nodeSelector.
inline constexpr const char* k_cluster_label = "pgconverge.io/cluster";

}  // namespace pgc::manifests

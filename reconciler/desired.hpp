#pragma once
// The desired state: what every host must run, compiled from the manifests. Plain data only.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "manifests/model.hpp"
#include "reconciler/etcd_state.hpp"
#include "reconciler/postgres_ssl.hpp"
#include "util/source_location.hpp"

namespace pgc::reconciler {

// Patroni tags derived from a member's role (docs/replication-semantics.md §3).
struct MemberTags {
  bool nofailover = false;
  bool noloadbalance = false;
};

// The secrets a cluster needs; generated on first bootstrap, never printed.
// pgbouncer: the password of PgBouncer's auth_user (authenticator); added to older state files
// when a cluster first needs it.
enum class SecretKind { superuser, replication, rewind, restapi, pgbouncer };
std::string to_string(SecretKind kind);

// A secret reference in a compiled config: "secret:<kind>", e.g. "secret:superuser".
inline constexpr const char* k_secret_prefix = "secret:";

// The reference to a secret of kind, e.g. "secret:superuser".
std::string secret_reference(SecretKind kind);

// A file pgconverge writes on a member host beside patroni.yml (PgBouncer's, the exporter's).
struct ManagedFile {
  std::string path;
  // The exact text; when secret is set, every secret_reference(*secret) in it is replaced by the
  // secret's value when the file is written, and the file's content is never shown.
  std::string content;
  std::optional<SecretKind> secret;
  std::string owner = "root";
  std::string group = "postgres";
  unsigned mode = 0640;
  std::string service;                     // the unit that reads it
  // "key = value" lines whose change needs a restart of service; any other change a reload
  // (every change a restart when the service cannot reload).
  std::vector<std::string> restart_keys;
  bool service_reloads = true;
};

// A systemd service pgconverge keeps running (or stopped) on every member host of a cluster.
struct ManagedService {
  std::string unit;              // e.g. pgbouncer.service
  std::string what;              // for messages: "PgBouncer"
  bool wanted = true;            // false: stopped and disabled when found running or enabled
};

// A role pgconverge creates (or corrects) on the leader once the cluster runs.
struct ManagedRole {
  std::string name;
  std::optional<SecretKind> password;    // nullopt: no password (peer authentication)
  bool superuser = false;
  std::vector<std::string> member_of;    // e.g. pg_monitor
};

// One Patroni member: a slot of a cluster placed on a Host.
struct DesiredMember {
  std::string name;        // Patroni member name: "<cluster>-<slot>"
  int slot = 0;            // 0-based, main group first, then groups in order
  std::string host;        // Host metadata.name
  std::string address;     // Host spec.address
  std::string group;       // "" for the main group, else the group's name
  manifests::Role role = manifests::Role::ha_read;
  MemberTags tags;
  // This member's local patroni.yml as a tree; secrets appear as secret references
  // (see k_secret_prefix), resolved only when the file is written to the host.
  nlohmann::json patroni_config;
  std::string data_dir;      // PGDATA, e.g. /var/lib/postgresql/15/<cluster> (patroni_config's postgresql.data_dir)
  std::string config_path;   // e.g. /etc/patroni/15-<cluster>.yml
  std::string service;       // systemd unit, e.g. patroni@15-<cluster>
  std::vector<ManagedFile> files;  // PgBouncer's and the exporter's files on this member's host
  // What its certificate says when pgconverge's CA signs it (DesiredCluster::ssl.generated()).
  MemberCertificate certificate;
  // Where its TLS files are on its host; empty paths when the cluster's TLS is off.
  TlsFiles tls;
};


// SGCluster annotation listing extra client addresses/CIDRs (comma or space separated) that
// pg_hba lets reach every database with scram-sha-256, e.g. the machine running pgconverge
// (it observes members over libpq) and applications. Members can always reach each other.
inline constexpr const char* k_client_cidrs_annotation = "pgconverge.io/client-cidrs";

// One SGCluster compiled.
struct DesiredCluster {
  std::string name;
  std::string namespace_;
  manifests::ReplicationMode mode = manifests::ReplicationMode::async;
  manifests::Role role = manifests::Role::ha_read;
  int instances = 0;
  std::optional<int> sync_instances;  // effective syncInstances for sync/strict-sync
  std::string postgres_version;       // as declared ("15", "16.1")
  int postgres_major = 0;
  std::string bin_dir;                // /usr/lib/postgresql/<major>/bin
  std::vector<std::string> etcd_endpoints;
  std::string dcs_name;               // the EtcdCluster's metadata.name
  // The Patroni dynamic configuration (DCS) keys pgconverge owns for this cluster, with their
  // values. Keys absent here are never touched (e.g. `pause`). `synchronous_node_count` is absent
  // when the mode leaves it untouched.
  nlohmann::json dynamic_config;
  DesiredSsl ssl;                     // spec.postgres.ssl (reconciler/postgres_ssl.hpp)
  std::vector<DesiredMember> members;
  std::vector<std::string> packages;  // Debian packages each member host needs
  std::vector<ManagedService> services;  // PgBouncer, the exporter (reconciler/sidecars.hpp)
  std::vector<ManagedRole> roles;        // the roles they log in as
  // APT repositories the packages need beyond Debian 12 main ("pgdg" for PostgreSQL other than
  // 15); pgconverge does not configure them, compile() warns.
  std::vector<std::string> repositories;
  // Apply leaves it alone: annotation pgconverge.io/suspend: "true", or StackGres's
  // stackgres.io/reconciliation-pause: "true" (any case); suspended_by names the one that did.
  bool suspended = false;
  std::string suspended_by;
  // What each member host must have (SGInstanceProfile, pods.persistentVolume.size); checked
  // against the host at plan time (host_prep.cpp).
  std::string profile_name;
  std::optional<double> cpus;                 // cores ("500m" → 0.5)
  std::optional<long long> memory_bytes;
  std::optional<long long> volume_bytes;
  SourceLocation where;               // the SGCluster document

  // The member named member_name, or nullptr.
  [[nodiscard]] const DesiredMember* find_member(const std::string& member_name) const;
};

struct DesiredState {
  std::vector<DesiredCluster> clusters;
  std::vector<DesiredEtcd> etcds{};  // the EtcdClusters pgconverge runs (spec.hosts)
  std::vector<ExternalEtcdTls> external_etcds{};  // those given by https:// spec.endpoints

  // The cluster named name, or nullptr.
  [[nodiscard]] const DesiredCluster* find(const std::string& name) const;
};

// Where members already live (cluster name → member slot → host name), from observation or the
// state dir; makes placement sticky. Empty on a first run.
using PlacementHistory = std::map<std::string, std::map<int, std::string>>;

// Compiles validated manifests into the desired state. Placement problems (too few hosts,
// unknown DCS) are returned as error diagnostics naming the cluster; nothing is partially compiled.
struct CompileResult {
  DesiredState state;
  Diagnostics diagnostics;
};
CompileResult compile(const manifests::ManifestSet& manifests, const PlacementHistory& history = {});

}  // namespace pgc::reconciler

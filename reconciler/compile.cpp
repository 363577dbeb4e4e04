// compile(): validated manifests → the desired state (placement, Patroni DCS keys, each
// member's patroni.yml, packages). Follows docs/replication-semantics.md §2 (mode → DCS) and §3
// (role → tags).
#include <algorithm>
#include <chrono>
#include <limits>
#include <optional>
#include <set>

#include "manifests/dynamic_config.hpp"
#include "manifests/pg_hba_rules.hpp"
#include "manifests/postgres_parameters.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/etcd.hpp"
#include "reconciler/etcd_tls.hpp"
#include "reconciler/placement.hpp"
#include "reconciler/sidecars.hpp"
#include "util/booleans.hpp"
#include "util/line_breaks.hpp"
#include "util/net_address.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

using json = nlohmann::json;
using manifests::ReplicationMode;
using manifests::Role;

constexpr int k_postgres_port = 5432;
constexpr int k_restapi_port = 8008;
constexpr int k_debian_postgres_major = 15;  // the only PostgreSQL in Debian 12 main
constexpr const char* k_patroni_namespace = "/service/";
constexpr const char* k_restapi_user = "pgconverge";
constexpr const char* k_superuser = "postgres";
constexpr const char* k_replication_user = "replicator";
constexpr const char* k_rewind_user = "rewind_user";
constexpr const char* k_socket_dir = "/var/run/postgresql";
constexpr const char* k_default_wal_keep_size = "512MB";
// Spare WAL senders / slots beyond one per member: base backups, pg_rewind, a scale-up in flight.
constexpr int k_wal_sender_margin = 4;
constexpr int k_min_wal_senders = 10;  // PostgreSQL's default; never go below it

// DCS keys the replication mode owns; spec.configurations.patroni.dynamicConfig cannot set them.
const std::set<std::string>& mode_keys() {
  static const std::set<std::string> keys{"synchronous_mode", "synchronous_mode_strict", "synchronous_node_count"};
  return keys;
}

// PostgreSQL parameters Patroni sets itself (lower-case name); a user value is dropped.
std::optional<std::string> managed_parameter_reason(const std::string& name) {
  static const std::set<std::string> by_patroni{"synchronous_standby_names", "primary_conninfo", "primary_slot_name"};
  if (by_patroni.contains(name)) return "set by Patroni from the host's address and the cluster";
  if (name == "ssl") return "set from spec.postgres.ssl";
  return std::nullopt;
}

std::optional<int> parse_small_int(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  int n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

// The major of "15" or "16.1".
std::optional<int> postgres_major(const std::string& version) {
  auto parts = split(version, '.');
  if (parts.empty() || parts.size() > 2) return std::nullopt;
  for (const auto& p : parts)
    if (!parse_small_int(p)) return std::nullopt;
  return parse_small_int(parts.front());
}

// The pg_hba address of one host: a /32 or /128 for an IP, else the host name as written.
std::string hba_address(const std::string& address) {
  if (is_ipv4(address)) return address + "/32";
  if (is_ipv6(address)) return address + "/128";
  return address;
}

// A client entry of the client-cidrs annotation as a pg_hba address, or nullopt when malformed.
std::optional<std::string> client_cidr(const std::string& entry) {
  auto slash = entry.find('/');
  std::string address = entry.substr(0, slash);
  int max_prefix = is_ipv4(address) ? 32 : (is_ipv6(address) ? 128 : -1);
  if (max_prefix < 0) return std::nullopt;
  if (slash == std::string::npos) return address + "/" + std::to_string(max_prefix);
  auto prefix = parse_small_int(std::string_view(entry).substr(slash + 1));
  if (!prefix || *prefix > max_prefix) return std::nullopt;
  return entry;
}

// Whether apply leaves the cluster alone, and which annotation says so: pgconverge's own
// (validated "true"/"false") or StackGres's reconciliation pause ("true" in any case pauses).
// Either one pauses.
void suspension(const std::map<std::string, std::string>& annotations, DesiredCluster& out) {
  if (auto it = annotations.find(manifests::k_suspend_annotation); it != annotations.end() && it->second == "true")
    out.suspended_by = manifests::k_suspend_annotation;
  else if (auto p = annotations.find(manifests::k_reconciliation_pause_annotation);
           p != annotations.end() && lower(p->second) == "true")
    out.suspended_by = manifests::k_reconciliation_pause_annotation;
  out.suspended = !out.suspended_by.empty();
}

// A Kubernetes quantity ("512Mi", "1.5Gi", "1.8Ti", "1G", "1073741824") in bytes, a fraction
// rounded down; nullopt when it is not one (validation reports that) or does not fit.
std::optional<long long> memory_bytes(const std::string& quantity) {
  auto digits_from = [&](std::size_t from) {
    std::size_t end = from;
    while (end < quantity.size() && quantity[end] >= '0' && quantity[end] <= '9') ++end;
    return end;
  };
  const std::size_t whole_end = digits_from(0);
  if (whole_end == 0 || whole_end > 12) return std::nullopt;
  std::size_t end = whole_end;
  std::string fraction;
  if (end < quantity.size() && quantity[end] == '.') {
    end = digits_from(whole_end + 1);
    fraction = quantity.substr(whole_end + 1, end - whole_end - 1);
    if (fraction.empty() || fraction.size() > 9) return std::nullopt;
  }
  static const std::vector<std::pair<std::string, long long>> units{
      {"", 1},           {"k", 1000LL},          {"M", 1000LL * 1000},   {"G", 1000LL * 1000 * 1000},
      {"T", 1000LL * 1000 * 1000 * 1000},       {"Ki", 1024LL},         {"Mi", 1024LL * 1024},
      {"Gi", 1024LL * 1024 * 1024},              {"Ti", 1024LL * 1024 * 1024 * 1024}};
  const std::string suffix = quantity.substr(end);
  for (const auto& [unit, factor] : units) {
    if (suffix != unit) continue;
    const long long whole = std::stoll(quantity.substr(0, whole_end));
    if (whole > std::numeric_limits<long long>::max() / factor) return std::nullopt;
    long long bytes = whole * factor;
    if (!fraction.empty()) {
      // Below one unit: at most 2^40 × 0.999999999, exact in a long double's 64-bit mantissa.
      long double scale = 1;
      for (std::size_t i = 0; i < fraction.size(); ++i) scale *= 10;
      const auto part = static_cast<long long>(static_cast<long double>(std::stoll(fraction)) *
                                               static_cast<long double>(factor) / scale);
      if (bytes > std::numeric_limits<long long>::max() - part) return std::nullopt;
      bytes += part;
    }
    return bytes;
  }
  return std::nullopt;
}

// Everything compile() gathers about one cluster before building its configs.
struct ClusterInputs {
  const manifests::SGCluster* cluster = nullptr;
  const manifests::SGPostgresConfig* postgres_config = nullptr;  // nullptr: none referenced
  const manifests::SGInstanceProfile* profile = nullptr;         // nullptr: none referenced
  const manifests::EtcdCluster* dcs = nullptr;
  int major = 0;
  SlotHosts hosts;                                    // slot → host
  std::vector<const manifests::Host*> pool;           // every host the cluster may use
  std::vector<std::string> client_cidrs;              // from the client-cidrs annotation
};

class Compiler {
 public:
  Compiler(const manifests::ManifestSet& manifests, Diagnostics& diagnostics)
      : manifests_(manifests), diagnostics_(diagnostics) {}

  // Compiles one placed cluster; appends its diagnostics. Returns nullopt on error.
  std::optional<DesiredCluster> compile_cluster(const manifests::SGCluster& cluster, const SlotHosts* placed) {
    std::size_t errors_before = error_count();
    ClusterInputs in;
    in.cluster = &cluster;
    in.major = major_of(cluster);
    in.postgres_config = postgres_config_of(cluster);
    if (!cluster.sg_instance_profile.empty())
      in.profile = find_named(manifests_.instance_profiles, cluster.sg_instance_profile, cluster.metadata.namespace_);
    in.dcs = dcs_of(cluster);
    in.client_cidrs = client_cidrs_of(cluster);
    in.pool = matching_hosts(cluster, manifests_.hosts);
    if (placed) in.hosts = *placed;
    check_cluster_name(cluster);
    for (const auto* host : in.hosts)
      if (host->address.empty()) error(*host, "spec.address", "Host " + host->metadata.name + " has no address");
    json dynamic = dynamic_config(in);
    if (!placed || error_count() != errors_before) return std::nullopt;
    return build(in, std::move(dynamic));
  }

 private:
  std::size_t error_count() const {
    return static_cast<std::size_t>(std::count_if(diagnostics_.begin(), diagnostics_.end(),
                                                  [](const Diagnostic& d) { return d.severity == Severity::error; }));
  }
  void error(const manifests::ManifestBase& m, const std::string& field, std::string message) {
    diagnostics_.push_back(Diagnostic{Severity::error, m.locations.at(field), field, std::move(message)});
  }
  void warning(const manifests::ManifestBase& m, const std::string& field, std::string message) {
    diagnostics_.push_back(Diagnostic{Severity::warning, m.locations.at(field), field, std::move(message)});
  }

  int major_of(const manifests::SGCluster& cluster) {
    auto major = postgres_major(cluster.postgres_version);
    if (!major) {
      error(cluster, "spec.postgres.version",
            "must be a PostgreSQL version such as \"15\" or \"16.1\" (got \"" + cluster.postgres_version + "\")");
      return 0;
    }
    std::vector<std::string> notes;
    // Whether the hosts' package sources have postgresql-<major> is checked at plan time, per
    // host (host_prep.cpp): Debian 12 has only 15, Ubuntu 24.04 16, PGDG all of them.
    if (cluster.postgres_version.find('.') != std::string::npos)
      notes.push_back("the minor version is not pinned: the hosts get the newest " + std::to_string(*major) +
                      ".x their repositories have");
    if (!notes.empty()) warning(cluster, "spec.postgres.version", join(notes, "; "));
    return *major;
  }

  // Same namespace first (StackGres references are namespaced), else the only one of that name.
  template <typename T>
  const T* find_named(const std::vector<T>& all, const std::string& name, const std::string& ns) {
    const T* any = nullptr;
    for (const auto& m : all) {
      if (m.metadata.name != name) continue;
      if (m.metadata.namespace_ == ns) return &m;
      if (!any) any = &m;
    }
    return any;
  }

  const manifests::SGPostgresConfig* postgres_config_of(const manifests::SGCluster& cluster) {
    if (cluster.sg_postgres_config.empty()) return nullptr;
    const auto* config = find_named(manifests_.postgres_configs, cluster.sg_postgres_config, cluster.metadata.namespace_);
    if (!config)
      error(cluster, "spec.configurations.sgPostgresConfig",
            "no SGPostgresConfig named \"" + cluster.sg_postgres_config + "\"");
    return config;
  }

  const manifests::EtcdCluster* dcs_of(const manifests::SGCluster& cluster) {
    const auto& all = manifests_.etcd_clusters;
    std::vector<std::string> names;
    for (const auto& e : all) names.push_back(e.metadata.name);
    const manifests::EtcdCluster* dcs = nullptr;
    auto annotation = cluster.metadata.annotations.find(manifests::k_dcs_annotation);
    std::string field = std::string("metadata.annotations.") + manifests::k_dcs_annotation;
    if (annotation != cluster.metadata.annotations.end()) {
      for (const auto& e : all)
        if (e.metadata.name == annotation->second) dcs = &e;
      if (!dcs) {
        error(cluster, field,
              "no EtcdCluster named \"" + annotation->second + "\"" +
                  (names.empty() ? std::string(" (none is declared)") : " (declared: " + join(names, ", ") + ")"));
        return nullptr;
      }
    } else if (all.empty()) {
      error(cluster, "metadata.name",
            "cluster \"" + cluster.metadata.name + "\" needs an EtcdCluster for Patroni's DCS, but none is declared");
      return nullptr;
    } else if (all.size() > 1) {
      error(cluster, "metadata.annotations",
            "cluster \"" + cluster.metadata.name + "\": " + std::to_string(all.size()) +
                " EtcdClusters are declared (" + join(names, ", ") + "); name one with the annotation " +
                manifests::k_dcs_annotation);
      return nullptr;
    } else {
      dcs = &all.front();
    }
    if (etcd_client_endpoints(*dcs, manifests_.hosts).empty()) {
      error(*dcs, dcs->managed() ? "spec.hosts" : "spec.endpoints",
            "EtcdCluster \"" + dcs->metadata.name + "\" has no " + (dcs->managed() ? "hosts" : "endpoints"));
      return nullptr;
    }
    return dcs;
  }

  std::vector<std::string> client_cidrs_of(const manifests::SGCluster& cluster) {
    std::vector<std::string> out;
    auto it = cluster.metadata.annotations.find(k_client_cidrs_annotation);
    if (it == cluster.metadata.annotations.end()) return out;
    std::string field = std::string("metadata.annotations.") + k_client_cidrs_annotation;
    std::string text = it->second;
    std::replace(text.begin(), text.end(), ',', ' ');
    for (const auto& word : split(text, ' ')) {
      std::string entry = trim(word);
      if (entry.empty()) continue;
      auto cidr = client_cidr(entry);
      if (!cidr) {
        error(cluster, field, "\"" + entry + "\" is not an IPv4/IPv6 address or CIDR");
        continue;
      }
      if (cidr->ends_with("/0"))
        warning(cluster, field, *cidr + " lets every address try to log in to every database");
      out.push_back(*cidr);
    }
    return out;
  }

  void check_cluster_name(const manifests::SGCluster& cluster) {
    for (const auto& other : manifests_.clusters) {
      if (&other == &cluster) break;
      if (other.metadata.name == cluster.metadata.name)
        error(cluster, "metadata.name",
              "cluster name \"" + cluster.metadata.name + "\" is already used in namespace \"" +
                  other.metadata.namespace_ + "\" (the Patroni scope and the files on the hosts are named after it)");
    }
    if (cluster.metadata.name == "main")
      warning(cluster, "metadata.name",
              "a cluster named \"main\" uses the data directory of the cluster Debian's postgresql package "
              "creates (/var/lib/postgresql/<major>/main)");
  }

  // synchronous_mode / _strict / _node_count for the mode (docs/replication-semantics.md §2).
  static json replication_keys(ReplicationMode mode, int instances, int sync_instances) {
    bool strict = manifests::is_strict(mode);
    switch (mode) {
      case ReplicationMode::async:
        return {{"synchronous_mode", false}, {"synchronous_mode_strict", false}};
      case ReplicationMode::sync:
      case ReplicationMode::strict_sync:
        return {{"synchronous_mode", true}, {"synchronous_mode_strict", strict},
                {"synchronous_node_count", sync_instances}};
      case ReplicationMode::sync_all:
      case ReplicationMode::strict_sync_all:
        if (instances < 2) return {{"synchronous_mode", false}, {"synchronous_mode_strict", false}};
        return {{"synchronous_mode", true}, {"synchronous_mode_strict", strict},
                {"synchronous_node_count", instances - 1}};
    }
    return json::object();
  }

  // spec.configurations.patroni.dynamicConfig: only Patroni's documented keys, each checked
  // (manifests/dynamic_config.hpp), without the keys pgconverge owns or takes from elsewhere.
  // validate() refuses the same input first; this holds for whatever reaches the compiler.
  json dynamic_overrides(const manifests::SGCluster& cluster) {
    json out = json::object();
    const auto& given = cluster.patroni_dynamic_config;
    if (given.is_null()) return out;
    const std::string base = "spec.configurations.patroni.dynamicConfig";
    if (!given.is_object()) {
      error(cluster, base, "must be a mapping");
      return out;
    }
    for (auto it = given.begin(); it != given.end(); ++it) {
      const std::string& key = it.key();
      std::string field = base + "." + key;
      if (it.value().is_null()) continue;
      if (mode_keys().contains(key)) {
        warning(cluster, field, "ignored (set from spec.replication.mode)");
        continue;
      }
      if (auto reason = manifests::ignored_dynamic_key_reason(key)) {
        warning(cluster, field, "ignored (" + *reason + ")");
        continue;
      }
      if (key == "postgresql" && it.value().is_object())
        for (auto sub = it.value().begin(); sub != it.value().end(); ++sub)
          if (auto reason = manifests::postgresql_key_ignored_reason(sub.key()))
            warning(cluster, field + "." + sub.key(), "ignored (" + *reason + ")");
      auto findings = manifests::check_dynamic_config(json{{key, it.value()}}, base, false, cluster.ssl.enabled);
      for (auto& finding : findings) error(cluster, finding.field, std::move(finding.message));
      if (findings.empty() && manifests::passed_dynamic_key(key)) out[key] = it.value();
    }
    return out;
  }

  // postgresql.parameters: the SGPostgresConfig's, minus what Patroni sets, plus what
  // replication needs.
  json postgres_parameters(const ClusterInputs& in) {
    json params = json::object();
    const auto* config = in.postgres_config;
    auto field = [](const std::string& name) { return "spec.postgresql.conf." + name; };
    if (config) {
      // PostgreSQL reads names case-insensitively: they are passed in lower case, so that
      // "Archive_Command" is archive_command here too. validate() refuses the same input first.
      for (const auto& [name, value] : config->parameters) {
        if (auto found = find_line_break(value)) {
          error(*config, field(name), line_break_message(*found));
          continue;
        }
        if (auto refused = manifests::refused_parameter(name, value)) {
          error(*config, field(name), *refused);
          continue;
        }
        if (auto reason = managed_parameter_reason(lower(name))) {
          warning(*config, field(name), "ignored (" + *reason + ")");
          continue;
        }
        params[lower(name)] = value;
      }
    }
    auto user = [&](const std::string& name) -> std::optional<std::string> {
      if (!config) return std::nullopt;
      for (const auto& [given, value] : config->parameters)
        if (lower(given) == name) return value;
      return std::nullopt;
    };
    // Settings replication depends on: forced, with a warning when the manifest disagrees.
    auto force = [&](const std::string& name, const std::string& value, bool agrees, const std::string& why) {
      auto given = user(name);
      if (given && !agrees && !managed_parameter_reason(name))
        warning(*config, field(name), "set to " + value + " instead (" + why + ")");
      params[name] = value;
    };
    // On a VM the profile's memory is the member's RAM (docs/manifests.md): size PostgreSQL's
    // memory from it, 25 % for shared_buffers and 75 % for effective_cache_size, unless the
    // SGPostgresConfig sets them.
    if (in.profile) {
      if (auto bytes = memory_bytes(in.profile->memory)) {
        long long mib = *bytes / (1024 * 1024);
        if (!user("shared_buffers") && mib / 4 >= 16) params["shared_buffers"] = std::to_string(mib / 4) + "MB";
        if (!user("effective_cache_size") && mib * 3 / 4 >= 16)
          params["effective_cache_size"] = std::to_string(mib * 3 / 4) + "MB";
      }
    }
    auto wal_level = user("wal_level");
    if (wal_level && lower(trim(*wal_level)) == "logical") {
      params["wal_level"] = "logical";
    } else {
      force("wal_level", "replica", wal_level && lower(trim(*wal_level)) == "replica", "streaming replicas need it");
    }
    auto hot_standby = user("hot_standby");
    force("hot_standby", "on", hot_standby && postgres_on(*hot_standby), "replicas serve reads and Patroni checks them");
    force("wal_log_hints", "on", true, "pg_rewind needs it");
    auto encryption = user("password_encryption");
    force("password_encryption", "scram-sha-256", encryption && lower(trim(*encryption)) == "scram-sha-256",
          "pg_hba authenticates with scram-sha-256");
    int floor = std::max(k_min_wal_senders, std::max(in.cluster->instances, 0) + k_wal_sender_margin);
    for (const std::string name : {"max_wal_senders", "max_replication_slots"}) {
      auto given = user(name);
      auto n = given ? parse_small_int(trim(*given)) : std::nullopt;
      if (n && *n >= floor) continue;  // the manifest's value is kept as written
      if (given)
        warning(*config, field(name),
                "raised to " + std::to_string(floor) + " (one per member plus " + std::to_string(k_wal_sender_margin) +
                    " for base backups and scale-up)");
      params[name] = std::to_string(floor);
    }
    if (in.major >= 13) {
      if (!user("wal_keep_size")) params["wal_keep_size"] = k_default_wal_keep_size;
    } else if (!user("wal_keep_segments")) {
      params["wal_keep_segments"] = "32";
    }
    return params;
  }

  // pg_hba: peer for the local postgres user, replication from 127.0.0.1 (a rejoining former
  // primary connects that way), and scram-sha-256 from every host the cluster may use (so that
  // scaling within the pool never waits on a pg_hba change) and the declared clients.
  // With TLS (spec.postgres.ssl.enabled, the default) every line for an address that crosses the
  // network is hostssl: a replica or client without TLS finds no line and is refused. What stays
  // `host` never leaves the host: replication from 127.0.0.1, and the superuser from the host's
  // own addresses (samehost) — pgconverge, whose connection arrives through the host's SSH.
  // The lines the SGCluster declares (dynamicConfig.postgresql.pg_hba, checked by
  // manifests/pg_hba_rules.hpp) come after the lines that Patroni, the sidecars, replication and
  // pgconverge's own access need, and before those that admit everyone else: StackGres puts
  // them first of all, but then a declared `reject` could lock the controller or the replicas out.
  static json pg_hba(const ClusterInputs& in) {
    const bool tls = in.cluster->ssl.enabled;
    const std::string network = tls ? "hostssl " : "host ";
    const auto declared = manifests::declared_pg_hba(in.cluster->patroni_dynamic_config);
    json lines = json::array();
    lines.push_back(std::string("local all ") + k_superuser + " peer");
    for (auto& line : sidecar_hba_lines(*in.cluster)) lines.push_back(std::move(line));  // PgBouncer, exporter
    lines.push_back(std::string("host replication ") + k_replication_user + " 127.0.0.1/32 scram-sha-256");
    if (tls || !declared.empty()) lines.push_back(std::string("host all ") + k_superuser + " samehost scram-sha-256");
    std::vector<std::string> addresses;
    for (const auto* h : in.pool)
      if (!h->address.empty()) addresses.push_back(hba_address(h->address));
    for (const auto* h : in.hosts)
      if (!h->address.empty() && std::find(addresses.begin(), addresses.end(), hba_address(h->address)) == addresses.end())
        addresses.push_back(hba_address(h->address));
    for (const auto& a : addresses)
      lines.push_back(network + "replication " + k_replication_user + " " + a + " scram-sha-256");
    for (const auto& line : declared) lines.push_back(line);
    for (const auto& a : addresses) lines.push_back(network + "all all " + a + " scram-sha-256");
    // Clients: only the declared CIDRs. Never 0.0.0.0/0. pgconverge itself needs none: it observes
    // members through the host's SSH, from the host's address (the lines above).
    for (const auto& c : in.client_cidrs) lines.push_back(network + "all all " + c + " scram-sha-256");
    return lines;
  }

  json dynamic_config(const ClusterInputs& in) {
    const auto& cluster = *in.cluster;
    json config = {{"ttl", 30}, {"loop_wait", 10}, {"retry_timeout", 10}, {"check_timeline", true}};
    json overrides = dynamic_overrides(cluster);
    for (auto it = overrides.begin(); it != overrides.end(); ++it) config[it.key()] = it.value();
    int sync_instances = cluster.replication.sync_instances.value_or(1);
    json keys = replication_keys(cluster.replication.mode, cluster.instances, sync_instances);
    for (auto it = keys.begin(); it != keys.end(); ++it) config[it.key()] = it.value();
    config["postgresql"] = {{"use_pg_rewind", true}, {"use_slots", true},
                            {"parameters", postgres_parameters(in)}, {"pg_hba", pg_hba(in)}};
    int ttl = config.value("ttl", 30);
    int loop_wait = config.value("loop_wait", 10);
    int retry_timeout = config.value("retry_timeout", 10);
    if (config["ttl"].is_number_integer() && loop_wait + 2 * retry_timeout > ttl)
      warning(cluster, "spec.configurations.patroni.dynamicConfig",
              "loop_wait + 2 × retry_timeout (" + std::to_string(loop_wait + 2 * retry_timeout) +
                  ") exceeds ttl (" + std::to_string(ttl) + "): Patroni may lose the leader lock on a short DCS hiccup");
    return config;
  }

  static MemberTags tags_for(Role role) {
    switch (role) {
      case Role::ha_read: return {false, false};
      case Role::ha: return {false, true};
      case Role::readonly: return {true, false};
      case Role::none: return {true, true};
    }
    return {};
  }

  // etcd3.hosts wants host:port; a scheme in an endpoint becomes etcd3.protocol.
  json etcd3_section(const manifests::EtcdCluster& dcs) const {
    json hosts = json::array();
    bool https = false;
    for (const auto& endpoint : etcd_client_endpoints(dcs, manifests_.hosts)) {
      std::string e = endpoint;
      if (starts_with(e, "https://")) {
        https = true;
        e = e.substr(8);
      } else if (starts_with(e, "http://")) {
        e = e.substr(7);
      }
      while (!e.empty() && e.back() == '/') e.pop_back();
      hosts.push_back(e);
    }
    json section = {{"hosts", hosts}};
    if (https) section["protocol"] = "https";
    auto files = etcd_patroni_tls_files(dcs.metadata.name);
    if (dcs.managed() && dcs.tls_enabled) {
      // The etcd pgconverge runs asks every client for a certificate from its CA (etcd_tls.hpp).
      section["protocol"] = "https";
      section["cacert"] = files.ca;
      section["cert"] = files.certificate;
      section["key"] = files.private_key;
    } else if (!dcs.managed() && https && !dcs.tls_ca_file.empty()) {
      // An external etcd over https: its CA, and the client certificate when given, copied to the host.
      section["cacert"] = files.ca;
      if (!dcs.tls_certificate_file.empty()) {
        section["cert"] = files.certificate;
        section["key"] = files.private_key;
      }
    }
    return section;
  }

  // One member of a built cluster: slot on host, with its Patroni configuration.
  static DesiredMember member(const DesiredCluster& out, const MemberSlot& slot, const manifests::Host& host,
                              const json& etcd3, json& bootstrap_dcs) {
    std::string major = std::to_string(out.postgres_major);
    std::string data_dir = "/var/lib/postgresql/" + major + "/" + out.name;
    DesiredMember m;
    m.name = out.name + "-" + std::to_string(slot.index);
    m.slot = slot.index;
    m.data_dir = data_dir;
    m.host = host.metadata.name;
    m.address = host.address;
    m.certificate = member_certificate(m.name, host.address);
    m.group = slot.group;
    m.role = slot.role;
    m.tags = tags_for(slot.role);
    m.config_path = "/etc/patroni/" + major + "-" + out.name + ".yml";
    m.service = "patroni@" + major + "-" + out.name;
    if (out.ssl.enabled) m.tls = tls_files(out.postgres_major, out.name);
    m.patroni_config = {
        {"scope", out.name},
        {"namespace", k_patroni_namespace},
        {"name", m.name},
        {"restapi",
         {{"listen", host_port(host.address, k_restapi_port)},
          {"connect_address", host_port(host.address, k_restapi_port)},
          {"authentication", {{"username", k_restapi_user}, {"password", secret_reference(SecretKind::restapi)}}}}},
        {"etcd3", etcd3},
        // bootstrap.pg_hba repeats the DCS lines: Patroni 3.0.2's --validate-config requires it,
        // and Patroni uses the DCS pg_hba anyway once it exists.
        {"bootstrap",
         {{"dcs", bootstrap_dcs},
          {"initdb", json::array({{{"encoding", "UTF8"}}, "data-checksums"})},
          {"pg_hba", bootstrap_dcs["postgresql"]["pg_hba"]}}},
        {"postgresql",
         {{"listen", host.address + ",127.0.0.1:" + std::to_string(k_postgres_port)},
          {"connect_address", host_port(host.address, k_postgres_port)},
          {"data_dir", data_dir},
          {"bin_dir", out.bin_dir},
          {"pgpass", "/var/lib/postgresql/" + major + "/" + out.name + ".pgpass"},
          {"use_unix_socket", true},
          {"authentication",
           {{"superuser", {{"username", k_superuser}, {"password", secret_reference(SecretKind::superuser)}}},
            {"replication",
             {{"username", k_replication_user}, {"password", secret_reference(SecretKind::replication)}}},
            {"rewind", {{"username", k_rewind_user}, {"password", secret_reference(SecretKind::rewind)}}}}},
          {"parameters", {{"unix_socket_directories", k_socket_dir}}}}},
        // Real booleans: Patroni 3.0.2 reads the string "false" as true (docs/replication-semantics.md §3).
        {"tags",
         {{"nofailover", m.tags.nofailover},
          {"noloadbalance", m.tags.noloadbalance},
          {"clonefrom", false},
          {"nosync", false}}},
    };
    if (out.ssl.enabled) add_tls(m, out.ssl);
    return m;
  }

  // TLS on the links between hosts (docs/security.md "Links"): PostgreSQL serves TLS with the
  // member's certificate, replicas and pg_rewind verify the primary's against the cluster's CA
  // (and its address too when pgconverge issued it: a given certificate is one for every member),
  // and Patroni's REST API serves https only, its calls to other members verifying them the same
  // way (Patroni takes restapi.cafile as their CA and presents restapi.certfile).
  static void add_tls(DesiredMember& m, const DesiredSsl& ssl) {
    auto& pg = m.patroni_config["postgresql"];
    pg["parameters"]["ssl"] = "on";
    pg["parameters"]["ssl_cert_file"] = m.tls.certificate;
    pg["parameters"]["ssl_key_file"] = m.tls.private_key;
    pg["parameters"]["ssl_ca_file"] = m.tls.ca;
    const std::string verify = ssl.generated() ? "verify-full" : "verify-ca";
    for (const char* user : {"replication", "rewind"}) {
      pg["authentication"][user]["sslmode"] = verify;
      pg["authentication"][user]["sslrootcert"] = m.tls.ca;
    }
    auto& api = m.patroni_config["restapi"];
    api["certfile"] = m.tls.certificate;
    api["keyfile"] = m.tls.private_key;
    api["cafile"] = m.tls.ca;
  }

  DesiredCluster build(const ClusterInputs& in, json dynamic) {
    const auto& cluster = *in.cluster;
    DesiredCluster out;
    out.name = cluster.metadata.name;
    out.namespace_ = cluster.metadata.namespace_;
    out.mode = cluster.replication.mode;
    out.role = cluster.replication.role;
    out.instances = cluster.instances;
    if (cluster.replication.mode == ReplicationMode::sync || cluster.replication.mode == ReplicationMode::strict_sync)
      out.sync_instances = cluster.replication.sync_instances.value_or(1);
    out.postgres_version = cluster.postgres_version;
    out.postgres_major = in.major;
    std::string major = std::to_string(in.major);
    out.bin_dir = "/usr/lib/postgresql/" + major + "/bin";
    out.dcs_name = in.dcs->metadata.name;
    json etcd3 = etcd3_section(*in.dcs);
    for (const auto& h : etcd3["hosts"]) out.etcd_endpoints.push_back(h.get<std::string>());
    out.dynamic_config = std::move(dynamic);
    out.packages = {"postgresql-" + major, "postgresql-client-" + major, "patroni", "python3-etcd"};
    if (in.major != k_debian_postgres_major) out.repositories = {"pgdg"};
    out.where = cluster.locations.at("");
    out.ssl = compile_ssl(cluster, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()),
                          diagnostics_);
    if (in.profile) {
      out.profile_name = in.profile->metadata.name;
      out.memory_bytes = memory_bytes(in.profile->memory);
      const std::string& cpu = in.profile->cpu;
      if (!cpu.empty() && cpu.back() == 'm') {
        if (auto milli = memory_bytes(cpu.substr(0, cpu.size() - 1))) out.cpus = static_cast<double>(*milli) / 1000.0;
      } else if (auto cores = memory_bytes(cpu)) {
        out.cpus = static_cast<double>(*cores);
      }
    }
    if (!cluster.persistent_volume_size.empty()) out.volume_bytes = memory_bytes(cluster.persistent_volume_size);
    suspension(cluster.metadata.annotations, out);

    // Strict modes bootstrap non-strict: strict with no streaming replica blocks every write,
    // bootstrap included (docs/replication-semantics.md §5.4); apply enables strict once a replica streams.
    json bootstrap_dcs = out.dynamic_config;
    bootstrap_dcs["synchronous_mode_strict"] = false;

    auto slots = member_slots(cluster);
    for (std::size_t i = 0; i < slots.size() && i < in.hosts.size(); ++i)
      out.members.push_back(member(out, slots[i], *in.hosts[i], etcd3, bootstrap_dcs));
    const manifests::SGPoolingConfig* pooling = nullptr;
    if (!cluster.sg_pooling_config.empty())
      pooling = find_named(manifests_.pooling_configs, cluster.sg_pooling_config, cluster.metadata.namespace_);
    for (auto& problem : add_sidecars(out, cluster, pooling)) {
      if (pooling) error(*pooling, "spec.pgBouncer.pgbouncer.ini", std::move(problem));
      else error(cluster, "spec.configurations.sgPoolingConfig", std::move(problem));
    }
    return out;
  }

  const manifests::ManifestSet& manifests_;
  Diagnostics& diagnostics_;
};

}  // namespace

CompileResult compile(const manifests::ManifestSet& manifests, const PlacementHistory& history) {
  CompileResult result;
  auto placements = place_all(manifests, history);
  result.diagnostics = placements.diagnostics;
  Compiler compiler(manifests, result.diagnostics);
  for (const auto& cluster : manifests.clusters) {
    auto placed = placements.by_cluster.find(cluster.metadata.name);
    const SlotHosts* hosts = placed == placements.by_cluster.end() ? nullptr : &placed->second;
    if (auto compiled = compiler.compile_cluster(cluster, hosts)) result.state.clusters.push_back(std::move(*compiled));
  }
  result.state.etcds = compile_etcds(manifests, result.diagnostics);
  result.state.external_etcds = compile_external_etcds(
      manifests, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()), result.diagnostics);
  // Nothing partially compiled: one error anywhere and the desired state is empty.
  if (has_errors(result.diagnostics)) result.state = {};
  std::stable_sort(result.diagnostics.begin(), result.diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.where.file != b.where.file) return a.where.file < b.where.file;
    if (a.where.line != b.where.line) return a.where.line < b.where.line;
    return a.where.column < b.where.column;
  });
  return result;
}

}  // namespace pgc::reconciler

// validate(): StackGres' own rules (docs/replication-semantics.md §4), references between manifests, duplicates and DCS.
#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <string_view>

#include "manifests/dynamic_config.hpp"
#include "manifests/kind_parts.hpp"
#include "manifests/kinds.hpp"
#include "manifests/line_break_scan.hpp"
#include "manifests/loader.hpp"
#include "manifests/pool_roles.hpp"
#include "manifests/pgbouncer_grammar.hpp"
#include "manifests/postgres_parameters.hpp"
#include "manifests/schema.hpp"
#include "util/line_breaks.hpp"
#include "util/net_address.hpp"
#include "util/strings.hpp"

namespace pgc::manifests {

namespace {

}  // namespace

const std::set<std::string, std::less<>>& pgbouncer_blocklist() {
  static const std::set<std::string, std::less<>> names{
      "admin_users",          "application_name_add_host", "auth_file",           "auth_hba_file",
      "auth_query",           "auth_type",                 "auth_user",           "client_tls_ca_file",
      "client_tls_cert_file", "client_tls_ciphers",        "client_tls_dheparams", "client_tls_ecdhcurve",
      "client_tls_key_file",  "client_tls_protocols",      "client_tls_sslmode",  "conffile",
      "disable_pqexec",       "dns_max_ttl",               "dns_nxdomain_ttl",    "dns_zone_check_period",
      "listen_addr",          "listen_backlog",            "listen_port",         "logfile",
      "pidfile",              "resolv_conf",               "server_check_delay",        "server_check_query",  "server_fast_close",
      "server_lifetime",      "server_round_robin",        "server_tls_ca_file",  "server_tls_cert_file",
      "server_tls_ciphers",   "server_tls_key_file",       "server_tls_protocols", "server_tls_sslmode",
      "stats_period",         "stats_users",               "syslog",              "syslog_facility",
      "syslog_ident",         "tcp_defer_accept",          "tcp_keepalive",       "tcp_keepcnt",
      "tcp_keepidle",         "tcp_keepintvl",             "tcp_socket_buffer",   "unix_socket_dir",
      "unix_socket_group",    "unix_socket_mode",          "user",                "verbose"};
  return names;
}

namespace {

// Reports findings about one manifest, at the location of the field they concern.
class Reporter {
 public:
  Reporter(const ManifestBase& m, Diagnostics& diagnostics) : m_(m), diagnostics_(diagnostics) {}

  void error(const std::string& field, std::string message) { add(Severity::error, field, std::move(message)); }
  void warning(const std::string& field, std::string message) { add(Severity::warning, field, std::move(message)); }

  // True when field, one of its ancestors or one of its descendants had the wrong type: rules
  // reading it would only repeat the schema error with a default value.
  [[nodiscard]] bool invalid(const std::string& field) const {
    auto below = [](const std::string& path, const std::string& prefix) {
      return path.size() > prefix.size() && starts_with(path, prefix) &&
             (path[prefix.size()] == '.' || path[prefix.size()] == '[');
    };
    return std::any_of(m_.invalid_fields.begin(), m_.invalid_fields.end(), [&](const std::string& p) {
      return p == field || below(p, field) || below(field, p);
    });
  }

  [[nodiscard]] SourceLocation at(const std::string& field) const { return m_.locations.at(field); }

 private:
  void add(Severity severity, const std::string& field, std::string message) {
    diagnostics_.push_back(Diagnostic{severity, m_.locations.at(field), field, std::move(message)});
  }

  const ManifestBase& m_;
  Diagnostics& diagnostics_;
};

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

// A value that reaches a rendered file (patroni.yml, postgresql.conf, pgbouncer.ini) is one line:
// no control character and no Unicode line break (util/line_breaks.hpp).
std::optional<std::string> line_break_problem(std::string_view text) {
  if (auto found = find_line_break(text)) return line_break_message(*found);
  return std::nullopt;
}

// Kubernetes label and annotation syntax: keys are [prefix/]name, values are label values.
const char* const k_label_name_rule = "^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$, at most 63 characters";
bool is_label_value(const std::string& text) {
  static const std::regex form("(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?");
  return text.size() <= 63 && std::regex_match(text, form);
}
bool is_qualified_key(const std::string& key) {
  static const std::regex prefix(R"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)");
  auto slash = key.find('/');
  std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
  if (slash != std::string::npos &&
      (slash == 0 || slash > 253 || !std::regex_match(key.substr(0, slash), prefix)))
    return false;
  return !name.empty() && is_label_value(name);
}

// Labels (metadata.labels, nodeSelector): keys and values are matched against Hosts, so they
// follow Kubernetes' syntax; annotation keys do too, their values are free text.
void check_labels(const std::map<std::string, std::string>& labels, const std::string& base, bool values,
                  Reporter& r) {
  const char* what = values ? "label" : "annotation";
  for (const auto& [key, value] : labels) {
    if (scan_refuses_key(key) || (values && scan_refuses_value(value))) continue;  // reported by scan_line_breaks
    if (!is_qualified_key(key)) {
      r.error(base, std::string("invalid ") + what + " key " + quoted(key) + " (must be [prefix/]name, name " +
                        k_label_name_rule + ", prefix a DNS subdomain)");
    } else if (values && !is_label_value(value)) {
      r.error(child_path(base, key),
              "invalid label value " + quoted(value) + " (must match " + k_label_name_rule + ", or be empty)");
    }
  }
}

std::string known_majors_text() {
  std::vector<std::string> majors;
  for (int major : known_postgres_majors()) majors.push_back(std::to_string(major));
  return join_or(majors);
}

bool known_major(int major) {
  const auto& majors = known_postgres_majors();
  return std::find(majors.begin(), majors.end(), major) != majors.end();
}

// How a kind's manifests are named: SGCluster names are stricter; Host/EtcdCluster are global.
struct KindRules {
  std::string kind;
  bool namespaced = true;
  bool cluster_name = false;
};

// metadata.name / metadata.namespace syntax.
void check_identity(const ManifestBase& m, const KindRules& rules, Diagnostics& diagnostics) {
  Reporter r(m, diagnostics);
  static const std::regex cluster_name("[a-z]([-a-z0-9]*[a-z0-9])?");
  static const std::regex subdomain(R"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)");
  static const std::regex label("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  const std::string& name = m.metadata.name;
  if (!r.invalid("metadata.name")) {
    const bool cluster = rules.cluster_name;
    const std::size_t max = cluster ? 44 : 253;
    if (name.empty()) {
      r.error("metadata.name", "is required");
    } else if (!std::regex_match(name, cluster ? cluster_name : subdomain)) {
      r.error("metadata.name", "must match " +
                                   std::string(cluster ? "^[a-z]([-a-z0-9]*[a-z0-9])?$"
                                                       : R"(^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)") +
                                   " (got " + quoted(name) + ")");
    } else if (name.size() > max) {
      r.error("metadata.name", "must be at most " + std::to_string(max) + " characters, got " +
                                   std::to_string(name.size()));
    }
  }
  if (!r.invalid("metadata.labels")) check_labels(m.metadata.labels, "metadata.labels", true, r);
  if (!r.invalid("metadata.annotations")) check_labels(m.metadata.annotations, "metadata.annotations", false, r);
  if (rules.namespaced && !r.invalid("metadata.namespace")) {
    const std::string& ns = m.metadata.namespace_;
    if (!std::regex_match(ns, label))
      r.error("metadata.namespace", "must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (got " + quoted(ns) + ")");
    else if (ns.size() > 63)
      r.error("metadata.namespace", "must be at most 63 characters, got " + std::to_string(ns.size()));
  }
}

// Duplicate names of one kind: per namespace for StackGres kinds, globally for Host/EtcdCluster.
void check_duplicates(const std::vector<const ManifestBase*>& manifests, const KindRules& rules,
                      Diagnostics& diagnostics) {
  std::map<std::pair<std::string, std::string>, const ManifestBase*> seen;
  for (const auto* p : manifests) {
    const ManifestBase& m = *p;
    if (m.metadata.name.empty()) continue;
    const bool namespaced = rules.namespaced;
    auto key = std::make_pair(namespaced ? m.metadata.namespace_ : std::string(), m.metadata.name);
    auto [it, inserted] = seen.emplace(key, &m);
    if (inserted) continue;
    std::string message = "duplicate " + rules.kind + " " + quoted(m.metadata.name);
    if (namespaced) message += " in namespace " + quoted(m.metadata.namespace_);
    message += " (first declared at " + it->second->locations.at("metadata.name").str() + ")";
    Reporter(m, diagnostics).error("metadata.name", message);
  }
}

// "SGPostgresConfig \"x\" not found in namespace \"y\" (did you mean 'z'?)"
template <typename T>
const T* find_reference(const std::vector<T>& candidates, const std::string& kind, const std::string& name,
                        const std::string& namespace_, const std::string& field, Reporter& r) {
  std::vector<std::string> names;
  for (const auto& c : candidates) {
    if (c.metadata.namespace_ != namespace_) continue;
    if (c.metadata.name == name) return &c;
    names.push_back(c.metadata.name);
  }
  std::string message = kind + " " + quoted(name) + " not found in namespace " + quoted(namespace_);
  if (auto hint = did_you_mean(name, names)) message += " (did you mean '" + *hint + "'?)";
  r.error(field, message);
  return nullptr;
}

void check_postgres_version(const SGCluster& c, Reporter& r) {
  const std::string field = "spec.postgres.version";
  if (r.invalid(field)) return;
  if (c.postgres_version.empty()) {
    r.error(field, "is required");
    return;
  }
  auto major = postgres_major(c.postgres_version);
  if (!major) {
    r.error(field, "must be MAJOR or MAJOR.MINOR, e.g. 15 or 16.1 (got " + quoted(c.postgres_version) + ")");
  } else if (!known_major(*major)) {
    r.error(field, "major must be " + known_majors_text() + " (got " + quoted(c.postgres_version) + ")");
  }
  if (!r.invalid("spec.postgres.flavor") && c.postgres_flavor != "vanilla")
    r.error("spec.postgres.flavor", "must be vanilla (got " + quoted(c.postgres_flavor) + ")");
}

void check_replication(const SGCluster& c, Reporter& r) {
  const Replication& rep = c.replication;
  const bool instances_ok = !r.invalid("spec.instances");
  if (instances_ok && c.instances < 0)
    r.error("spec.instances", "must be at least 0, got " + std::to_string(c.instances));
  // StackGres scales a cluster to zero (its pods stop, its volumes stay). pgconverge cannot plan
  // that yet: with no member declared it would find none to stop and none to ask. Refused rather
  // than left running while the manifest says stopped.
  if (instances_ok && c.instances == 0)
    r.error("spec.instances", "0 (scaling to zero) is not supported by pgconverge yet: the members would keep "
                              "running; to stop applying changes, annotate pgconverge.io/suspend: \"true\"");
  // Every member's bootstrap config lists the cluster's hosts (pg_hba): members × hosts grows
  // quadratically, and no Patroni cluster needs more members than this.
  if (instances_ok && c.instances > k_max_instances)
    r.error("spec.instances", "must be at most " + std::to_string(k_max_instances) + " (members of one cluster), got " +
                                  std::to_string(c.instances));

  // syncInstances: ≥ 1; < instances for sync/strict-sync (default 1); unused by the other modes.
  const std::string sync_field = "spec.replication.syncInstances";
  const bool sync_ok = !r.invalid(sync_field) && !r.invalid("spec.replication.mode");
  if (sync_ok && rep.sync_instances && *rep.sync_instances < 1)
    r.error(sync_field, "must be at least 1, got " + std::to_string(*rep.sync_instances));
  const bool counted = rep.mode == ReplicationMode::sync || rep.mode == ReplicationMode::strict_sync;
  if (sync_ok && instances_ok && counted && c.instances > 0) {  // 0 is refused above
    int sync = rep.sync_instances.value_or(1);
    if (sync >= 1 && c.instances <= sync) {
      std::string message = "must be less than spec.instances (" + std::to_string(c.instances) + "), got " +
                            std::to_string(sync);
      if (!rep.sync_instances) message += " (the default for " + to_string(rep.mode) + ")";
      r.error(sync_field, message);
    }
  }
  if (sync_ok && rep.sync_instances && !counted) {
    r.warning(sync_field, "ignored in " + to_string(rep.mode) + " mode (" +
                              (rep.mode == ReplicationMode::async ? "no replica is synchronous"
                                                                  : "every replica is synchronous") +
                              ")");
  }

  // Groups: ≥ 1 instance each, unique names, and the main group keeps at least one member.
  bool groups_ok = !r.invalid("spec.replication.groups");
  long long in_groups = 0;  // not int: groups of 2147483647 instances overflowed it (found by tests/fuzz)
  std::map<std::string, std::string> names;  // name → path of the first group using it
  for (std::size_t i = 0; i < rep.groups.size(); ++i) {
    const ReplicationGroup& g = rep.groups[i];
    const std::string path = item_path("spec.replication.groups", i);
    if (!r.invalid(path + ".instances") && g.instances < 1)
      r.error(path + ".instances", "must be at least 1, got " + std::to_string(g.instances));
    in_groups += g.instances;
    auto [it, inserted] = names.emplace(g.name, path);
    if (!inserted)
      r.error(path + ".name", "duplicate group name " + quoted(g.name) + " (first declared at " +
                                  r.at(it->second + ".name").str() + ")");
  }
  if (groups_ok && instances_ok && !rep.groups.empty() && c.instances > 0 && c.instances <= in_groups) {
    r.error("spec.instances", "must be greater than the sum of spec.replication.groups[].instances (" +
                                  std::to_string(in_groups) + "), got " + std::to_string(c.instances));
  }
}

void check_references(const SGCluster& c, const ManifestSet& set, Reporter& r) {
  const std::string& ns = c.metadata.namespace_;
  if (!c.sg_instance_profile.empty() && !r.invalid("spec.sgInstanceProfile"))
    find_reference(set.instance_profiles, "SGInstanceProfile", c.sg_instance_profile, ns, "spec.sgInstanceProfile", r);
  // Whole quantities as Kubernetes writes them, and StackGres's decimal form (its CRD's pattern
  // ^[0-9]+(\.[0-9]+)?(Mi|Gi|Ti)$, e.g. 1.8Ti), bounded so that the bytes fit.
  static const std::regex volume_size(R"([1-9][0-9]{0,11}(Ki|Mi|Gi|Ti|k|M|G|T)?|[0-9]{1,6}\.[0-9]{1,9}(Mi|Gi|Ti))");
  if (!c.persistent_volume_size.empty() && !r.invalid("spec.pods.persistentVolume.size") &&
      !std::regex_match(c.persistent_volume_size, volume_size))
    r.error("spec.pods.persistentVolume.size",
            "must be a size such as 10Gi, 500Mi, 1Ti or 1.8Ti (got " + quoted(c.persistent_volume_size) + ")");
  if (!c.sg_pooling_config.empty() && !r.invalid("spec.configurations.sgPoolingConfig"))
    find_reference(set.pooling_configs, "SGPoolingConfig", c.sg_pooling_config, ns,
                   "spec.configurations.sgPoolingConfig", r);
  const std::string pg_field = "spec.configurations.sgPostgresConfig";
  if (c.sg_postgres_config.empty() || r.invalid(pg_field)) return;
  const SGPostgresConfig* config =
      find_reference(set.postgres_configs, "SGPostgresConfig", c.sg_postgres_config, ns, pg_field, r);
  if (!config) return;
  auto cluster_major = postgres_major(c.postgres_version);
  auto config_major = postgres_major(config->postgres_version);
  if (cluster_major && config_major && *cluster_major != *config_major) {
    r.error(pg_field, "SGPostgresConfig " + quoted(config->metadata.name) + " has postgresVersion " +
                          config->postgres_version + ", which does not match the cluster's major " +
                          std::to_string(*cluster_major));
  }
}

void check_suspend(const SGCluster& c, Reporter& r) {
  auto it = c.metadata.annotations.find(k_suspend_annotation);
  if (it != c.metadata.annotations.end() && it->second != "true" && it->second != "false")
    r.error(std::string("metadata.annotations.") + k_suspend_annotation,
            "must be \"true\" or \"false\" (got " + quoted(it->second) + ")");
  // StackGres's pause takes any value (only "true", in any case, pauses): one that reads like a
  // wish to pause but does not pause is worth a word.
  auto pause = c.metadata.annotations.find(k_reconciliation_pause_annotation);
  if (pause != c.metadata.annotations.end() && lower(pause->second) != "true" && lower(pause->second) != "false")
    r.warning(std::string("metadata.annotations.") + k_reconciliation_pause_annotation,
              quoted(pause->second) + " does not pause (only \"true\" does, as in StackGres): the cluster is reconciled");
}

void check_dcs(const SGCluster& c, const ManifestSet& set, Reporter& r) {
  if (auto it = c.metadata.annotations.find(k_dcs_annotation); it != c.metadata.annotations.end()) {
    const std::string field = std::string("metadata.annotations.") + k_dcs_annotation;
    std::vector<std::string> names;
    for (const auto& e : set.etcd_clusters) {
      if (e.metadata.name == it->second) return;
      names.push_back(e.metadata.name);
    }
    std::string message = "EtcdCluster " + quoted(it->second) + " not found";
    if (auto hint = did_you_mean(it->second, names)) message += " (did you mean '" + *hint + "'?)";
    r.error(field, message);
    return;
  }
  if (set.etcd_clusters.empty()) {
    r.error("", "SGCluster " + quoted(c.metadata.name) +
                    " needs an EtcdCluster as Patroni's DCS, but none is declared");
  } else if (set.etcd_clusters.size() > 1) {
    std::vector<std::string> names;
    for (const auto& e : set.etcd_clusters) names.push_back(e.metadata.name);
    std::sort(names.begin(), names.end());
    r.error("metadata.annotations", "several EtcdClusters are declared (" + join(names, ", ") +
                                        "); set annotation " + k_dcs_annotation + " to choose one");
  }
}

// spec.configurations.patroni.dynamicConfig against Patroni's documented keys and value types
// (manifests/dynamic_config.cpp): nothing else reaches the DCS.
void check_dynamic_config(const SGCluster& c, Reporter& r) {
  const std::string base = "spec.configurations.patroni.dynamicConfig";
  if (r.invalid(base)) return;
  for (auto& finding : manifests::check_dynamic_config(c.patroni_dynamic_config, base, true, c.ssl.enabled))
    r.error(finding.field, std::move(finding.message));
}

// spec.postgres.ssl's selectors: both or neither, each a directory and a file name in it. Their
// files are read and checked by the compiler (reconciler/postgres_ssl.cpp): this layer knows
// nothing of files or certificates.
void check_ssl_selector(const std::optional<SecretKeySelector>& selector, const std::string& field, Reporter& r) {
  if (!selector || r.invalid(field)) return;
  if (selector->name.empty()) r.error(field + ".name", "is required (on VMs: the directory that holds the file)");
  if (selector->key.empty()) {
    r.error(field + ".key", "is required (on VMs: the file's name in the directory given by name)");
  } else if (selector->key.find('/') != std::string::npos || selector->key == "." || selector->key == "..") {
    r.error(field + ".key", "must be a file name in the directory given by name, without '/' (got " +
                                quoted(selector->key) + ")");
  }
}

void check_ssl(const SGCluster& c, Reporter& r) {
  const std::string base = "spec.postgres.ssl";
  const std::string cert = base + ".certificateSecretKeySelector", key = base + ".privateKeySecretKeySelector";
  check_ssl_selector(c.ssl.certificate, cert, r);
  check_ssl_selector(c.ssl.private_key, key, r);
  if (r.invalid(cert) || r.invalid(key)) return;
  if (c.ssl.certificate && !c.ssl.private_key)
    r.error(cert, "needs privateKeySecretKeySelector too (both are given, or neither and pgconverge's CA signs)");
  if (!c.ssl.certificate && c.ssl.private_key)
    r.error(key, "needs certificateSecretKeySelector too (both are given, or neither and pgconverge's CA signs)");
}

void check_cluster(const SGCluster& c, const ManifestSet& set, Diagnostics& diagnostics) {
  Reporter r(c, diagnostics);
  check_postgres_version(c, r);
  check_ssl(c, r);
  check_replication(c, r);
  check_references(c, set, r);
  check_dcs(c, set, r);
  check_suspend(c, r);
  check_dynamic_config(c, r);
  if (!r.invalid("spec.pods.scheduling.nodeSelector"))
    check_labels(c.node_selector, "spec.pods.scheduling.nodeSelector", true, r);
}

void check_postgres_config(const SGPostgresConfig& p, Diagnostics& diagnostics) {
  Reporter r(p, diagnostics);
  const std::string field = "spec.postgresVersion";
  if (!r.invalid(field)) {
    auto major = postgres_major(p.postgres_version);
    if (p.postgres_version.empty())
      r.error(field, "is required");
    else if (!major || !known_major(*major) || p.postgres_version.find('.') != std::string::npos)
      r.error(field, "must be " + known_majors_text() + " (got " + quoted(p.postgres_version) + ")");
  }
  // Names and values reach patroni.yml and postgresql.conf: a name is an identifier, a value is
  // one line (PostgreSQL quotes it; a newline would end the setting and start another).
  static const std::regex parameter_name("[A-Za-z_][A-Za-z0-9_.]*");
  const std::string base = "spec.postgresql.conf";
  for (const auto& [name, value] : p.parameters) {
    const std::string parameter_field = child_path(base, name);
    if (scan_refuses_key(name) || scan_refuses_value(value)) continue;  // reported by scan_line_breaks
    if (!std::regex_match(name, parameter_name))
      r.error(base, "invalid parameter name " + quoted(name) + " (must match ^[A-Za-z_][A-Za-z0-9_.]*$)");
    else if (auto problem = line_break_problem(value))
      r.error(parameter_field, *problem + " (got " + quoted(value) + ")");
    else if (auto reason = refused_parameter(name, value))
      r.error(parameter_field, *reason + (std::none_of(name.begin(), name.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; }) ? "" : " (PostgreSQL reads names case-insensitively)"));
  }
}

// No [users] entry names a role pgconverge logs in as (manifests/pool_roles.hpp); [databases]
// entries cannot name one at all: the grammar refuses user= and auth_user= there.
void check_pool_roles(const SGPoolingConfig& p, const std::string& base, Reporter& r) {
  const std::string users = child_path(base, "users");
  if (!r.invalid(users))
    for (const auto& [name, value] : p.users)
      if (is_pgconverge_role(name) && !scan_refuses_key(name))
        r.error(child_path(users, name), "names a role pgconverge itself uses; a pool may not be set up for it");
}

// pgbouncer.ini is written as "key = value" lines under [databases], [users] and [pgbouncer]:
// a key is a PgBouncer word (no '[' to open a section, no '=', '%', space or quote), a value one
// line, a database or user entry a connection string of known options (pgbouncer_grammar.hpp).
void check_pooling_config(const SGPoolingConfig& p, Diagnostics& diagnostics) {
  Reporter r(p, diagnostics);
  const std::string base = "spec.pgBouncer.pgbouncer.ini";
  auto section = [&](const std::map<std::string, std::string>& entries, const std::string& name,
                     std::optional<EntrySection> kind) {
    const std::string path = child_path(base, name);
    if (r.invalid(path)) return;
    for (const auto& [key, value] : entries) {
      const std::string field = child_path(path, key);
      if (scan_refuses_key(key) || scan_refuses_value(value)) continue;  // reported by scan_line_breaks
      if (!is_pgbouncer_key(key)) {
        r.error(path, "invalid key " + quoted(key) + " (must match " + k_pgbouncer_key_rule +
                          ": a PgBouncer key, which cannot open a section or end the line)");
      } else if (auto problem = line_break_problem(value)) {
        r.error(field, *problem + " (got " + quoted(value) + ")");
      } else if (kind == EntrySection::databases && key == "*") {
        r.error(field, "the fallback database * is pgconverge's (the local PostgreSQL over its socket)");
      } else if (kind) {
        if (auto entry = entry_problem(*kind, value)) r.error(field, *entry);
      }
    }
  };
  section(p.pgbouncer, "pgbouncer", std::nullopt);
  section(p.databases, "databases", EntrySection::databases);
  section(p.users, "users", EntrySection::users);
  check_pool_roles(p, base, r);
  // StackGres' blocklist: what pgconverge sets itself (where PgBouncer listens, how it
  // authenticates, its files) and what StackGres keeps fixed. PgBouncer reads keys
  // case-insensitively: so does this check.
  const std::string pgbouncer = child_path(base, "pgbouncer");
  if (r.invalid(pgbouncer)) return;
  for (const auto& [key, value] : p.pgbouncer) {
    const std::string name = lower(key);
    if (pgbouncer_blocklist().contains(name)) {
      r.error(child_path(pgbouncer, key), "is managed by pgconverge and may not be set (StackGres' PgBouncer blocklist)");
    } else if (name == "pool_mode" && !find_line_break(value) && value != "session" && value != "transaction" &&
               value != "statement") {
      r.error(child_path(pgbouncer, key), "must be one of session, transaction or statement (got " + quoted(value) + ")");
    }
  }
}

void check_instance_profile(const SGInstanceProfile& p, Diagnostics& diagnostics) {
  Reporter r(p, diagnostics);
  static const std::regex cpu("[1-9][0-9]*m?");
  static const std::regex memory(R"([0-9]+(\.[0-9]+)?(Mi|Gi))");
  if (!p.cpu.empty() && !r.invalid("spec.cpu") && !std::regex_match(p.cpu, cpu))
    r.error("spec.cpu", "must be a whole number of cores or millicores, e.g. 2 or 500m (got " + quoted(p.cpu) + ")");
  if (!p.memory.empty() && !r.invalid("spec.memory") && !std::regex_match(p.memory, memory))
    r.error("spec.memory", "must be a size in Mi or Gi, e.g. 512Mi or 2Gi (got " + quoted(p.memory) + ")");
}

void check_host_list(const std::vector<Host>& hosts, Diagnostics& diagnostics) {
  std::map<std::string, const Host*> addresses;
  for (const auto& h : hosts) {
    Reporter r(h, diagnostics);
    if (!r.invalid("spec.address")) {
      if (h.address.empty()) {
        r.error("spec.address", "is required");
      } else if (!is_ipv4(h.address) && !is_ipv6(h.address) && !is_dns_name(h.address)) {
        // It reaches ssh, patroni.yml (listen, connect_address) and pg_hba.conf as written.
        r.error("spec.address", "must be an IPv4 address, an IPv6 address or a DNS name (got " + quoted(h.address) + ")");
      } else if (auto [it, inserted] = addresses.emplace(h.address, &h); !inserted) {
        r.error("spec.address", "duplicate address " + quoted(h.address) + " (first declared by Host " +
                                    quoted(it->second->metadata.name) + " at " +
                                    it->second->locations.at("spec.address").str() + ")");
      }
    }
    if (!r.invalid("spec.packageRepositories"))
      for (std::size_t i = 0; i < h.package_repositories.size(); ++i)
        if (h.package_repositories[i] != k_repository_pgdg)
          r.error(item_path("spec.packageRepositories", i),
                  "unknown package repository " + quoted(h.package_repositories[i]) +
                      " (known: pgdg, the PostgreSQL project's apt repository apt.postgresql.org)");
    if (!r.invalid("spec.ssh.port") && (h.ssh_port < 1 || h.ssh_port > 65535))
      r.error("spec.ssh.port", "must be between 1 and 65535, got " + std::to_string(h.ssh_port));
    static const std::regex user("[A-Za-z_][A-Za-z0-9_.-]*");
    if (!r.invalid("spec.ssh.user")) {
      if (h.ssh_user.empty())
        r.error("spec.ssh.user", "must not be empty");
      else if (h.ssh_user.size() > 32 || !std::regex_match(h.ssh_user, user))
        r.error("spec.ssh.user", "must be a user name matching ^[A-Za-z_][A-Za-z0-9_.-]*$, at most 32 characters (got " +
                                     quoted(h.ssh_user) + ")");
    }
  }
}

// "host:port" or "[v6]:port", port 1..65535.
bool valid_endpoint(const std::string& endpoint) {
  static const std::regex form(R"(([A-Za-z0-9][-A-Za-z0-9.]*|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5}))");
  std::smatch m;
  if (!std::regex_match(endpoint, m, form)) return false;
  int port = std::stoi(m[2].str());
  return port >= 1 && port <= 65535;
}

// spec.tls of an external etcd: https endpoints (all of them) need the CA file, and a client
// certificate and key come together; plain endpoints take no files; spec.tls.enabled is for
// spec.hosts. The files themselves are read and checked when compiled (reconciler/etcd_tls.hpp).
void check_etcd_endpoint_tls(const EtcdCluster& e, Reporter& r) {
  std::size_t https = 0;
  for (const auto& endpoint : e.endpoints) https += endpoint.rfind("https://", 0) == 0 ? 1 : 0;
  if (https != 0 && https != e.endpoints.size()) {
    r.error("spec.endpoints", "mixes https:// with plain endpoints: give every endpoint one scheme");
    return;
  }
  if (e.locations.contains("spec.tls.enabled"))
    r.error("spec.tls.enabled", "applies to spec.hosts (an etcd pgconverge runs); for spec.endpoints the scheme "
                                "decides: https:// with spec.tls.caFile, certFile and keyFile");
  bool files = !e.tls_ca_file.empty() || !e.tls_certificate_file.empty() || !e.tls_key_file.empty();
  if (https == 0) {
    if (files)
      r.error("spec.tls", "names certificate files, but spec.endpoints are plain http: write them https://host:port");
    return;
  }
  if (e.tls_ca_file.empty())
    r.error(e.locations.contains("spec.tls") ? "spec.tls" : "spec.endpoints",
            "https:// endpoints need spec.tls.caFile: the CA that signed etcd's certificate (pgconverge and Patroni "
            "verify etcd against it)");
  if (e.tls_certificate_file.empty() != e.tls_key_file.empty())
    r.error(e.tls_certificate_file.empty() ? "spec.tls.keyFile" : "spec.tls.certFile",
            "needs spec.tls." + std::string(e.tls_certificate_file.empty() ? "certFile" : "keyFile") +
                " too: the client certificate and its key come together");
}

void check_etcd_endpoints(const EtcdCluster& e, Reporter& r) {
  if (r.invalid("spec.endpoints")) return;
  if (e.endpoints.empty()) {
    r.error("spec.endpoints", "must list at least one host:port");
    return;
  }
  bool valid = true;
  for (std::size_t i = 0; i < e.endpoints.size(); ++i)
    if (!valid_endpoint(etcd_endpoint_address(e.endpoints[i]))) {
      r.error(item_path("spec.endpoints", i), "must be host:port, http://host:port or https://host:port, e.g. "
                                              "https://10.0.0.2:2379 (got " + quoted(e.endpoints[i]) + ")");
      valid = false;
    }
  if (valid) check_etcd_endpoint_tls(e, r);
}

std::string sorted_names(std::vector<const Host*> hosts) {
  std::vector<std::string> names;
  for (const auto* h : hosts) names.push_back(h->metadata.name);
  std::sort(names.begin(), names.end());
  return join(names, ", ");
}

// spec.hosts: etcd installed and run by pgconverge on the selected Hosts.
void check_etcd_hosts(const EtcdCluster& e, const ManifestSet& set, Reporter& r) {
  const std::string field = "spec.hosts";
  bool names_ok = true;
  if (!e.host_selector_form) {
    std::vector<std::string> known;
    for (const auto& h : set.hosts) known.push_back(h.metadata.name);
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < e.host_names.size(); ++i) {
      const std::string& name = e.host_names[i];
      const std::string path = item_path(field, i);
      if (auto [it, inserted] = seen.emplace(name, i); !inserted) {
        r.error(path, "duplicate Host " + quoted(name) + " (first listed at " + r.at(item_path(field, it->second)).str() + ")");
        names_ok = false;
      } else if (std::find(known.begin(), known.end(), name) == known.end()) {
        std::string message = "Host " + quoted(name) + " not found";
        if (auto hint = did_you_mean(name, known)) message += " (did you mean '" + *hint + "'?)";
        r.error(path, message);
        names_ok = false;
      }
    }
  } else if (!r.invalid(field + ".nodeSelector")) {
    check_labels(e.host_selector, field + ".nodeSelector", true, r);
  }
  if (!names_ok || r.invalid(field)) return;
  auto selected = etcd_selected_hosts(e, set.hosts);
  const std::size_t n = selected.size();
  if (n != 1 && n != 3 && n != 5) {
    std::string which = n == 0 ? std::string("none") : std::to_string(n) + " (" + sorted_names(selected) + ")";
    r.error(field, "must select 1, 3 or 5 Hosts, got " + which +
                       ": etcd needs a majority of its members (quorum) to work, so an even count tolerates no more "
                       "failures than one member fewer, and more than 5 only slows every write");
  }
}

void check_etcd_settings(const EtcdCluster& e, Reporter& r) {
  for (const auto& [field, port] : {std::pair<std::string, int>{"spec.clientPort", e.client_port},
                                    std::pair<std::string, int>{"spec.peerPort", e.peer_port}})
    if (!r.invalid(field) && (port < 1 || port > 65535))
      r.error(field, "must be between 1 and 65535, got " + std::to_string(port));
  if (!r.invalid("spec.clientPort") && !r.invalid("spec.peerPort") && e.client_port == e.peer_port)
    r.error("spec.peerPort", "must differ from spec.clientPort (" + std::to_string(e.client_port) + ")");
  // The directory apply creates and gives to etcd: below /var/lib/etcd/ only, also when it
  // comes from metadata.name (an EtcdCluster named "default" would take Debian's).
  const std::string dir_field = e.data_directory.empty() ? std::string("metadata.name") : "spec.dataDirectory";
  if (r.invalid(dir_field) || (e.data_directory.empty() && e.metadata.name != "default")) return;  // names: check_identity
  const std::string dir = etcd_data_directory(e);
  if (auto why = check_etcd_data_directory(dir); !why.empty()) {
    if (e.data_directory.empty())
      r.error(dir_field, "gives the data directory " + quoted(dir) + ", which " + why + "; set spec.dataDirectory");
    else
      r.error(dir_field, why + " (got " + quoted(e.data_directory) + ")");
  }
}

void check_etcd_cluster(const EtcdCluster& e, const ManifestSet& set, Diagnostics& diagnostics) {
  Reporter r(e, diagnostics);
  if (e.hosts_declared && e.endpoints_declared) {
    r.error("spec.hosts", "set either spec.endpoints (an etcd run elsewhere) or spec.hosts (etcd installed and run by "
                          "pgconverge on those Hosts), not both");
    return;
  }
  if (e.hosts_declared) {
    for (const char* field : {"spec.tls.caFile", "spec.tls.certFile", "spec.tls.keyFile"})
      if (e.locations.contains(field))
        r.error(field, "applies to spec.endpoints (an external etcd): an etcd pgconverge runs gets its certificates "
                       "from pgconverge's CA (turn TLS off with spec.tls.enabled: false)");
    check_etcd_hosts(e, set, r);
    check_etcd_settings(e, r);
    return;
  }
  check_etcd_endpoints(e, r);
}

// A Host runs one etcd.service: two managed EtcdClusters may not share one.
void check_etcd_host_overlap(const ManifestSet& set, Diagnostics& diagnostics) {
  std::map<std::string, const EtcdCluster*> owner;
  for (const auto& e : set.etcd_clusters) {
    if (!e.managed()) continue;
    for (const auto* h : etcd_selected_hosts(e, set.hosts)) {
      auto [it, inserted] = owner.emplace(h->metadata.name, &e);
      if (!inserted && it->second != &e)
        Reporter(e, diagnostics)
            .error("spec.hosts", "Host " + quoted(h->metadata.name) + " already runs EtcdCluster " +
                                     quoted(it->second->metadata.name) + " (a Host runs one etcd.service)");
    }
  }
}

}  // namespace

// The identity rules and each kind's own rules (kind_parts.hpp), for the kinds table.

void check_identities(const std::vector<const ManifestBase*>& manifests, const KindRow& row, Diagnostics& diagnostics) {
  const KindRules rules{row.kind, row.namespaced, row.cluster_name};
  for (const auto* m : manifests) check_identity(*m, rules, diagnostics);
  check_duplicates(manifests, rules, diagnostics);
}

void check_clusters(const ManifestSet& set, Diagnostics& diagnostics) {
  for (const auto& c : set.clusters) check_cluster(c, set, diagnostics);
}

void check_postgres_configs(const ManifestSet& set, Diagnostics& diagnostics) {
  for (const auto& p : set.postgres_configs) check_postgres_config(p, diagnostics);
}

void check_instance_profiles(const ManifestSet& set, Diagnostics& diagnostics) {
  for (const auto& p : set.instance_profiles) check_instance_profile(p, diagnostics);
}

void check_pooling_configs(const ManifestSet& set, Diagnostics& diagnostics) {
  for (const auto& p : set.pooling_configs) check_pooling_config(p, diagnostics);
}

void check_hosts(const ManifestSet& set, Diagnostics& diagnostics) { check_host_list(set.hosts, diagnostics); }

void check_etcd_clusters(const ManifestSet& set, Diagnostics& diagnostics) {
  for (const auto& e : set.etcd_clusters) check_etcd_cluster(e, set, diagnostics);
}

void validate(const ManifestSet& manifests, Diagnostics& diagnostics) {
  // Every kind's names first, then every kind's rules, in the table's order.
  for (const auto& row : kind_table())
    if (row.managed) row.check_identities(manifests, row, diagnostics);
  for (const auto& row : kind_table())
    if (row.managed) row.check(manifests, diagnostics);
  check_etcd_host_overlap(manifests, diagnostics);
}

}  // namespace pgc::manifests

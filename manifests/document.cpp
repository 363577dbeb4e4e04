#include "manifests/document.hpp"

#include <algorithm>
#include <initializer_list>
#include <limits>
#include <string_view>

#include "manifests/kind_parts.hpp"
#include "manifests/kinds.hpp"
#include "manifests/line_break_scan.hpp"
#include "manifests/pgbouncer_grammar.hpp"
#include "manifests/schema.hpp"
#include "manifests/secret_text.hpp"
#include "util/line_breaks.hpp"
#include "util/strings.hpp"

namespace pgc::manifests {

namespace {

// The node at a path of map keys below root, or nullptr.
const YamlValue* find_path(const YamlValue* root, std::initializer_list<std::string_view> keys) {
  const YamlValue* node = root;
  for (auto key : keys) {
    if (!node) return nullptr;
    node = node->find(key);
  }
  return node;
}

std::optional<std::string> read_text(const YamlValue* node) {
  if (!node || node->kind != YamlValue::Kind::scalar) return std::nullopt;
  return node->text;
}

std::optional<int> read_int(const YamlValue* node) {
  if (!node) return std::nullopt;
  auto n = scalar_integer(*node);
  if (!n || *n < std::numeric_limits<int>::min() || *n > std::numeric_limits<int>::max()) return std::nullopt;
  return static_cast<int>(*n);
}

std::optional<bool> read_bool(const YamlValue* node) {
  if (!node) return std::nullopt;
  return scalar_boolean(*node);
}

// A map of scalars (labels, nodeSelector, postgresql.conf); non-scalar values were reported.
std::map<std::string, std::string> read_string_map(const YamlValue* node) {
  std::map<std::string, std::string> out;
  if (!node || node->kind != YamlValue::Kind::map) return out;
  for (const auto& entry : node->entries)
    if (entry.value.kind == YamlValue::Kind::scalar) out.emplace(entry.key, entry.value.text);
  return out;
}

// Reports a problem found while reading a field of manifest m.
struct Reader {
  ManifestBase& m;
  Diagnostics& diagnostics;

  void error(const std::string& field, std::string message) {
    diagnostics.push_back(Diagnostic{Severity::error, m.locations.at(field), field, std::move(message)});
    m.invalid_fields.insert(field);
  }
  void warning(const std::string& field, std::string message) {
    diagnostics.push_back(Diagnostic{Severity::warning, m.locations.at(field), field, std::move(message)});
  }
};

void read_metadata(const YamlValue& document, ManifestBase& m) {
  const YamlValue* metadata = document.find("metadata");
  m.metadata.name = read_text(find_path(metadata, {"name"})).value_or("");
  m.metadata.namespace_ = read_text(find_path(metadata, {"namespace"})).value_or("default");
  m.metadata.labels = read_string_map(find_path(metadata, {"labels"}));
  m.metadata.annotations = read_string_map(find_path(metadata, {"annotations"}));
}

std::string enum_error(const std::vector<std::string>& allowed, const std::string& got) {
  return "must be " + join_or(allowed) + " (got \"" + got + "\")";
}

void read_replication(const YamlValue* replication, SGCluster& c, Reader& r) {
  if (!replication || replication->kind != YamlValue::Kind::map) return;
  Replication& out = c.replication;
  if (auto mode = read_text(replication->find("mode"))) {
    if (auto parsed = parse_replication_mode(*mode)) out.mode = *parsed;
    else r.error("spec.replication.mode", enum_error(replication_mode_names(), *mode));
  }
  if (auto role = read_text(replication->find("role"))) {
    auto parsed = parse_role(*role);
    if (parsed == Role::ha_read || parsed == Role::ha) out.role = *parsed;
    else r.error("spec.replication.role", enum_error({"ha-read", "ha"}, *role));
  }
  out.sync_instances = read_int(replication->find("syncInstances"));
  if (const YamlValue* groups = replication->find("groups"); groups && groups->kind == YamlValue::Kind::list) {
    for (std::size_t i = 0; i < groups->items.size(); ++i) {
      const YamlValue& item = groups->items[i];
      const std::string path = item_path("spec.replication.groups", i);
      ReplicationGroup group;
      group.name = "group-" + std::to_string(i + 1);
      if (auto name = read_text(item.find("name")); name && !name->empty()) group.name = *name;
      if (auto role = read_text(item.find("role"))) {
        if (auto parsed = parse_role(*role)) group.role = *parsed;
        else r.error(path + ".role", enum_error(role_names(), *role));
      }
      if (item.kind == YamlValue::Kind::map && !item.find("instances")) {
        r.error(path + ".instances", "is required");
      }
      if (auto n = read_int(item.find("instances"))) group.instances = *n;
      group.min_instances = read_int(item.find("minInstances"));
      out.groups.push_back(std::move(group));
    }
  }
  if (auto mode = read_text(find_path(replication, {"initialization", "mode"}))) {
    static const std::vector<std::string> modes{"FromPrimary", "FromReplica", "FromExistingBackup",
                                                "FromNewlyCreatedBackup"};
    if (std::find(modes.begin(), modes.end(), *mode) != modes.end()) out.initialization_mode = *mode;
    else r.error("spec.replication.initialization.mode", enum_error(modes, *mode));
  }
}

// A SecretKeySelector map ({name, key}); nullopt when absent or not a map (the schema reported it).
std::optional<SecretKeySelector> read_selector(const YamlValue* node) {
  if (!node || node->kind != YamlValue::Kind::map) return std::nullopt;
  return SecretKeySelector{read_text(node->find("name")).value_or(""), read_text(node->find("key")).value_or("")};
}

void read_ssl(const YamlValue* ssl, SGCluster& c, Reader& r) {
  if (!ssl || ssl->kind != YamlValue::Kind::map) return;
  c.ssl.enabled = read_bool(ssl->find("enabled")).value_or(true);
  if (auto duration = read_text(ssl->find("duration"))) {
    if (auto seconds = parse_iso8601_duration(*duration)) c.ssl.duration_seconds = *seconds;
    else
      r.error("spec.postgres.ssl.duration",
              "must be an ISO 8601 duration PnDTnHnMn.nS of at most 100 years, e.g. P395D or PT720H (got \"" +
                  *duration + "\")");
  }
  c.ssl.certificate = read_selector(ssl->find("certificateSecretKeySelector"));
  c.ssl.private_key = read_selector(ssl->find("privateKeySecretKeySelector"));
}

// StackGres's postgres.version "latest": the newest major pgconverge knows. The major names the
// packages and the data directory, so a cluster should not follow it from one pgconverge to the
// next: a warning says to pin it.
void read_latest_version(SGCluster& c, Reader& r) {
  if (c.postgres_version != "latest") return;
  const std::string newest = std::to_string(known_postgres_majors().back());
  c.postgres_version = newest;
  r.warning("spec.postgres.version", "latest is read as " + newest + ", the newest major this pgconverge knows; write " +
                                         newest + " to keep the cluster on it (a later pgconverge may read latest as a "
                                         "newer major, and pgconverge does not upgrade a cluster's major)");
}

}  // namespace

// The kinds' readers (kind_parts.hpp), for the kinds table.

SGCluster read_cluster(const YamlValue& document, ManifestBase base, Diagnostics& diagnostics) {
  SGCluster c;
  static_cast<ManifestBase&>(c) = std::move(base);
  Reader r{c, diagnostics};
  const YamlValue* spec = document.find("spec");
  c.postgres_version = read_text(find_path(spec, {"postgres", "version"})).value_or("");
  read_latest_version(c, r);
  c.postgres_flavor = read_text(find_path(spec, {"postgres", "flavor"})).value_or("vanilla");
  read_ssl(find_path(spec, {"postgres", "ssl"}), c, r);
  c.instances = read_int(find_path(spec, {"instances"})).value_or(1);
  c.sg_instance_profile = read_text(find_path(spec, {"sgInstanceProfile"})).value_or("");
  c.sg_postgres_config = read_text(find_path(spec, {"configurations", "sgPostgresConfig"})).value_or("");
  c.sg_pooling_config = read_text(find_path(spec, {"configurations", "sgPoolingConfig"})).value_or("");
  c.disable_connection_pooling = read_bool(find_path(spec, {"pods", "disableConnectionPooling"})).value_or(false);
  c.prometheus_autobind = read_bool(find_path(spec, {"prometheusAutobind"}));
  c.disable_metrics_exporter = read_bool(find_path(spec, {"pods", "disableMetricsExporter"})).value_or(false);
  c.persistent_volume_size = read_text(find_path(spec, {"pods", "persistentVolume", "size"})).value_or("");
  c.node_selector = read_string_map(find_path(spec, {"pods", "scheduling", "nodeSelector"}));
  read_replication(find_path(spec, {"replication"}), c, r);
  const YamlValue* dynamic = find_path(spec, {"configurations", "patroni", "dynamicConfig"});
  if (dynamic && dynamic->kind == YamlValue::Kind::map) c.patroni_dynamic_config = to_json(*dynamic);
  return c;
}

SGPostgresConfig read_postgres_config(const YamlValue& document, ManifestBase base, Diagnostics& /*diagnostics*/) {
  SGPostgresConfig p;
  static_cast<ManifestBase&>(p) = std::move(base);
  const YamlValue* spec = document.find("spec");
  p.postgres_version = read_text(find_path(spec, {"postgresVersion"})).value_or("");
  p.parameters = read_string_map(find_path(spec, {"postgresql.conf"}));
  return p;
}

SGInstanceProfile read_instance_profile(const YamlValue& document, ManifestBase base, Diagnostics& /*diagnostics*/) {
  SGInstanceProfile p;
  static_cast<ManifestBase&>(p) = std::move(base);
  const YamlValue* spec = document.find("spec");
  p.cpu = read_text(find_path(spec, {"cpu"})).value_or("");
  p.memory = read_text(find_path(spec, {"memory"})).value_or("");
  return p;
}

namespace {

// databases/users entries: a mapping of parameters (StackGres) becomes "k=v k='v w'"; a string stays.
std::map<std::string, std::string> read_pgbouncer_section(const YamlValue* node, const std::string& path,
                                                          Reader& r) {
  std::map<std::string, std::string> out;
  if (!node || node->kind != YamlValue::Kind::map) return out;
  for (const auto& entry : node->entries) {
    const std::string entry_path = child_path(path, entry.key);
    if (out.contains(entry.key)) continue;  // duplicate key, already reported
    if (entry.value.kind == YamlValue::Kind::scalar || entry.value.kind == YamlValue::Kind::null) {
      out.emplace(entry.key, entry.value.text);
      continue;
    }
    if (entry.value.kind != YamlValue::Kind::map) {
      r.error(entry_path, "must be a mapping of parameters or a string (got " + entry.value.describe() + ")");
      continue;
    }
    std::vector<std::string> parts;
    for (const auto& parameter : entry.value.entries) {
      const std::string parameter_path = child_path(entry_path, parameter.key);
      if (scan_refuses_key(parameter.key)) continue;  // reported by scan_line_breaks
      if (parameter.value.kind == YamlValue::Kind::scalar) {
        // A line break is reported here, at the parameter (joined into one line below, it could
        // only be reported at the entry), and the parameter left out of the entry.
        if (auto found = find_line_break(parameter.value.text)) {
          if (!scan_refuses_value(parameter.value.text))
            r.diagnostics.push_back(Diagnostic{Severity::error, r.m.locations.at(parameter_path), parameter_path,
                                               line_break_message(*found) + " (got \"" + parameter.value.text + "\")"});
          continue;
        }
        // Quoted as PgBouncer reads it back: "connect_query: SET x = 1" stays one option.
        parts.push_back(parameter.key + "=" + quote_connection_value(parameter.value.text));
      } else {
        r.error(child_path(entry_path, parameter.key),
                "must be a string (got " + parameter.value.describe() + ")");
      }
    }
    out.emplace(entry.key, join(parts, " "));
  }
  return out;
}

}  // namespace

SGPoolingConfig read_pooling_config(const YamlValue& document, ManifestBase base, Diagnostics& diagnostics) {
  SGPoolingConfig p;
  static_cast<ManifestBase&>(p) = std::move(base);
  Reader r{p, diagnostics};
  const YamlValue* ini = find_path(document.find("spec"), {"pgBouncer", "pgbouncer.ini"});
  const std::string path = "spec.pgBouncer.pgbouncer.ini";
  p.pgbouncer = read_string_map(find_path(ini, {"pgbouncer"}));
  p.databases = read_pgbouncer_section(find_path(ini, {"databases"}), path + ".databases", r);
  p.users = read_pgbouncer_section(find_path(ini, {"users"}), path + ".users", r);
  return p;
}

Host read_host(const YamlValue& document, ManifestBase base, Diagnostics& /*diagnostics*/) {
  Host h;
  static_cast<ManifestBase&>(h) = std::move(base);
  const YamlValue* spec = document.find("spec");
  h.address = read_text(find_path(spec, {"address"})).value_or("");
  h.ssh_port = read_int(find_path(spec, {"ssh", "port"})).value_or(22);
  h.ssh_user = read_text(find_path(spec, {"ssh", "user"})).value_or("root");
  if (const YamlValue* repos = find_path(spec, {"packageRepositories"}); repos && repos->kind == YamlValue::Kind::list)
    for (const auto& item : repos->items)
      if (item.kind == YamlValue::Kind::scalar) h.package_repositories.push_back(item.text);
  return h;
}

namespace {

// spec.hosts: a list of Host names, or a mapping {nodeSelector: {label: value}}.
void read_etcd_hosts(const YamlValue& hosts, EtcdCluster& e, Reader& r) {
  const std::string field = "spec.hosts";
  if (hosts.kind == YamlValue::Kind::null) return;
  e.hosts_declared = true;
  if (hosts.kind == YamlValue::Kind::list) {
    for (std::size_t i = 0; i < hosts.items.size(); ++i) {
      const YamlValue& item = hosts.items[i];
      if (item.kind == YamlValue::Kind::scalar) e.host_names.push_back(item.text);
      else r.error(item_path(field, i), "must be a Host name (got " + item.describe() + ")");
    }
    return;
  }
  if (hosts.kind != YamlValue::Kind::map) {
    r.error(field, "must be a list of Host names or a mapping {nodeSelector: {label: value}} (got " +
                       hosts.describe() + ")");
    return;
  }
  e.host_selector_form = true;
  bool selector_seen = false;
  bool reported = false;
  for (const auto& entry : hosts.entries) {
    const std::string path = child_path(field, entry.key);
    if (entry.key != "nodeSelector") {
      std::string message = "unknown field";
      if (auto hint = did_you_mean(entry.key, {"nodeSelector"})) message += " (did you mean 'spec.hosts.nodeSelector'?)";
      else message += " (spec.hosts is a list of Host names or {nodeSelector: {label: value}})";
      r.error(path, message);
      reported = true;
      continue;
    }
    selector_seen = true;
    if (entry.value.kind != YamlValue::Kind::map) {
      r.error(path, "must be a mapping (got " + entry.value.describe() + ")");
      continue;
    }
    for (const auto& label : entry.value.entries) {
      if (label.value.kind == YamlValue::Kind::scalar) e.host_selector.emplace(label.key, label.value.text);
      else r.error(child_path(path, label.key), "must be a string (got " + label.value.describe() + ")");
    }
  }
  if (!selector_seen && !reported) r.error(field, "must hold nodeSelector (or be a list of Host names)");
}

}  // namespace

EtcdCluster read_etcd_cluster(const YamlValue& document, ManifestBase base, Diagnostics& diagnostics) {
  EtcdCluster e;
  static_cast<ManifestBase&>(e) = std::move(base);
  Reader r{e, diagnostics};
  const YamlValue* spec = document.find("spec");
  const YamlValue* endpoints = find_path(spec, {"endpoints"});
  e.endpoints_declared = endpoints && endpoints->kind != YamlValue::Kind::null;
  if (endpoints && endpoints->kind == YamlValue::Kind::list)
    for (const auto& item : endpoints->items)
      if (item.kind == YamlValue::Kind::scalar) e.endpoints.push_back(item.text);
  if (const YamlValue* hosts = find_path(spec, {"hosts"})) read_etcd_hosts(*hosts, e, r);
  e.client_port = read_int(find_path(spec, {"clientPort"})).value_or(2379);
  e.peer_port = read_int(find_path(spec, {"peerPort"})).value_or(2380);
  e.data_directory = read_text(find_path(spec, {"dataDirectory"})).value_or("");
  e.tls_enabled = read_bool(find_path(spec, {"tls", "enabled"})).value_or(true);
  e.tls_ca_file = read_text(find_path(spec, {"tls", "caFile"})).value_or("");
  e.tls_certificate_file = read_text(find_path(spec, {"tls", "certFile"})).value_or("");
  e.tls_key_file = read_text(find_path(spec, {"tls", "keyFile"})).value_or("");
  return e;
}

namespace {

SourceLocation key_location(const YamlValue& map, std::string_view key) {
  for (const auto& entry : map.entries)
    if (entry.key == key) return entry.key_where;
  return map.where;
}

std::vector<std::string> kind_names() {
  std::vector<std::string> names;
  for (const auto& k : supported_kinds()) names.push_back(k.kind);
  return names;
}

// A Kubernetes object beside the manifests (helm output: a Secret, a ConfigMap, a Service…):
// its apiVersion's group is neither StackGres's nor pgconverge's. It is skipped with a warning
// that says why; a Secret's values are never read (pgconverge keeps the credentials in its state
// directory, and no manifest may carry one) nor shown. nullopt for anything else.
std::optional<std::string> foreign_object(const YamlValue& document, const std::string& kind) {
  const YamlValue* api = document.find("apiVersion");
  if (!api || api->kind != YamlValue::Kind::scalar) return std::nullopt;
  const std::string& version = api->text;
  auto slash = version.find('/');
  const std::string group = slash == std::string::npos ? std::string() : version.substr(0, slash);
  if (group == "stackgres.io" || group == "pgconverge.io") return std::nullopt;
  std::string why = kind + " (apiVersion " + version + ") is not a StackGres or pgconverge kind; document skipped";
  if (kind == "Secret")
    why += " (its values are not read: pgconverge keeps the clusters' credentials in its state directory)";
  return why;
}

}  // namespace

void add_document(const YamlValue& document, ManifestSet& set, Diagnostics& diagnostics) {
  auto report = [&](Severity severity, SourceLocation where, std::string field, std::string message) {
    diagnostics.push_back(Diagnostic{severity, std::move(where), std::move(field), std::move(message)});
  };
  if (document.kind != YamlValue::Kind::map) {
    report(Severity::error, document.where, "", "a manifest must be a mapping (got " + document.describe() + ")");
    return;
  }

  // Identity: kind first (it selects the schema), then apiVersion.
  const YamlValue* kind_node = document.find("kind");
  if (!kind_node || kind_node->kind == YamlValue::Kind::null) {
    report(Severity::error, document.where, "kind", "is required");
    return;
  }
  if (kind_node->kind != YamlValue::Kind::scalar) {
    report(Severity::error, key_location(document, "kind"), "kind",
           "must be a string (got " + kind_node->describe() + ")");
    return;
  }
  const std::string& kind = kind_node->text;
  const KindRow* known = find_kind(kind);
  if (known && !known->managed) {
    report(Severity::warning, key_location(document, "kind"), "kind",
           kind + " is not managed by pgconverge; document ignored");
    return;
  }
  if (!known) {
    auto hint = did_you_mean(kind, kind_names());
    if (auto why = foreign_object(document, kind); why && !hint) {
      report(Severity::warning, key_location(document, "kind"), "kind", *why);
      return;
    }
    std::string message = "unknown kind \"" + kind + "\"";
    if (hint) message += " (did you mean '" + *hint + "'?)";
    else message += " (expected " + join_or(kind_names()) + ")";
    report(Severity::error, key_location(document, "kind"), "kind", message);
    return;
  }
  const YamlValue* api_node = document.find("apiVersion");
  if (!api_node || api_node->kind == YamlValue::Kind::null) {
    report(Severity::error, document.where, "apiVersion", "is required");
  } else if (api_node->kind != YamlValue::Kind::scalar || api_node->text != known->api_version) {
    report(Severity::error, key_location(document, "apiVersion"), "apiVersion",
           "must be " + known->api_version + " for kind " + kind + " (got " + api_node->describe() + ")");
  }

  // Which fields exist, their types, and where each one was declared.
  SchemaCheck check;
  check_schema(document, *document_schema(kind), "", check);
  diagnostics.insert(diagnostics.end(), check.diagnostics.begin(), check.diagnostics.end());
  check_secret_text(document, diagnostics);

  ManifestBase base;
  base.api_version = known->api_version;
  base.kind = kind;
  base.locations = std::move(check.locations);
  base.invalid_fields = std::move(check.invalid);
  scan_line_breaks(document, diagnostics);
  read_metadata(document, base);
  if (!known->namespaced && find_path(&document, {"metadata", "namespace"})) {
    report(Severity::warning, base.locations.at("metadata.namespace"), "metadata.namespace",
           "ignored (" + kind + " is not namespaced)");
  }

  // The fields of the kind.
  known->read(document, std::move(base), set, diagnostics);
}

}  // namespace pgc::manifests

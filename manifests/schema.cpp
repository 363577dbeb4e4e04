#include "manifests/schema.hpp"

#include <limits>
#include <map>

#include "manifests/kind_parts.hpp"
#include "manifests/kinds.hpp"
#include "util/strings.hpp"

namespace pgc::manifests {

FieldSchema::FieldSchema() = default;
FieldSchema::FieldSchema(const FieldSchema&) = default;
FieldSchema::FieldSchema(FieldSchema&&) noexcept = default;
FieldSchema& FieldSchema::operator=(const FieldSchema&) = default;
FieldSchema& FieldSchema::operator=(FieldSchema&&) noexcept = default;
FieldSchema::~FieldSchema() = default;

namespace {

// Builders that keep the schema tables below close to the CRDs' shape.
using Fields = std::vector<std::pair<std::string, FieldSchema>>;

FieldSchema of_type(FieldType type) {
  FieldSchema s;
  s.type = type;
  return s;
}
FieldSchema str() { return of_type(FieldType::string); }
FieldSchema integer() { return of_type(FieldType::integer); }
FieldSchema boolean() { return of_type(FieldType::boolean); }
FieldSchema any() { return of_type(FieldType::any); }
FieldSchema object(Fields fields) {
  FieldSchema s = of_type(FieldType::object);
  s.fields = std::move(fields);
  return s;
}
FieldSchema map_of(FieldSchema value) {
  FieldSchema s = of_type(FieldType::map);
  s.element.push_back(std::move(value));
  return s;
}
FieldSchema list_of(FieldSchema item) {
  FieldSchema s = of_type(FieldType::list);
  s.element.push_back(std::move(item));
  return s;
}
// A real StackGres field pgconverge accepts and ignores; reason completes "ignored on VMs (…)".
FieldSchema ignored(FieldSchema s, std::string reason) {
  s.ignored = true;
  s.reason = std::move(reason);
  return s;
}
FieldSchema ignored(std::string reason) { return ignored(any(), std::move(reason)); }

const std::string k_no_backups = "backups are not managed by pgconverge";
const std::string k_no_containers = "there are no containers";
const std::string k_scheduling = "Kubernetes scheduling; only nodeSelector is used";

// metadata: what pgconverge reads, plus the bookkeeping kubectl writes into exported manifests.
FieldSchema metadata_schema() {
  const std::string bookkeeping = "Kubernetes bookkeeping";
  return object({
      {"name", str()},
      {"namespace", str()},
      {"labels", map_of(str())},
      {"annotations", map_of(str())},
      {"uid", ignored(bookkeeping)},
      {"resourceVersion", ignored(bookkeeping)},
      {"generation", ignored(bookkeeping)},
      {"creationTimestamp", ignored(bookkeeping)},
      {"deletionTimestamp", ignored(bookkeeping)},
      {"deletionGracePeriodSeconds", ignored(bookkeeping)},
      {"generateName", ignored(bookkeeping)},
      {"selfLink", ignored(bookkeeping)},
      {"finalizers", ignored(bookkeeping)},
      {"ownerReferences", ignored(bookkeeping)},
      {"managedFields", ignored(bookkeeping)},
  });
}

// A StackGres SecretKeySelector: on VMs a directory and a file in it (model.hpp).
FieldSchema secret_key_selector() {
  return object({
      {"name", str()},
      {"key", str()},
  });
}

}  // namespace

// SGCluster.spec (stackgres-k8s/src/common/src/main/resources/crds/SGCluster.yaml).
FieldSchema sgcluster_spec() {
  return object({
      {"profile", ignored(str(), "it only sets Kubernetes resource and anti-affinity defaults")},
      {"postgres", object({
           {"version", str()},
           {"flavor", str()},
           {"extensions", ignored("extensions come from the hosts' packages, not deployed at runtime")},
           {"ssl", object({
                {"enabled", boolean()},
                {"duration", str()},
                {"certificateSecretKeySelector", secret_key_selector()},
                {"privateKeySecretKeySelector", secret_key_selector()},
            })},
       })},
      {"instances", integer()},
      {"autoscaling", ignored("there is no autoscaler")},
      {"replication", object({
           {"mode", str()},
           {"role", str()},
           {"syncInstances", integer()},
           {"groups", list_of(object({
                {"name", str()},
                {"role", str()},
                {"instances", integer()},
                {"minInstances", ignored(integer(), "only used by autoscaling")},
            }))},
           {"initialization", object({
                {"mode", str()},
                {"backupNewerThan", ignored(str(), k_no_backups)},
                {"backupRestorePerformance", ignored(k_no_backups)},
            })},
       })},
      {"sgInstanceProfile", str()},
      {"metadata", ignored("no Kubernetes resources are created to label or annotate")},
      {"postgresServices", ignored("there are no Kubernetes Services; clients connect to the hosts")},
      {"pods", object({
           {"persistentVolume", object({
                {"size", str()},
                {"storageClass", ignored(str(), "storage is the host's disk")},
            })},
           {"disableConnectionPooling", boolean()},
           {"disableMetricsExporter", boolean()},
           {"disablePostgresUtil", ignored(boolean(), "there are no sidecars")},
           {"disableEnvoy", ignored(boolean(), "there is no Envoy sidecar")},
           {"resources", ignored("there are no container resources")},
           {"scheduling", object({
                {"nodeSelector", map_of(str())},
                {"tolerations", ignored(k_scheduling)},
                {"nodeAffinity", ignored(k_scheduling)},
                {"priorityClassName", ignored(k_scheduling)},
                {"podAffinity", ignored(k_scheduling)},
                {"podAntiAffinity", ignored(k_scheduling)},
                {"topologySpreadConstraints", ignored(k_scheduling)},
                {"backup", ignored(k_no_backups)},
            })},
           {"managementPolicy", ignored(str(), "there is no StatefulSet; pgconverge orders the changes")},
           {"customVolumes", ignored(k_no_containers)},
           {"customInitContainers", ignored(k_no_containers)},
           {"customContainers", ignored(k_no_containers)},
           {"customVolumeMounts", ignored(k_no_containers)},
           {"customInitVolumeMounts", ignored(k_no_containers)},
       })},
      {"configurations", object({
           {"sgPostgresConfig", str()},
           {"sgPoolingConfig", str()},
           {"observability", ignored("there is no Prometheus integration")},
           {"backups", ignored(k_no_backups)},
           {"sgBackupConfig", ignored(str(), k_no_backups)},
           {"backupPath", ignored(str(), k_no_backups)},
           {"patroni", object({
                {"dynamicConfig", map_of(any())},
                {"initialConfig", ignored("pgconverge writes patroni.yml itself")},
            })},
           {"credentials", ignored("pgconverge generates and keeps the credentials")},
           {"binding", ignored("there is no Service Binding")},
       })},
      {"managedSql", ignored("SGScript is not supported")},
      {"initialData", ignored("restoring from a backup is not supported; the cluster starts empty")},
      {"replicateFrom", ignored("standby clusters are not supported; the cluster runs its own primary")},
      {"prometheusAutobind", boolean()},
      {"nonProductionOptions", ignored("Kubernetes anti-affinity and resource options")},
      {"distributedLogs", ignored("logs stay on each host")},
      {"toInstallPostgresExtensions", ignored("filled by the StackGres operator")},
  });
}

// SGPostgresConfig.spec.
FieldSchema sgpostgresconfig_spec() {
  return object({
      {"postgresVersion", str()},
      {"postgresql.conf", map_of(str())},
  });
}

// SGInstanceProfile.spec.
FieldSchema sginstanceprofile_spec() {
  return object({
      {"cpu", str()},
      {"memory", str()},
      {"hugePages", ignored("huge pages are configured on the host")},
      {"containers", ignored(k_no_containers)},
      {"initContainers", ignored(k_no_containers)},
      {"requests", ignored("there are no container resource requests")},
  });
}

// SGPoolingConfig.spec. databases/users entries are parameter mappings (or connection strings).
FieldSchema sgpoolingconfig_spec() {
  return object({
      {"pgBouncer", object({
           {"pgbouncer.ini", object({
                {"pgbouncer", map_of(str())},
                {"databases", map_of(any())},
                {"users", map_of(any())},
            })},
       })},
  });
}

// pgconverge.io/v1 Host.spec.
FieldSchema host_spec() {
  return object({
      {"address", str()},
      {"packageRepositories", list_of(str())},
      {"ssh", object({
           {"port", integer()},
           {"user", str()},
       })},
  });
}

// pgconverge.io/v1 EtcdCluster.spec.
FieldSchema etcdcluster_spec() {
  // hosts is a list of Host names or {nodeSelector: {...}}: its two forms are read (and their
  // types checked) by the reader, so the schema takes any value and records its locations.
  return object({
      {"endpoints", list_of(str())},
      {"hosts", any()},
      {"clientPort", integer()},
      {"peerPort", integer()},
      {"dataDirectory", str()},
      {"tls", object({{"enabled", boolean()}, {"caFile", str()}, {"certFile", str()}, {"keyFile", str()}})},
  });
}

namespace {

FieldSchema document(FieldSchema spec) {
  return object({
      {"apiVersion", str()},
      {"kind", str()},
      {"metadata", metadata_schema()},
      {"spec", std::move(spec)},
      {"status", ignored("status is observed, never declared")},
  });
}

void record_subtree(const YamlValue& value, const std::string& path, SchemaCheck& out);

// Records the location of a map entry; reports a duplicate key. Returns false for a duplicate.
bool record_entry(const YamlEntry& entry, const std::string& path, std::map<std::string, SourceLocation>& seen,
                  SchemaCheck& out) {
  if (auto it = seen.find(entry.key); it != seen.end()) {
    out.diagnostics.push_back(Diagnostic{Severity::error, entry.key_where, path,
                                         "duplicate key (first declared at " + it->second.str() + ")"});
    return false;
  }
  seen.emplace(entry.key, entry.key_where);
  out.locations.set(path, entry.key_where);
  return true;
}

// Records every path of a subtree that is not checked field by field.
void record_subtree(const YamlValue& value, const std::string& path, SchemaCheck& out) {
  if (value.kind == YamlValue::Kind::map) {
    std::map<std::string, SourceLocation> seen;
    for (const auto& entry : value.entries) {
      std::string p = child_path(path, entry.key);
      if (record_entry(entry, p, seen, out)) record_subtree(entry.value, p, out);
    }
  } else if (value.kind == YamlValue::Kind::list) {
    for (std::size_t i = 0; i < value.items.size(); ++i) {
      std::string p = item_path(path, i);
      out.locations.set(p, value.items[i].where);
      record_subtree(value.items[i], p, out);
    }
  }
}

std::string got(const YamlValue& value) {
  if (value.kind == YamlValue::Kind::scalar && value.quoted) return "the string \"" + value.text + "\"";
  return value.describe();
}

void type_error(const YamlValue& value, FieldType type, const std::string& path, SchemaCheck& out) {
  out.diagnostics.push_back(Diagnostic{Severity::error, out.locations.at(path), path,
                                       "must be " + expected_type_phrase(type) + " (got " + got(value) + ")"});
  out.invalid.insert(path);
}

void check(const YamlValue& value, const FieldSchema& schema, const std::string& path, bool in_ignored,
           SchemaCheck& out) {
  if (schema.ignored && !in_ignored) {
    out.diagnostics.push_back(Diagnostic{Severity::warning, out.locations.at(path), path,
                                         "ignored on VMs (" + schema.reason + ")"});
    in_ignored = true;
  }
  if (value.kind == YamlValue::Kind::null) return;  // absent
  const FieldSchema* element = schema.element.empty() ? nullptr : &schema.element.front();
  switch (schema.type) {
    case FieldType::any:
      record_subtree(value, path, out);
      return;
    case FieldType::string:
      if (value.kind != YamlValue::Kind::scalar) type_error(value, schema.type, path, out);
      return;
    case FieldType::integer: {
      auto n = scalar_integer(value);
      if (!n || *n < std::numeric_limits<int>::min() || *n > std::numeric_limits<int>::max())
        type_error(value, schema.type, path, out);
      return;
    }
    case FieldType::boolean:
      if (!scalar_boolean(value)) type_error(value, schema.type, path, out);
      return;
    case FieldType::list:
      if (value.kind != YamlValue::Kind::list) {
        type_error(value, schema.type, path, out);
        record_subtree(value, path, out);
        return;
      }
      for (std::size_t i = 0; i < value.items.size(); ++i) {
        std::string p = item_path(path, i);
        out.locations.set(p, value.items[i].where);
        if (element) check(value.items[i], *element, p, in_ignored, out);
        else record_subtree(value.items[i], p, out);
      }
      return;
    case FieldType::map:
    case FieldType::object:
      break;
  }
  if (value.kind != YamlValue::Kind::map) {
    type_error(value, schema.type, path, out);
    record_subtree(value, path, out);
    return;
  }
  std::map<std::string, SourceLocation> seen;
  for (const auto& entry : value.entries) {
    std::string p = child_path(path, entry.key);
    if (!record_entry(entry, p, seen, out)) continue;
    if (schema.type == FieldType::map) {
      if (element) check(entry.value, *element, p, in_ignored, out);
      else record_subtree(entry.value, p, out);
      continue;
    }
    const FieldSchema* field = schema.field(entry.key);
    if (!field) {
      std::string message = "unknown field";
      if (auto hint = did_you_mean(entry.key, schema.field_names()))
        message += " (did you mean '" + child_path(path, *hint) + "'?)";
      out.diagnostics.push_back(Diagnostic{Severity::error, entry.key_where, p, message});
      record_subtree(entry.value, p, out);
      continue;
    }
    check(entry.value, *field, p, in_ignored, out);
  }
}

}  // namespace

const FieldSchema* FieldSchema::field(std::string_view name) const {
  for (const auto& [n, s] : fields)
    if (n == name) return &s;
  return nullptr;
}

std::vector<std::string> FieldSchema::field_names() const {
  std::vector<std::string> out;
  for (const auto& entry : fields) out.push_back(entry.first);
  return out;
}

const std::vector<KindInfo>& supported_kinds() {
  static const std::vector<KindInfo> kinds = [] {
    std::vector<KindInfo> out;
    for (const auto& row : kind_table())
      if (row.managed) out.push_back({row.kind, row.api_version});
    return out;
  }();
  return kinds;
}

const std::vector<std::string>& unsupported_stackgres_kinds() {
  static const std::vector<std::string> kinds = [] {
    std::vector<std::string> out;
    for (const auto& row : kind_table())
      if (!row.managed) out.push_back(row.kind);
    return out;
  }();
  return kinds;
}

const FieldSchema* document_schema(std::string_view kind) {
  static const std::map<std::string, FieldSchema, std::less<>> schemas = [] {
    std::map<std::string, FieldSchema, std::less<>> out;
    for (const auto& row : kind_table())
      if (row.spec) out.emplace(row.kind, document(row.spec()));
    return out;
  }();
  auto it = schemas.find(kind);
  return it == schemas.end() ? nullptr : &it->second;
}

void check_schema(const YamlValue& value, const FieldSchema& schema, const std::string& path,
                  SchemaCheck& out) {
  if (path.empty()) out.locations.set("", value.where);
  check(value, schema, path, false, out);
}

std::string expected_type_phrase(FieldType type) {
  switch (type) {
    case FieldType::string: return "a string";
    case FieldType::integer: return "an integer";
    case FieldType::boolean: return "a boolean (true or false)";
    case FieldType::object:
    case FieldType::map: return "a mapping";
    case FieldType::list: return "a list";
    case FieldType::any: break;
  }
  return "a value";
}

std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  if (auto hint = closest_match(word, candidates)) return hint;
  for (const auto& candidate : candidates) {
    if (candidate.size() != word.size()) continue;
    for (std::size_t i = 0; i + 1 < word.size(); ++i) {
      if (word[i] == word[i + 1]) continue;
      std::string swapped(word);
      std::swap(swapped[i], swapped[i + 1]);
      if (swapped == candidate) return candidate;
    }
  }
  return std::nullopt;
}

std::string child_path(const std::string& parent, std::string_view name) {
  if (parent.empty()) return std::string(name);
  return parent + "." + std::string(name);
}

std::string item_path(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

}  // namespace pgc::manifests

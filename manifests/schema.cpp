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

namespace {

// A real StackGres field refused when set to a value that matters (schema.hpp, Refusal).
FieldSchema refused_field(FieldSchema s, Refusal refusal) {
  s.refusal = std::move(refusal);
  return s;
}

// The default of Refusal::matters: every value but an empty mapping or list.
bool non_empty(const YamlValue& value) {
  if (value.kind == YamlValue::Kind::map) return !value.entries.empty();
  if (value.kind == YamlValue::Kind::list) return !value.items.empty();
  return value.kind != YamlValue::Kind::null;
}

bool is_scalar(const YamlValue& value, std::string_view text) {
  return value.kind == YamlValue::Kind::scalar && value.text == text;
}

// updateStrategy: pgconverge restarts what needs it at the next apply, as type Always does.
bool not_always(const YamlValue& value, std::string_view /*key*/, const YamlValue& /*document*/) {
  return !is_scalar(value, "Always");
}
bool not_in_place(const YamlValue& value, std::string_view /*key*/, const YamlValue& /*document*/) {
  return !is_scalar(value, "InPlace");
}

// customEnv/customEnvFrom: only the patroni container's environment reaches what runs on VMs.
bool patroni_environment(const YamlValue& value, std::string_view key, const YamlValue& /*document*/) {
  return key == "patroni" && non_empty(value);
}

// managedSql.scripts[]: StackGres's mutator adds CLUSTER-default to every cluster, so an
// exported manifest lists it; any other SGScript holds the user's SQL.
bool user_script(const YamlValue& value, std::string_view /*key*/, const YamlValue& document) {
  const YamlValue* script = value.find("sgScript");
  if (!script || script->kind != YamlValue::Kind::scalar) return false;
  const YamlValue* metadata = document.find("metadata");
  const YamlValue* name = metadata ? metadata->find("name") : nullptr;
  return !(name && name->kind == YamlValue::Kind::scalar && script->text == name->text + "-default");
}

const std::string k_no_pods = "there are no pods or containers on VMs";

// {cpu, memory} as StackGres writes resource bounds.
FieldSchema cpu_memory() { return object({{"cpu", str()}, {"memory", str()}}); }

// spec.autoscaling: bounds per StackGres container and the two autoscalers' settings.
FieldSchema autoscaling_schema() {
  auto per_container = [] {
    return object({{"patroni", cpu_memory()}, {"pgbouncer", cpu_memory()}, {"envoy", cpu_memory()}});
  };
  return object({
      {"mode", str()},
      {"minInstances", integer()},
      {"maxInstances", integer()},
      {"minAllowed", per_container()},
      {"maxAllowed", per_container()},
      {"horizontal", object({{"replicasConnectionsUsageTarget", str()},
                             {"replicasConnectionsUsageMetricType", str()},
                             {"cooldownPeriod", integer()},
                             {"pollingInterval", integer()}})},
      {"vertical", object({{"recommender", str()}})},
  });
}

// spec.metadata: labels or annotations per kind of Kubernetes resource StackGres creates.
FieldSchema resource_metadata() {
  Fields fields;
  for (const char* resource :
       {"allResources", "clusterPods", "services", "primaryService", "replicasService", "serviceAccount"})
    fields.emplace_back(resource, map_of(str()));
  return object(std::move(fields));
}

// A Kubernetes probe's timings (pods.readinessProbe, pods.livenessProbe).
FieldSchema probe_schema() {
  Fields fields;
  for (const char* timing : {"failureThreshold", "initialDelaySeconds", "periodSeconds", "successThreshold",
                             "terminationGracePeriodSeconds", "timeoutSeconds"})
    fields.emplace_back(timing, integer());
  return ignored(object(std::move(fields)),
                 "there are no Kubernetes probes; Patroni's ttl and loop_wait (dynamicConfig) decide when a "
                 "member has failed");
}

// pods.updateStrategy: when StackGres restarts members for a change that needs it.
FieldSchema update_strategy_schema() {
  return object({
      {"type", refused_field(str(), Refusal{"pgconverge restarts the members a change needs restarted at the next "
                                      "apply (replicas first, then a switchover), as type Always does; it has no "
                                      "SGDbOps and no maintenance windows",
                                      "set type: Always (or remove it) and run apply when a restart is "
                                      "acceptable: plan lists the restarts first",
                                      "unless Always", not_always})},
      {"method", refused_field(str(), Refusal{"ReducedImpact starts an extra member before a restart, and a Host "
                                        "holds one member: there is no spare Host to start it on",
                                        "set method: InPlace (or remove it)", "unless InPlace", not_in_place})},
      {"schedule", ignored(list_of(object({{"cron", str()}, {"duration", str()}})), "only used by type Schedule")},
  });
}

// pods.custom*: containers, their volumes and environment.
void add_custom_container_fields(Fields& pods) {
  const Refusal containers{k_no_pods + ": the containers would not run",
                           "remove them and run the program as a service on the hosts", "when not empty", nullptr};
  const Refusal patroni_env{"Patroni and PostgreSQL run as pgconverge's services, whose environment it writes",
                            "set Patroni keys in configurations.patroni.dynamicConfig and PostgreSQL parameters "
                            "in the SGPostgresConfig",
                            "for the patroni container", patroni_environment};
  const std::string other_containers = k_no_pods + "; only the patroni container's environment would matter";
  auto per_container = [](FieldSchema value) { return map_of(std::move(value)); };
  pods.emplace_back("customVolumes", ignored(list_of(any()), k_no_pods));
  pods.emplace_back("customInitContainers", refused_field(list_of(any()), containers));
  pods.emplace_back("customContainers", refused_field(list_of(any()), containers));
  pods.emplace_back("customVolumeMounts", ignored(per_container(list_of(any())), k_no_pods));
  pods.emplace_back("customInitVolumeMounts", ignored(per_container(list_of(any())), k_no_pods));
  pods.emplace_back("customEnv", ignored(per_container(refused_field(list_of(any()), patroni_env)), other_containers));
  pods.emplace_back("customInitEnv", ignored(per_container(list_of(any())), k_no_pods));
  pods.emplace_back("customEnvFrom", ignored(per_container(refused_field(list_of(any()), patroni_env)), other_containers));
  pods.emplace_back("customInitEnvFrom", ignored(per_container(list_of(any())), k_no_pods));
}

FieldSchema pods_schema() {
  Fields pods{
      {"terminationGracePeriodSeconds",
       ignored(integer(), "systemd stops Patroni, which stops PostgreSQL with its own timeouts")},
      {"readinessProbe", probe_schema()},
      {"livenessProbe", probe_schema()},
      {"persistentVolume", object({
           {"size", str()},
           {"storageClass", ignored(str(), "storage is the host's disk")},
           {"fsGroupChangePolicy", ignored(str(), "the data directory's owner is set by the packages")},
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
           {"priorityClassName", ignored(str(), k_scheduling)},
           {"podAffinity", ignored(k_scheduling)},
           {"podAntiAffinity", ignored(k_scheduling)},
           {"topologySpreadConstraints", ignored(k_scheduling)},
           {"backup", ignored(k_no_backups)},
       })},
      {"managementPolicy", ignored(str(), "there is no StatefulSet; pgconverge orders the changes")},
      {"updateStrategy", update_strategy_schema()},
  };
  add_custom_container_fields(pods);
  return object(std::move(pods));
}

// configurations.backups[] (and the legacy sgBackupConfig): pgconverge takes no backups.
FieldSchema backups_schema() {
  Fields performance;
  for (const char* bound : {"maxNetworkBandwidth", "maxDiskBandwidth", "uploadDiskConcurrency", "uploadConcurrency",
                            "downloadConcurrency"})
    performance.emplace_back(bound, integer());
  return list_of(object({
      {"compression", str()},
      {"cronSchedule", str()},
      {"performance", object(std::move(performance))},
      {"retention", integer()},
      {"sgObjectStorage", str()},
      {"path", str()},
      {"useVolumeSnapshot", boolean()},
      {"volumeSnapshotClass", str()},
      {"fastVolumeSnapshot", boolean()},
      {"timeout", integer()},
      {"reconciliationTimeout", integer()},
      {"maxRetries", integer()},
      {"retainWalsForUnmanagedLifecycle", boolean()},
  }));
}

const Refusal k_backups_refused{"pgconverge takes no backups, so the backups declared would not exist",
                                "remove it and back the cluster up with a tool of your own until pgconverge "
                                "manages backups",
                                "when set", nullptr};

FieldSchema credentials_schema() {
  auto user = [] { return object({{"username", secret_key_selector()}, {"password", secret_key_selector()}}); };
  return refused_field(object({
                     {"patroni", object({{"restApiPassword", secret_key_selector()}})},
                     {"users", object({{"superuser", user()}, {"replication", user()}, {"authenticator", user()}})},
                 }),
                 Refusal{"pgconverge creates these passwords at the first bootstrap and keeps them in its state "
                         "directory; Kubernetes Secrets are not read",
                         "remove configurations.credentials (docs/security.md says where the passwords are kept "
                         "and how to rotate them)",
                         "when set", nullptr});
}

FieldSchema configurations_schema() {
  return object({
      {"sgPostgresConfig", str()},
      {"sgPoolingConfig", str()},
      {"postgres", object({{"postgresql.conf",
                            refused_field(map_of(str()),
                                    Refusal{"parameters set here override the SGPostgresConfig's, and pgconverge "
                                            "checks and renders parameters from the SGPostgresConfig only",
                                            "move them into the SGPostgresConfig named by "
                                            "configurations.sgPostgresConfig",
                                            "when not empty", nullptr})}})},
      {"pooling", object({{"pgBouncer", object({{"pgbouncer.ini",
                                                 refused_field(object({{"pgbouncer", any()},
                                                                 {"databases", map_of(any())},
                                                                 {"users", map_of(any())}}),
                                                         Refusal{"settings here override the SGPoolingConfig's, "
                                                                 "and pgconverge checks and renders PgBouncer's "
                                                                 "settings from the SGPoolingConfig only",
                                                                 "move them into the SGPoolingConfig named by "
                                                                 "configurations.sgPoolingConfig",
                                                                 "when not empty", nullptr})}})}})},
      {"postgresExporter",
       object({{"queries", ignored("the exporter runs its own default queries; metrics only, no data")}})},
      {"observability", ignored(object({{"disableMetrics", boolean()},
                                        {"receiver", str()},
                                        {"prometheusAutobind", boolean()}}),
                                "there is no Prometheus integration")},
      {"backups", refused_field(backups_schema(), k_backups_refused)},
      {"sgBackupConfig", refused_field(str(), k_backups_refused)},
      {"backupPath", ignored(str(), k_no_backups)},
      {"patroni", object({
           {"dynamicConfig", map_of(any())},
           {"initialConfig", refused_field(any(), Refusal{"pgconverge writes patroni.yml itself: the callbacks and "
                                                    "settings declared here would not be in it",
                                                    "remove configurations.patroni.initialConfig; dynamic "
                                                    "settings go in configurations.patroni.dynamicConfig",
                                                    "when not empty", nullptr})},
       })},
      {"credentials", credentials_schema()},
      {"binding", ignored(object({{"provider", str()},
                                  {"database", str()},
                                  {"username", str()},
                                  {"password", secret_key_selector()}}),
                          "there is no Service Binding")},
  });
}

FieldSchema managed_sql_schema() {
  return object({
      {"continueOnSGScriptError", ignored(boolean(), "no SGScript runs on VMs")},
      {"scripts", ignored(list_of(refused_field(object({{"id", integer()}, {"sgScript", str()}}),
                                          Refusal{"SGScript is not supported: its SQL would not run",
                                                  "remove the entry and run the SQL on the primary yourself",
                                                  "unless it names StackGres's own CLUSTER-default script",
                                                  user_script})),
                          "StackGres's own CLUSTER-default script has nothing to run on VMs")},
  });
}

FieldSchema initial_data_schema() {
  FieldSchema restore = object({
      {"fromBackup", object({
           {"uid", str()},
           {"name", str()},
           {"target", str()},
           {"targetTimeline", str()},
           {"targetInclusive", boolean()},
           {"targetName", str()},
           {"targetXid", str()},
           {"targetLsn", str()},
           {"pointInTimeRecovery", object({{"restoreToTimestamp", str()}})},
       })},
      {"downloadDiskConcurrency", integer()},
  });
  FieldSchema scripts = list_of(object({
      {"name", str()},
      {"database", str()},
      {"script", str()},
      {"scriptFrom", object({{"secretKeyRef", secret_key_selector()}, {"configMapKeyRef", secret_key_selector()}})},
  }));
  return object({
      {"restore", refused_field(std::move(restore),
                          Refusal{"restoring a backup is not supported: the cluster would start empty",
                                  "remove initialData.restore and load the data into the primary after the first "
                                  "apply",
                                  "when set", nullptr})},
      {"scripts", refused_field(std::move(scripts),
                          Refusal{"initial scripts are not run: the cluster would start without what they create",
                                  "remove them and run them on the primary after the first apply",
                                  "when not empty", nullptr})},
  });
}

FieldSchema non_production_options_schema() {
  Fields fields;
  for (const char* option : {"disableClusterPodAntiAffinity", "disablePatroniResourceRequirements",
                             "disableClusterResourceRequirements", "enableSetPatroniCpuRequests",
                             "enableSetClusterCpuRequests", "enableSetPatroniMemoryRequests",
                             "enableSetClusterMemoryRequests"})
    fields.emplace_back(option, boolean());
  fields.emplace_back("enabledFeatureGates", list_of(str()));
  return ignored(object(std::move(fields)), "Kubernetes anti-affinity and resource options");
}

}  // namespace

// SGCluster.spec (stackgres-k8s/src/common/src/main/resources/crds/SGCluster.yaml). Every field
// of the CRD is here (tests/corpus/stackgres-1.18/fields.txt, checked by
// manifests_inventory_test.cpp), honoured, ignored or refused; deep Kubernetes structures that
// pgconverge treats as a whole are any().
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
      {"autoscaling", ignored(autoscaling_schema(), "there is no autoscaler")},
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
                {"backupRestorePerformance", ignored(object({{"maxNetworkBandwidth", integer()},
                                                             {"maxDiskBandwidth", integer()},
                                                             {"downloadConcurrency", integer()}}),
                                                     k_no_backups)},
            })},
       })},
      {"sgInstanceProfile", str()},
      {"metadata", ignored(object({{"annotations", resource_metadata()}, {"labels", resource_metadata()}}),
                           "no Kubernetes resources are created to label or annotate")},
      {"postgresServices", ignored("there are no Kubernetes Services; clients connect to the hosts")},
      {"pods", pods_schema()},
      {"configurations", configurations_schema()},
      {"managedSql", managed_sql_schema()},
      {"initialData", initial_data_schema()},
      // Ignoring it would bootstrap a writable, empty primary where a standby was declared.
      {"replicateFrom", refused_field(any(), Refusal{"a standby cluster is not supported yet: pgconverge would "
                                                     "bootstrap an empty, writable primary instead of a standby of "
                                                     "the source",
                                                     "remove replicateFrom, or leave this cluster out of the "
                                                     "manifests pgconverge applies until standby clusters are "
                                                     "supported",
                                                     "when set", nullptr})},
      {"prometheusAutobind", boolean()},
      {"nonProductionOptions", non_production_options_schema()},
      {"distributedLogs", ignored(object({{"sgDistributedLogs", str()}, {"retention", str()}}),
                                  "logs stay on each host")},
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

namespace {

FieldSchema huge_pages() { return object({{"hugepages-2Mi", str()}, {"hugepages-1Gi", str()}}); }

}  // namespace

// SGInstanceProfile.spec.
FieldSchema sginstanceprofile_spec() {
  return object({
      {"cpu", str()},
      {"memory", str()},
      {"hugePages", ignored(huge_pages(), "huge pages are configured on the host")},
      {"containers", ignored(map_of(object({{"cpu", str()}, {"memory", str()}, {"hugePages", huge_pages()}})),
                             k_no_containers)},
      {"initContainers", ignored(map_of(object({{"cpu", str()}, {"memory", str()}, {"hugePages", huge_pages()}})),
                                 k_no_containers)},
      {"requests", ignored(object({{"cpu", str()},
                                   {"memory", str()},
                                   {"containers", map_of(cpu_memory())},
                                   {"initContainers", map_of(cpu_memory())}}),
                           "there are no container resource requests")},
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

// What a subtree inherits from its ancestors: an ignored one was warned about (no further
// warnings below it), a refused one was reported (no further refusals below it).
struct Scope {
  bool ignored = false;
  bool refused = false;
};

// One document's check: where findings go, and the document itself (Refusal::matters reads it).
struct Walk {
  SchemaCheck& out;
  const YamlValue& document;
};

void check(const YamlValue& value, const FieldSchema& schema, const std::string& path, std::string_view key,
           Scope scope, Walk& walk);

// The entries of a mapping against an object's fields or a map's value schema.
void check_entries(const YamlValue& value, const FieldSchema& schema, const std::string& path, Scope scope,
                   Walk& walk) {
  const FieldSchema* element = schema.element.empty() ? nullptr : &schema.element.front();
  std::map<std::string, SourceLocation> seen;
  for (const auto& entry : value.entries) {
    std::string p = child_path(path, entry.key);
    if (!record_entry(entry, p, seen, walk.out)) continue;
    if (schema.type == FieldType::map) {
      if (element) check(entry.value, *element, p, entry.key, scope, walk);
      else record_subtree(entry.value, p, walk.out);
      continue;
    }
    const FieldSchema* field = schema.field(entry.key);
    if (!field) {
      std::string message = "unknown field";
      if (auto hint = did_you_mean(entry.key, schema.field_names()))
        message += " (did you mean '" + child_path(path, *hint) + "'?)";
      walk.out.diagnostics.push_back(Diagnostic{Severity::error, entry.key_where, p, message});
      record_subtree(entry.value, p, walk.out);
      continue;
    }
    check(entry.value, *field, p, entry.key, scope, walk);
  }
}

// The value's type against the schema's, then its content.
void check_value(const YamlValue& value, const FieldSchema& schema, const std::string& path, Scope scope,
                 Walk& walk) {
  SchemaCheck& out = walk.out;
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
        if (element) check(value.items[i], *element, p, "", scope, walk);
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
  check_entries(value, schema, path, scope, walk);
}

// Whether value, declared under key, is one the field's refusal refuses.
bool refused_value(const FieldSchema& schema, const YamlValue& value, std::string_view key, const YamlValue& document) {
  if (!schema.refusal || value.kind == YamlValue::Kind::null) return false;
  if (schema.refusal->matters) return schema.refusal->matters(value, key, document);
  return non_empty(value);
}

// A field's disposition (a refusal, or the warning of an ignored field), then its value. A
// refused value of the wrong type gets the type error alone.
void check(const YamlValue& value, const FieldSchema& schema, const std::string& path, std::string_view key,
           Scope scope, Walk& walk) {
  SchemaCheck& out = walk.out;
  const bool refuse = !scope.refused && refused_value(schema, value, key, walk.document);
  if (refuse) {
    scope.ignored = scope.refused = true;
  } else if (schema.ignored && !scope.ignored) {
    out.diagnostics.push_back(Diagnostic{Severity::warning, out.locations.at(path), path,
                                         "ignored on VMs (" + schema.reason + ")"});
    scope.ignored = true;
  }
  check_value(value, schema, path, scope, walk);
  if (refuse && !out.invalid.contains(path)) {
    out.diagnostics.push_back(Diagnostic{Severity::error, out.locations.at(path), path,
                                         "not supported on VMs: " + schema.refusal->why + "; " +
                                             schema.refusal->instead});
    out.invalid.insert(path);
  }
}

}  // namespace

const FieldSchema* FieldSchema::field(std::string_view name) const {
  for (const auto& [n, s] : fields)
    if (n == name) return &s;
  return nullptr;
}

Disposition FieldSchema::disposition() const {
  if (refusal) return Disposition::refused;
  return ignored ? Disposition::ignored : Disposition::honoured;
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
  // Refusals read the document (a cluster's own name); a subtree checked alone is its own.
  Walk walk{out, value};
  check(value, schema, path, "", Scope{}, walk);
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

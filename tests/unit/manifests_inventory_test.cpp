// Every field of StackGres 1.18's CRDs (tests/corpus/stackgres-1.18/fields.txt, made by
// scripts/stackgres-field-inventory.py) has a disposition in pgconverge's schema — honoured,
// ignored with a warning, or refused — the schema has no field the CRDs lack, and the table of
// docs/manifests.md is exactly what the schema says.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "manifests/kinds.hpp"
#include "manifests/loader.hpp"
#include "manifests/schema.hpp"

using namespace pgc::manifests;

namespace {

const std::filesystem::path k_source = PGC_SOURCE_DIR;
const std::filesystem::path k_inventory = k_source / "tests/corpus/stackgres-1.18/fields.txt";
const std::filesystem::path k_docs = k_source / "docs/manifests.md";
const std::string k_table_begin = "<!-- stackgres-fields:begin (generated: manifests_inventory_test.cpp) -->";
const std::string k_table_end = "<!-- stackgres-fields:end -->";

// Fields pgconverge keeps accepting that StackGres 1.18's CRDs no longer have (older SGCluster
// manifests carry them).
const std::set<std::string> k_legacy = {
    "SGCluster spec.prometheusAutobind",
    "SGCluster spec.configurations.sgBackupConfig",
    "SGCluster spec.configurations.backupPath",
};

struct InventoryLine {
  std::string kind, path, type;
};

struct Inventory {
  std::string header;
  std::vector<InventoryLine> lines;
  std::map<std::string, std::string> type_of;  // "Kind path" → type
};

Inventory read_inventory() {
  std::ifstream in(k_inventory);
  REQUIRE(in);
  Inventory inventory;
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("#")) {
      inventory.header = line;
      continue;
    }
    std::istringstream fields(line);
    InventoryLine entry;
    fields >> entry.kind >> entry.path >> entry.type;
    REQUIRE(!entry.type.empty());
    inventory.type_of[entry.kind + " " + entry.path] = entry.type;
    inventory.lines.push_back(std::move(entry));
  }
  return inventory;
}

// One node of a kind's schema tree, with the disposition it has once its ancestors count.
struct SchemaNode {
  const FieldSchema* schema;
  std::string disposition;
};

// What the docs say pgconverge does with a field. A field without a disposition of its own shares
// that of its nearest ancestor with one (inherited, whose disposition is inherited_kind).
std::string describe_disposition(const FieldSchema& s, const std::string& inherited, const std::string& inherited_kind) {
  const std::string from_ancestor = inherited.empty() ? "" : inherited_kind + " (with `" + inherited + "`)";
  if (s.refusal) {
    std::string text = "refused " + s.refusal->when + ": " + s.refusal->why + "; " + s.refusal->instead;
    if (s.ignored) text += "; otherwise ignored: " + s.reason;
    else if (inherited_kind == "ignored") text += "; otherwise " + from_ancestor;
    return text;
  }
  if (s.ignored) return "ignored: " + s.reason;
  return from_ancestor.empty() ? "honoured" : from_ancestor;
}

// Every node below s (declared at path) in the inventory's notation: "[]" for list items, "{}"
// for map values.
void collect_nodes(const FieldSchema& s, const std::string& path, const std::string& inherited,
             const std::string& inherited_kind, std::map<std::string, SchemaNode>& out) {
  out[path] = SchemaNode{&s, describe_disposition(s, inherited, inherited_kind)};
  std::string next = inherited, next_kind = inherited_kind;
  if (s.disposition() != Disposition::honoured) {
    next = path;
    next_kind = s.refusal ? "refused" : "ignored";
  }
  if (s.type == FieldType::object)
    for (const auto& [name, field] : s.fields) collect_nodes(field, path + "." + name, next, next_kind, out);
  const std::string item = s.type == FieldType::list ? "[]" : s.type == FieldType::map ? "{}" : "";
  if (!item.empty() && !s.element.empty()) collect_nodes(s.element.front(), path + item, next, next_kind, out);
}

std::map<std::string, SchemaNode> schema_nodes(const std::string& kind) {
  std::map<std::string, SchemaNode> out;
  const FieldSchema* document = document_schema(kind);
  REQUIRE(document);
  collect_nodes(*document->field("spec"), "spec", "", "", out);
  return out;
}

// The node an inventory path resolves to: itself, or the nearest any() node above it, which
// takes the whole subtree. nullptr: no disposition.
const SchemaNode* resolve_path(const std::map<std::string, SchemaNode>& nodes, std::string path) {
  if (auto it = nodes.find(path); it != nodes.end()) return &it->second;
  while (true) {
    const auto cut = path.find_last_of(".[{");
    if (cut == std::string::npos || cut == 0) return nullptr;
    path.resize(cut);
    if (auto it = nodes.find(path); it != nodes.end())
      return it->second.schema->type == FieldType::any ? &it->second : nullptr;
  }
}

// Whether pgconverge's type checks what the CRD's type allows (any: pgconverge may be stricter).
bool crd_type_allows(const std::string& crd, FieldType ours) {
  if (ours == FieldType::any || crd == "any") return true;
  if (crd == "string" || crd == "int-or-string" || crd == "number") return ours == FieldType::string;
  if (crd == "integer") return ours == FieldType::integer;
  if (crd == "boolean") return ours == FieldType::boolean;
  if (crd == "object") return ours == FieldType::object;
  if (crd == "map") return ours == FieldType::map;
  if (crd == "list") return ours == FieldType::list;
  return false;
}

// Whether key ("Kind path") lies below a field whose content the CRD leaves open (type any), where
// pgconverge may check more than the CRD does (dynamicConfig's keys, PgBouncer's parameters).
bool below_open_field(const Inventory& inventory, std::string key) {
  while (true) {
    const auto cut = key.find_last_of(".[{");
    if (cut == std::string::npos || key.find(' ') > cut) return false;
    key.resize(cut);
    if (auto it = inventory.type_of.find(key); it != inventory.type_of.end() && it->second == "any") return true;
  }
}

// The StackGres kinds pgconverge manages (pgconverge.io kinds are its own, not in the CRDs).
std::vector<std::string> managed_stackgres_kinds() {
  std::vector<std::string> out;
  for (const auto& k : supported_kinds())
    if (k.api_version.starts_with("stackgres.io/")) out.push_back(k.kind);
  return out;
}

// The docs table: one row per schema node the CRDs have, with how many inventory paths an any()
// node covers below it.
std::string expected_table(const Inventory& inventory) {
  std::ostringstream table;
  table << "| kind | field | type | what pgconverge does |\n|---|---|---|---|\n";
  for (const auto& kind : managed_stackgres_kinds()) {
    const auto nodes = schema_nodes(kind);
    for (const auto& line : inventory.lines) {
      if (line.kind != kind) continue;
      auto it = nodes.find(line.path);
      if (it == nodes.end()) continue;  // below an any() node: counted on its row
      std::size_t below = 0;
      if (it->second.schema->type == FieldType::any)
        for (const auto& other : inventory.lines)
          if (other.kind == kind && other.path.size() > line.path.size() && other.path.starts_with(line.path) &&
              std::string(".[{").find(other.path[line.path.size()]) != std::string::npos)
            ++below;
      std::string text = it->second.disposition;
      if (below) text += " (so are the " + std::to_string(below) + " fields below it)";
      std::string escaped;
      for (char c : text) escaped += c == '|' ? std::string("\\|") : std::string(1, c);
      table << "| " << kind << " | `" << line.path << "` | " << line.type << " | " << escaped << " |\n";
    }
  }
  return table.str();
}

std::string docs_table() {
  std::ifstream in(k_docs);
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  const std::string docs = text.str();
  const auto begin = docs.find(k_table_begin);
  const auto end = docs.find(k_table_end);
  REQUIRE(begin != std::string::npos);
  REQUIRE(end != std::string::npos);
  const auto start = begin + k_table_begin.size() + 1;
  REQUIRE(end >= start);
  return docs.substr(start, end - start);
}

std::vector<std::string> inventory_printed(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& d : parse_text(text, "c.yaml").diagnostics) out.push_back(d.str());
  return out;
}

const std::string k_inventory_cluster =
    "apiVersion: stackgres.io/v1\n"  // 1
    "kind: SGCluster\n"              // 2
    "metadata:\n"                    // 3
    "  name: c\n"                    // 4
    "spec:\n"                        // 5
    "  postgres: {version: '16'}\n"  // 6
    "  instances: 2\n";              // 7

}  // namespace

TEST_CASE("the inventory was generated from StackGres's CRDs and holds every kind", "[manifests][inventory]") {
  const auto inventory = read_inventory();
  CHECK(inventory.header.find("ongres/stackgres 085f6d0e445be63bc5180f5ac049cf2d1e5c9aea") != std::string::npos);
  std::set<std::string> kinds;
  for (const auto& line : inventory.lines) kinds.insert(line.kind);
  CHECK(kinds == std::set<std::string>{"SGCluster", "SGPostgresConfig", "SGPoolingConfig", "SGInstanceProfile",
                                        "SGObjectStorage", "SGBackup", "SGDbOps"});
  for (const auto& kind : managed_stackgres_kinds()) CHECK(kinds.contains(kind));
  // The kinds pgconverge does not manage are skipped with a warning, as before, until an issue
  // gives them a reader: they have no schema.
  for (const auto& kind : kinds) {
    if (document_schema(kind)) continue;
    const KindRow* row = find_kind(kind);
    REQUIRE(row);
    CHECK_FALSE(row->managed);
  }
}

TEST_CASE("every CRD field of a managed kind has a disposition and a type the CRD allows",
          "[manifests][inventory]") {
  const auto inventory = read_inventory();
  for (const auto& kind : managed_stackgres_kinds()) {
    const auto nodes = schema_nodes(kind);
    std::vector<std::string> unresolved, mistyped;
    for (const auto& line : inventory.lines) {
      if (line.kind != kind) continue;
      const SchemaNode* node = resolve_path(nodes, line.path);
      if (!node) unresolved.push_back(line.path);
      else if (nodes.contains(line.path) && !crd_type_allows(line.type, node->schema->type))
        mistyped.push_back(line.path + " " + line.type);
    }
    INFO(kind);
    CHECK(unresolved == std::vector<std::string>{});
    CHECK(mistyped == std::vector<std::string>{});
  }
}

TEST_CASE("the schema has no field the CRDs lack, but the legacy ones", "[manifests][inventory]") {
  const auto inventory = read_inventory();
  for (const auto& kind : managed_stackgres_kinds()) {
    std::vector<std::string> extra;
    for (const auto& [path, node] : schema_nodes(kind)) {
      const std::string key = kind + " " + path;
      bool legacy = false;
      for (const auto& old : k_legacy) legacy = legacy || key == old || key.starts_with(old + ".");
      if (!legacy && !inventory.type_of.contains(key) && !below_open_field(inventory, key)) extra.push_back(key);
    }
    CHECK(extra == std::vector<std::string>{});
  }
}

TEST_CASE("docs/manifests.md lists every CRD field with what the schema does with it", "[manifests][inventory]") {
  const std::string expected = expected_table(read_inventory());
  const std::string actual = docs_table();
  if (actual != expected) {
    const auto out = std::filesystem::path(PGC_BINARY_DIR) / "stackgres-fields-table.md";
    std::ofstream(out) << expected;
    FAIL("the table between the stackgres-fields markers of docs/manifests.md differs from the schema's; the "
         "expected table is in "
         << out.string());
  }
}

TEST_CASE("a refused field set to a value that matters is an error naming why and what to do",
          "[manifests][inventory]") {
  auto messages = inventory_printed(k_inventory_cluster +
                          "  pods:\n"                                  // 8
                          "    updateStrategy:\n"                      // 9
                          "      type: OnlyDbOps\n"                    // 10
                          "      method: ReducedImpact\n"              // 11
                          "    customEnv:\n"                           // 12
                          "      patroni: [{name: A, value: b}]\n"     // 13
                          "  configurations:\n"                        // 14
                          "    backups:\n"                             // 15
                          "    - sgObjectStorage: s3\n"                // 16
                          "      retention: many\n"                    // 17
                          "    postgres:\n"                            // 18
                          "      postgresql.conf: {work_mem: 8MB}\n"   // 19
                          "  managedSql:\n"                            // 20
                          "    scripts:\n"                             // 21
                          "    - {id: 0, sgScript: c-default}\n"       // 22
                          "    - {id: 1, sgScript: app-schema}\n"      // 23
                          "  initialData:\n"                           // 24
                          "    restore: {fromBackup: {name: b}}\n");   // 25
  REQUIRE(messages.size() == 10);
  CHECK(messages[0].starts_with("c.yaml:10:7: spec.pods.updateStrategy.type: not supported on VMs: pgconverge "
                                "restarts the members"));
  CHECK(messages[0].ends_with("; set type: Always (or remove it) and run apply when a restart is acceptable: plan "
                              "lists the restarts first"));
  CHECK(messages[1].starts_with("c.yaml:11:7: spec.pods.updateStrategy.method: not supported on VMs: "));
  CHECK(messages[2] == "c.yaml:12:5: warning: spec.pods.customEnv: ignored on VMs (there are no pods or containers "
                       "on VMs; only the patroni container's environment would matter)");
  CHECK(messages[3].starts_with("c.yaml:13:7: spec.pods.customEnv.patroni: not supported on VMs: Patroni and "
                                "PostgreSQL run as pgconverge's services"));
  // A refused subtree's own type errors are reported; the refusal too, once, at its top.
  CHECK(messages[4].starts_with("c.yaml:15:5: spec.configurations.backups: not supported on VMs: pgconverge takes "
                                "no backups"));
  CHECK(messages[5] == "c.yaml:17:7: spec.configurations.backups[0].retention: must be an integer (got \"many\")");
  CHECK(messages[6].starts_with("c.yaml:19:7: spec.configurations.postgres.postgresql.conf: not supported on VMs: "));
  CHECK(messages[7].starts_with("c.yaml:21:5: warning: spec.managedSql.scripts: ignored on VMs"));
  CHECK(messages[8].starts_with("c.yaml:23:7: spec.managedSql.scripts[1]: not supported on VMs: SGScript"));
  CHECK(messages[9].starts_with("c.yaml:25:5: spec.initialData.restore: not supported on VMs: restoring a backup "
                                "is not supported"));
}

TEST_CASE("replicateFrom is refused: ignoring it would bootstrap a writable primary where a standby is declared",
          "[manifests][inventory]") {
  auto messages = inventory_printed(k_inventory_cluster +
                                    "  replicateFrom:\n"                           // 8
                                    "    instance: {sgCluster: source}\n");        // 9
  REQUIRE(messages.size() == 1);
  CHECK(messages[0] == "c.yaml:8:3: spec.replicateFrom: not supported on VMs: a standby cluster is not supported "
                       "yet: pgconverge would bootstrap an empty, writable primary instead of a standby of the "
                       "source; remove replicateFrom, or leave this cluster out of the manifests pgconverge applies "
                       "until standby clusters are supported");
}

TEST_CASE("a refused field set to a harmless value loads", "[manifests][inventory]") {
  auto result = parse_text(k_inventory_cluster +
                               "  pods:\n"                               // 8
                               "    updateStrategy:\n"                   // 9
                               "      type: Always\n"                    // 10
                               "      method: InPlace\n"                 // 11
                               "    customContainers: []\n"              // 12
                               "  configurations:\n"                     // 13
                               "    backups: []\n"                       // 14
                               "    credentials: {}\n"                   // 15
                               "    postgres: {postgresql.conf: {}}\n"   // 16
                               "  managedSql:\n"                         // 17
                               "    scripts: [{id: 0, sgScript: c-default}]\n",  // 18
                           "c.yaml");
  std::vector<std::string> messages;
  for (const auto& d : result.diagnostics) messages.push_back(d.str());
  CHECK(messages == std::vector<std::string>{
                        "c.yaml:18:5: warning: spec.managedSql.scripts: ignored on VMs (StackGres's own "
                        "CLUSTER-default script has nothing to run on VMs)",
                    });
  CHECK(result.manifests.clusters.size() == 1);
}

TEST_CASE("a StackGres 1.18 manifest with update strategy, observability, probes and custom environment loads",
          "[manifests][inventory]") {
  auto result = parse_text(k_inventory_cluster +
                               "  pods:\n"                                           // 8
                               "    persistentVolume: {size: 10Gi, fsGroupChangePolicy: OnRootMismatch}\n"  // 9
                               "    updateStrategy:\n"                               // 10
                               "      type: Always\n"                                // 11
                               "      schedule: [{cron: '0 1 * * *', duration: PT1H}]\n"  // 12
                               "    readinessProbe: {periodSeconds: 5}\n"            // 13
                               "    livenessProbe: {failureThreshold: 6}\n"          // 14
                               "    terminationGracePeriodSeconds: 60\n"             // 15
                               "    customEnv:\n"                                    // 16
                               "      my-sidecar: [{name: LEVEL, value: debug}]\n"   // 17
                               "    customInitEnvFrom:\n"                            // 18
                               "      my-init: [{configMapRef: {name: env}}]\n"      // 19
                               "  configurations:\n"                                 // 20
                               "    observability:\n"                                // 21
                               "      disableMetrics: false\n"                       // 22
                               "      prometheusAutobind: true\n"                    // 23
                               "    postgresExporter: {queries: {pg_up: {}}}\n",     // 24
                           "c.yaml");
  std::vector<std::string> messages;
  for (const auto& d : result.diagnostics) messages.push_back(d.str());
  CHECK(messages ==
        std::vector<std::string>{
            "c.yaml:9:36: warning: spec.pods.persistentVolume.fsGroupChangePolicy: ignored on VMs (the data "
            "directory's owner is set by the packages)",
            "c.yaml:12:7: warning: spec.pods.updateStrategy.schedule: ignored on VMs (only used by type Schedule)",
            "c.yaml:13:5: warning: spec.pods.readinessProbe: ignored on VMs (there are no Kubernetes probes; "
            "Patroni's ttl and loop_wait (dynamicConfig) decide when a member has failed)",
            "c.yaml:14:5: warning: spec.pods.livenessProbe: ignored on VMs (there are no Kubernetes probes; "
            "Patroni's ttl and loop_wait (dynamicConfig) decide when a member has failed)",
            "c.yaml:15:5: warning: spec.pods.terminationGracePeriodSeconds: ignored on VMs (systemd stops "
            "Patroni, which stops PostgreSQL with its own timeouts)",
            "c.yaml:16:5: warning: spec.pods.customEnv: ignored on VMs (there are no pods or containers on VMs; "
            "only the patroni container's environment would matter)",
            "c.yaml:18:5: warning: spec.pods.customInitEnvFrom: ignored on VMs (there are no pods or containers "
            "on VMs)",
            "c.yaml:21:5: warning: spec.configurations.observability: ignored on VMs (there is no Prometheus "
            "integration)",
            "c.yaml:24:24: warning: spec.configurations.postgresExporter.queries: ignored on VMs (the exporter "
            "runs its own default queries; metrics only, no data)",
        });
  REQUIRE(result.manifests.clusters.size() == 1);
  CHECK(result.manifests.clusters[0].persistent_volume_size == "10Gi");
}

TEST_CASE("the types of refused and ignored fields follow the CRD", "[manifests][inventory]") {
  auto messages = inventory_printed(k_inventory_cluster +
                          "  pods:\n"                                    // 8
                          "    updateStrategy: {type: [Always]}\n"       // 9
                          "    readinessProbe: {periodSeconds: often}\n"  // 10
                          "  nonProductionOptions:\n"                    // 11
                          "    enabledFeatureGates: babelfish\n");       // 12
  CHECK(messages == std::vector<std::string>{
                        "c.yaml:9:22: spec.pods.updateStrategy.type: must be a string (got a list)",
                        "c.yaml:10:5: warning: spec.pods.readinessProbe: ignored on VMs (there are no Kubernetes "
                        "probes; Patroni's ttl and loop_wait (dynamicConfig) decide when a member has failed)",
                        "c.yaml:10:22: spec.pods.readinessProbe.periodSeconds: must be an integer (got \"often\")",
                        "c.yaml:11:3: warning: spec.nonProductionOptions: ignored on VMs (Kubernetes anti-affinity "
                        "and resource options)",
                        "c.yaml:12:5: spec.nonProductionOptions.enabledFeatureGates: must be a list (got "
                        "\"babelfish\")",
                    });
}

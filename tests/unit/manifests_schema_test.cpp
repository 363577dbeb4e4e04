#include <catch2/catch.hpp>

#include "manifests/loader.hpp"
#include "manifests/schema.hpp"

using namespace pgc::manifests;

namespace {

// Schema findings of one file (parse_text runs no cross-document validation).
std::vector<std::string> printed(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& d : parse_text(text, "c.yaml").diagnostics) out.push_back(d.str());
  return out;
}

const std::string k_cluster_head =
    "apiVersion: stackgres.io/v1\n"  // 1
    "kind: SGCluster\n"              // 2
    "metadata:\n"                    // 3
    "  name: c\n"                    // 4
    "spec:\n";                       // 5

}  // namespace

TEST_CASE("unknown fields are errors with a did-you-mean hint when a sibling is close",
          "[manifests][schema]") {
  auto messages = printed(k_cluster_head +
                          "  pod: {}\n"                    // 6
                          "  Instances: 2\n"               // 7
                          "  foo: 1\n"                     // 8
                          "  replication:\n"               // 9
                          "    synInstances: 1\n"          // 10
                          "  postgres:\n"                  // 11
                          "    version: '15'\n"            // 12
                          "    flavour: vanilla\n");       // 13
  CHECK(messages == std::vector<std::string>{
                        "c.yaml:6:3: spec.pod: unknown field (did you mean 'spec.pods'?)",
                        "c.yaml:7:3: spec.Instances: unknown field (did you mean 'spec.instances'?)",
                        "c.yaml:8:3: spec.foo: unknown field",
                        "c.yaml:10:5: spec.replication.synInstances: unknown field (did you mean "
                        "'spec.replication.syncInstances'?)",
                        "c.yaml:13:5: spec.postgres.flavour: unknown field (did you mean 'spec.postgres.flavor'?)",
                    });
}

TEST_CASE("unknown fields are found in metadata and in pgconverge's own kinds", "[manifests][schema]") {
  auto messages = printed(
      "apiVersion: pgconverge.io/v1\n"  // 1
      "kind: Host\n"                    // 2
      "metadata:\n"                     // 3
      "  nmae: pg-1\n"                  // 4
      "spec:\n"                         // 5
      "  adress: 10.0.0.1\n"            // 6
      "  ssh:\n"                        // 7
      "    prot: 22\n"                  // 8
      "extra: 1\n");                    // 9
  CHECK(messages == std::vector<std::string>{
                        "c.yaml:4:3: metadata.nmae: unknown field (did you mean 'metadata.name'?)",
                        "c.yaml:6:3: spec.adress: unknown field (did you mean 'spec.address'?)",
                        "c.yaml:8:5: spec.ssh.prot: unknown field (did you mean 'spec.ssh.port'?)",
                        "c.yaml:9:1: extra: unknown field",
                    });
}

TEST_CASE("wrong types are errors naming the expected type and the value", "[manifests][schema]") {
  auto messages = printed(k_cluster_head +
                          "  instances: two\n"                           // 6
                          "  postgres:\n"                                // 7
                          "    version: [15]\n"                          // 8
                          "  pods:\n"                                    // 9
                          "    disableConnectionPooling: yes\n"          // 10
                          "    scheduling:\n"                            // 11
                          "      nodeSelector:\n"                        // 12
                          "        zone: {a: b}\n"                       // 13
                          "  replication: sync\n"                        // 14
                          "  configurations:\n"                          // 15
                          "    patroni:\n"                               // 16
                          "      dynamicConfig: [ttl]\n");               // 17
  CHECK(messages == std::vector<std::string>{
                        "c.yaml:6:3: spec.instances: must be an integer (got \"two\")",
                        "c.yaml:8:5: spec.postgres.version: must be a string (got a list)",
                        "c.yaml:10:5: spec.pods.disableConnectionPooling: must be a boolean (true or false) "
                        "(got \"yes\")",
                        "c.yaml:13:9: spec.pods.scheduling.nodeSelector.zone: must be a string (got a mapping)",
                        "c.yaml:14:3: spec.replication: must be a mapping (got \"sync\")",
                        "c.yaml:17:7: spec.configurations.patroni.dynamicConfig: must be a mapping (got a list)",
                    });
}

TEST_CASE("a quoted number is a string, not an integer or a boolean", "[manifests][schema]") {
  auto messages = printed(k_cluster_head +
                          "  instances: '3'\n"                  // 6
                          "  replication:\n"                    // 7
                          "    groups: {name: a}\n"             // 8
                          "  pods:\n"                           // 9
                          "    disableConnectionPooling: \"false\"\n");  // 10
  CHECK(messages == std::vector<std::string>{
                        "c.yaml:6:3: spec.instances: must be an integer (got the string \"3\")",
                        "c.yaml:8:5: spec.replication.groups: must be a list (got a mapping)",
                        "c.yaml:10:5: spec.pods.disableConnectionPooling: must be a boolean (true or false) "
                        "(got the string \"false\")",
                    });
}

TEST_CASE("a field with the wrong type is listed as invalid and keeps the model default",
          "[manifests][schema]") {
  auto result = parse_text(k_cluster_head + "  instances: two\n  replication:\n    syncInstances: 2\n", "c.yaml");
  REQUIRE(result.manifests.clusters.size() == 1);
  const auto& c = result.manifests.clusters.front();
  CHECK(c.instances == 1);
  CHECK(c.invalid_fields == std::set<std::string>{"spec.instances"});
  CHECK(c.replication.sync_instances == 2);
}

TEST_CASE("real StackGres fields pgconverge does not use are accepted with one warning each",
          "[manifests][schema]") {
  auto messages = printed(k_cluster_head +
                          "  pods:\n"                                       // 6
                          "    persistentVolume:\n"                         // 7
                          "      size: '10Gi'\n"                            // 8
                          "    scheduling:\n"                               // 9
                          "      tolerations:\n"                            // 10
                          "      - key: a\n"                                // 11
                          "        operator: Exists\n"                      // 12
                          "  prometheusAutobind: true\n"                    // 13
                          "  replication:\n"                                // 14
                          "    groups:\n"                                   // 15
                          "    - instances: 1\n"                            // 16
                          "      minInstances: 1\n"                         // 17
                          "  distributedLogs:\n"                            // 18
                          "    sgDistributedLogs: logs\n"                   // 19
                          "status:\n"                                       // 20
                          "  podStatuses: []\n");                           // 21
  CHECK(messages ==
        std::vector<std::string>{
            "c.yaml:10:7: warning: spec.pods.scheduling.tolerations: ignored on VMs (Kubernetes scheduling; "
            "only nodeSelector is used)",
            "c.yaml:17:7: warning: spec.replication.groups[0].minInstances: ignored on VMs (only used by "
            "autoscaling)",
            "c.yaml:18:3: warning: spec.distributedLogs: ignored on VMs (logs stay on each host)",
            "c.yaml:20:1: warning: status: ignored on VMs (status is observed, never declared)",
        });
}

TEST_CASE("Kubernetes bookkeeping in metadata is ignored with a warning", "[manifests][schema]") {
  auto messages = printed(
      "apiVersion: stackgres.io/v1\n"       // 1
      "kind: SGInstanceProfile\n"           // 2
      "metadata:\n"                         // 3
      "  name: size-s\n"                    // 4
      "  uid: 1234\n"                       // 5
      "  resourceVersion: '99'\n"           // 6
      "spec:\n"                             // 7
      "  cpu: '1'\n"                        // 8
      "  requests: {cpu: '1'}\n");          // 9
  CHECK(messages == std::vector<std::string>{
                        "c.yaml:5:3: warning: metadata.uid: ignored on VMs (Kubernetes bookkeeping)",
                        "c.yaml:6:3: warning: metadata.resourceVersion: ignored on VMs (Kubernetes bookkeeping)",
                        "c.yaml:9:3: warning: spec.requests: ignored on VMs (there are no container resource "
                        "requests)",
                    });
}

TEST_CASE("a duplicate key is an error naming the first one", "[manifests][schema]") {
  auto messages = printed(k_cluster_head +
                          "  instances: 2\n"   // 6
                          "  instances: 3\n"); // 7
  CHECK(messages == std::vector<std::string>{
                        "c.yaml:7:3: spec.instances: duplicate key (first declared at c.yaml:6:3)",
                    });
  // The first value is the one used.
  CHECK(parse_text(k_cluster_head + "  instances: 2\n  instances: 3\n", "c.yaml").manifests.clusters[0].instances == 2);
}

TEST_CASE("kind and apiVersion select the schema", "[manifests][schema]") {
  CHECK(printed("apiVersion: stackgres.io/v1\nkind: SGClustr\nmetadata: {name: c}\n") ==
        std::vector<std::string>{"c.yaml:2:1: kind: unknown kind \"SGClustr\" (did you mean 'SGCluster'?)"});
  CHECK(printed("apiVersion: stackgres.io/v1\nkind: Deployment\n") ==
        std::vector<std::string>{
            "c.yaml:2:1: kind: unknown kind \"Deployment\" (expected SGCluster, SGPostgresConfig, "
            "SGInstanceProfile, SGPoolingConfig, Host or EtcdCluster)"});
  // A kind close to one of pgconverge's is a typo even under another group.
  CHECK(printed("apiVersion: v1\nkind: SGClustr\nmetadata: {name: c}\n") ==
        std::vector<std::string>{"c.yaml:2:1: kind: unknown kind \"SGClustr\" (did you mean 'SGCluster'?)"});
  CHECK(printed("apiVersion: stackgres.io/v1beta1\nkind: SGCluster\nmetadata: {name: c}\n") ==
        std::vector<std::string>{
            "c.yaml:1:1: apiVersion: must be stackgres.io/v1 for kind SGCluster (got \"stackgres.io/v1beta1\")"});
  CHECK(printed("apiVersion: stackgres.io/v1\nkind: Host\nmetadata: {name: h}\n") ==
        std::vector<std::string>{"c.yaml:1:1: apiVersion: must be pgconverge.io/v1 for kind Host (got "
                                 "\"stackgres.io/v1\")"});
  CHECK(printed("metadata: {name: c}\nkind: SGCluster\n") ==
        std::vector<std::string>{"c.yaml:1:1: apiVersion: is required"});
  CHECK(printed("apiVersion: stackgres.io/v1\nmetadata: {name: c}\n") ==
        std::vector<std::string>{"c.yaml:1:1: kind: is required"});
  CHECK(printed("- a\n- b\n") ==
        std::vector<std::string>{"c.yaml:1:1: a manifest must be a mapping (got a list)"});
}

TEST_CASE("Kubernetes objects beside the manifests (helm output) are skipped with a warning", "[manifests][schema]") {
  auto result = parse_text("apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\n"
                           "stringData: {superuser-password: hunter2}\n---\n"
                           "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\n---\n"
                           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: b}\n",
                           "c.yaml");
  std::vector<std::string> printed_lines;
  for (const auto& d : result.diagnostics) printed_lines.push_back(d.str());
  CHECK(printed_lines ==
        std::vector<std::string>{
            "c.yaml:2:1: warning: kind: Secret (apiVersion v1) is not a StackGres or pgconverge kind; document skipped "
            "(its values are not read: pgconverge keeps the clusters' credentials in its state directory)",
            "c.yaml:7:1: warning: kind: Deployment (apiVersion apps/v1) is not a StackGres or pgconverge kind; "
            "document skipped",
            "c.yaml:11:1: warning: kind: ConfigMap (apiVersion v1) is not a StackGres or pgconverge kind; document "
            "skipped"});
  for (const auto& line : printed_lines) CHECK(line.find("hunter2") == std::string::npos);
  CHECK(result.manifests.clusters.empty());
}

TEST_CASE("StackGres kinds pgconverge does not manage are skipped with a warning", "[manifests][schema]") {
  auto result = parse_text("apiVersion: stackgres.io/v1beta1\nkind: SGObjectStorage\nmetadata: {name: s3}\n"
                           "spec: {type: s3}\n",
                           "c.yaml");
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics[0].str() ==
        "c.yaml:2:1: warning: kind: SGObjectStorage is not managed by pgconverge; document ignored");
  CHECK_FALSE(has_errors(result.diagnostics));
}

TEST_CASE("Host and EtcdCluster are not namespaced", "[manifests][schema]") {
  CHECK(printed("apiVersion: pgconverge.io/v1\nkind: EtcdCluster\nmetadata:\n  name: etcd\n"
                "  namespace: failover\nspec:\n  endpoints: ['10.0.0.2:2379']\n") ==
        std::vector<std::string>{"c.yaml:5:3: warning: metadata.namespace: ignored (EtcdCluster is not namespaced)"});
}

TEST_CASE("dynamicConfig accepts any Patroni keys and records their locations", "[manifests][schema]") {
  auto result = parse_text(k_cluster_head +
                               "  configurations:\n"                 // 6
                               "    patroni:\n"                      // 7
                               "      dynamicConfig:\n"              // 8
                               "        ttl: 20\n"                   // 9
                               "        postgresql:\n"               // 10
                               "          pg_hba:\n"                 // 11
                               "          - host all all 0.0.0.0/0 md5\n",  // 12
                           "c.yaml");
  CHECK(result.diagnostics.empty());
  const auto& c = result.manifests.clusters.at(0);
  CHECK(c.locations.at("spec.configurations.patroni.dynamicConfig.ttl").str() == "c.yaml:9:9");
  CHECK(c.locations.at("spec.configurations.patroni.dynamicConfig.postgresql.pg_hba[0]").str() ==
        "c.yaml:12:13");
}

TEST_CASE("every supported kind has a schema with spec and metadata", "[manifests][schema]") {
  for (const auto& k : supported_kinds()) {
    const FieldSchema* schema = document_schema(k.kind);
    REQUIRE(schema);
    CHECK(schema->field("spec"));
    CHECK(schema->field("metadata"));
  }
  CHECK(document_schema("SGBackup") == nullptr);
  // The subtrees pgconverge acts on are checked field by field, not accepted as "any".
  const FieldSchema* spec = document_schema("SGCluster")->field("spec");
  CHECK(spec->field("replication")->field("groups")->type == FieldType::list);
  CHECK_FALSE(spec->field("pods")->ignored);
  CHECK_FALSE(spec->field("pods")->field("persistentVolume")->ignored);
  CHECK(spec->field("pods")->field("persistentVolume")->field("storageClass")->ignored);
  CHECK(spec->field("pods")->field("scheduling")->field("nodeSelector")->type == FieldType::map);
}

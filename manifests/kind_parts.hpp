#pragma once
// Each manifest kind's own pieces, which the kinds table (kinds.cpp) strings together. Internal
// to manifests/: the schema of each spec (schema.cpp), the reader of each kind's fields
// (document.cpp), the identity rules shared by all kinds and each kind's own rules
// (validate.cpp).

#include <vector>

#include "manifests/model.hpp"
#include "manifests/schema.hpp"
#include "manifests/yaml_value.hpp"
#include "util/source_location.hpp"

namespace pgc::manifests {

struct KindRow;

// schema.cpp: the schema of each kind's spec (apiVersion, kind, metadata and status are the
// same for every kind).
FieldSchema sgcluster_spec();
FieldSchema sgpostgresconfig_spec();
FieldSchema sginstanceprofile_spec();
FieldSchema sgpoolingconfig_spec();
FieldSchema host_spec();
FieldSchema etcdcluster_spec();

// document.cpp: a schema-checked document's fields; a field of the wrong type keeps its default.
SGCluster read_cluster(const YamlValue& document, ManifestBase base, Diagnostics& diagnostics);
SGPostgresConfig read_postgres_config(const YamlValue& document, ManifestBase base, Diagnostics& diagnostics);
SGInstanceProfile read_instance_profile(const YamlValue& document, ManifestBase base, Diagnostics& diagnostics);
SGPoolingConfig read_pooling_config(const YamlValue& document, ManifestBase base, Diagnostics& diagnostics);
Host read_host(const YamlValue& document, ManifestBase base, Diagnostics& diagnostics);
EtcdCluster read_etcd_cluster(const YamlValue& document, ManifestBase base, Diagnostics& diagnostics);

// validate.cpp: metadata.name/namespace syntax and duplicates of one kind's manifests.
void check_identities(const std::vector<const ManifestBase*>& manifests, const KindRow& row, Diagnostics& diagnostics);
// validate.cpp: each kind's own rules.
void check_clusters(const ManifestSet& set, Diagnostics& diagnostics);
void check_postgres_configs(const ManifestSet& set, Diagnostics& diagnostics);
void check_instance_profiles(const ManifestSet& set, Diagnostics& diagnostics);
void check_pooling_configs(const ManifestSet& set, Diagnostics& diagnostics);
void check_hosts(const ManifestSet& set, Diagnostics& diagnostics);
void check_etcd_clusters(const ManifestSet& set, Diagnostics& diagnostics);

}  // namespace pgc::manifests

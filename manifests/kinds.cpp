// The kinds table: each kind's row, and the generic parts a row's list in ManifestSet gives.
#include "manifests/kinds.hpp"

#include <algorithm>

#include "manifests/kind_parts.hpp"

namespace pgc::manifests {

namespace {

// The functions of a managed kind stored in set.*List and read by Read.
template <auto List, auto Read>
KindRow managed(std::string kind, std::string api_version, bool namespaced, bool cluster_name, FieldSchema (*spec)(),
                void (*check)(const ManifestSet&, Diagnostics&)) {
  KindRow row;
  row.kind = std::move(kind);
  row.api_version = std::move(api_version);
  row.namespaced = namespaced;
  row.cluster_name = cluster_name;
  row.spec = spec;
  row.check = check;
  row.read = [](const YamlValue& document, ManifestBase base, ManifestSet& set, Diagnostics& diagnostics) {
    (set.*List).push_back(Read(document, std::move(base), diagnostics));
  };
  row.count = [](const ManifestSet& set) { return (set.*List).size(); };
  row.check_identities = [](const ManifestSet& set, const KindRow& self, Diagnostics& diagnostics) {
    std::vector<const ManifestBase*> list;
    for (const auto& m : set.*List) list.push_back(&m);
    check_identities(list, self, diagnostics);
  };
  return row;
}

KindRow unmanaged(std::string kind) {
  KindRow row;
  row.kind = std::move(kind);
  row.api_version = "stackgres.io/v1";
  row.managed = false;
  return row;
}

std::vector<KindRow> build_table() {
  constexpr bool namespaced = true, cluster_name = true;
  // One row per kind: its list in ManifestSet and reader, kind, apiVersion, scope, the name rule,
  // spec schema and rules.
  std::vector<KindRow> rows{
      managed<&ManifestSet::clusters, read_cluster>(  //
          "SGCluster", "stackgres.io/v1", namespaced, cluster_name, sgcluster_spec, check_clusters),
      managed<&ManifestSet::postgres_configs, read_postgres_config>(  //
          "SGPostgresConfig", "stackgres.io/v1", namespaced, !cluster_name, sgpostgresconfig_spec,
          check_postgres_configs),
      managed<&ManifestSet::instance_profiles, read_instance_profile>(  //
          "SGInstanceProfile", "stackgres.io/v1", namespaced, !cluster_name, sginstanceprofile_spec,
          check_instance_profiles),
      managed<&ManifestSet::pooling_configs, read_pooling_config>(  //
          "SGPoolingConfig", "stackgres.io/v1", namespaced, !cluster_name, sgpoolingconfig_spec,
          check_pooling_configs),
      managed<&ManifestSet::hosts, read_host>(  //
          "Host", "pgconverge.io/v1", !namespaced, !cluster_name, host_spec, check_hosts),
      managed<&ManifestSet::etcd_clusters, read_etcd_cluster>(  //
          "EtcdCluster", "pgconverge.io/v1", !namespaced, !cluster_name, etcdcluster_spec, check_etcd_clusters),
  };
  // StackGres kinds that exist but that pgconverge does not manage.
  for (const char* kind : {"SGBackup", "SGBackupConfig", "SGConfig", "SGDbOps", "SGDistributedLogs", "SGObjectStorage",
                           "SGScript", "SGShardedBackup", "SGShardedCluster", "SGShardedDbOps", "SGStream"})
    rows.push_back(unmanaged(kind));
  return rows;
}

}  // namespace

const std::vector<KindRow>& kind_table() {
  static const std::vector<KindRow> rows = build_table();
  return rows;
}

const KindRow* find_kind(std::string_view kind) {
  const auto& rows = kind_table();
  auto it = std::find_if(rows.begin(), rows.end(), [&](const KindRow& row) { return row.kind == kind; });
  return it == rows.end() ? nullptr : &*it;
}

std::size_t count_manifests(const ManifestSet& set) {
  std::size_t n = 0;
  for (const auto& row : kind_table())
    if (row.count) n += row.count(set);
  return n;
}

}  // namespace pgc::manifests

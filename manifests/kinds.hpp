#pragma once
// The kinds table: one row per manifest kind pgconverge knows (its own and StackGres'), which
// drives the schema lookup, the loader's dispatch, validation and counts. A new kind is one row
// in kinds.cpp plus its own pieces (kind_parts.hpp): model, spec schema, reader and rules.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "manifests/model.hpp"
#include "manifests/yaml_value.hpp"
#include "util/source_location.hpp"

namespace pgc::manifests {

struct FieldSchema;

struct KindRow {
  std::string kind;
  std::string api_version;
  // false: a StackGres kind pgconverge does not manage; its documents are skipped with a
  // warning, and every function below is null.
  bool managed = true;
  // false (Host, EtcdCluster): metadata.namespace is ignored with a warning, names are unique
  // across the whole set.
  bool namespaced = true;
  // metadata.name follows SGCluster's stricter rule (a DNS label of at most 44 characters).
  bool cluster_name = false;
  // The schema of the kind's spec.
  FieldSchema (*spec)() = nullptr;
  // Reads the fields of a schema-checked document and appends the manifest to its list in set.
  void (*read)(const YamlValue& document, ManifestBase base, ManifestSet& set, Diagnostics& diagnostics) = nullptr;
  // How many manifests of the kind set holds.
  std::size_t (*count)(const ManifestSet& set) = nullptr;
  // Name syntax and duplicates of the kind's manifests (the same rules for every kind).
  void (*check_identities)(const ManifestSet& set, const KindRow& row, Diagnostics& diagnostics) = nullptr;
  // The kind's own rules (validate.cpp), references to other kinds included.
  void (*check)(const ManifestSet& set, Diagnostics& diagnostics) = nullptr;
};

// Every row: the managed kinds in documentation order, then the StackGres kinds pgconverge
// skips. Built once; thread-safe.
const std::vector<KindRow>& kind_table();

// The row of kind (case-sensitive), or nullptr for a kind nobody defines.
const KindRow* find_kind(std::string_view kind);

// How many manifests set holds, all kinds together.
std::size_t count_manifests(const ManifestSet& set);

}  // namespace pgc::manifests

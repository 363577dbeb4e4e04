#pragma once
// Which fields exist in each kind (from the StackGres CRDs and pgconverge's own kinds), their
// types, and which real StackGres fields pgconverge ignores on VMs (and why).

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "manifests/model.hpp"
#include "manifests/yaml_value.hpp"
#include "util/source_location.hpp"

namespace pgc::manifests {

// string: any scalar (a number is read as its text). any: whatever content, not checked.
enum class FieldType { string, integer, boolean, object, map, list, any };

// What pgconverge does with a field: acts on it, accepts it with a warning, or refuses a value
// that would matter (see Refusal).
enum class Disposition { honoured, ignored, refused };

// A real StackGres field pgconverge cannot honour on VMs and may not ignore either, because
// ignoring it would change data, availability or security. A value that matters is an error
// "not supported on VMs: <why>; <instead>"; any other value (null, an empty mapping or list, the
// value pgconverge's behaviour already is) is accepted, with the ignored warning when the field is
// also ignored.
struct Refusal {
  std::string why;
  std::string instead;
  // When a value matters, as the docs say it after "refused": "when not empty", "unless Always".
  std::string when;
  // Whether value (the map key it is declared under, or "") matters; document is the whole
  // manifest. nullptr: every value but an empty mapping or list.
  bool (*matters)(const YamlValue& value, std::string_view key, const YamlValue& document) = nullptr;
};

// One node of a kind's schema tree.
struct FieldSchema {
  FieldType type = FieldType::any;
  // A real StackGres field that pgconverge accepts but does not act on; reason says why.
  bool ignored = false;
  std::string reason;
  // A real StackGres field refused when set to a value that matters (see Refusal); nullopt: none.
  std::optional<Refusal> refusal;
  std::vector<std::pair<std::string, FieldSchema>> fields;  // FieldType::object, in CRD order
  std::vector<FieldSchema> element;  // map values / list items: empty (any) or one schema

  // Defined in schema.cpp, where FieldSchema is complete: clang++ 14 (the fuzz build) otherwise
  // instantiates pair<string, FieldSchema>'s destructor inside the class and rejects it.
  FieldSchema();
  FieldSchema(const FieldSchema&);
  FieldSchema(FieldSchema&&) noexcept;
  FieldSchema& operator=(const FieldSchema&);
  FieldSchema& operator=(FieldSchema&&) noexcept;
  ~FieldSchema();

  // The schema of the named field of an object, or nullptr.
  [[nodiscard]] const FieldSchema* field(std::string_view name) const;
  // The names of an object's fields, in order.
  [[nodiscard]] std::vector<std::string> field_names() const;
  // Refused when it has a refusal, else ignored or honoured (ancestors not considered).
  [[nodiscard]] Disposition disposition() const;
};

// The kinds pgconverge reads, in documentation order, with their apiVersion (the managed rows
// of the kinds table, kinds.hpp).
struct KindInfo {
  std::string kind;
  std::string api_version;
};
const std::vector<KindInfo>& supported_kinds();

// StackGres kinds that exist but pgconverge does not manage (SGBackup, SGObjectStorage, …): the
// kinds table's other rows.
const std::vector<std::string>& unsupported_stackgres_kinds();

// The schema of a whole document of a supported kind (apiVersion, kind, metadata, spec from the
// kind's row, status), or nullptr for any other kind. The trees are built once; thread-safe.
const FieldSchema* document_schema(std::string_view kind);

// What a schema check of one document found.
struct SchemaCheck {
  Diagnostics diagnostics;         // unknown fields, wrong types, duplicate keys, ignored and refused fields
  FieldLocations locations;        // every field path seen → where it was declared
  std::set<std::string> invalid;   // paths whose value has the wrong type
};

// Checks value (declared at path; "" for the document) against schema, recording every field's
// location. Unknown fields get a "did you mean" hint when a sibling name is close; the first
// ignored field of a subtree gets one warning; a refused field set to a value that matters is an
// error (the outermost one of a subtree only); null values count as absent.
void check_schema(const YamlValue& value, const FieldSchema& schema, const std::string& path,
                  SchemaCheck& out);

// "must be an integer (got \"two\")"-style description of what a type expects.
std::string expected_type_phrase(FieldType type);

// The candidate word is most likely a typo of: closest_match(), or else a candidate that differs
// by one swap of adjacent letters ("nmae" → "name"), which edit distance counts as two.
std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// Joins a parent path and a field name ("spec" + "pods" → "spec.pods").
std::string child_path(const std::string& parent, std::string_view name);
// "spec.replication.groups" + 1 → "spec.replication.groups[1]".
std::string item_path(const std::string& parent, std::size_t index);

}  // namespace pgc::manifests

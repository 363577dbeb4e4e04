#pragma once
// Turning one parsed YAML document into a manifest of its kind: identity, schema check, fields.

#include "manifests/model.hpp"
#include "manifests/yaml_value.hpp"
#include "util/source_location.hpp"

namespace pgc::manifests {

// Identifies the document's kind, checks it against that kind's schema and appends the manifest
// to set (documents of unknown or unsupported kinds are reported and skipped). Every finding is
// appended to diagnostics; a field with the wrong type keeps the model's default and is listed in
// the manifest's invalid_fields.
void add_document(const YamlValue& document, ManifestSet& set, Diagnostics& diagnostics);

}  // namespace pgc::manifests

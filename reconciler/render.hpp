#pragma once
// `pgconverge render`: the desired state as a JSON or YAML document for people, secrets redacted.

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "reconciler/desired.hpp"
#include "reconciler/yaml_json.hpp"  // to_ordered_yaml

namespace pgc::reconciler {

enum class RenderFormat { yaml, json };

// "yaml" / "json" → the format; nullopt for anything else.
std::optional<RenderFormat> parse_render_format(std::string_view text);

// The document {"clusters":[{name, namespace, mode, role, instances, syncInstances,
// postgresVersion, postgresMajor, binDir, dynamicConfig, members:[{name, slot, host, address,
// role, group, tags, configPath, service, patroniConfig}], packages, repositories, dcs,
// etcdCluster}]} in that key order. Every secret reference ("secret:<kind>") and every value of a
// "password" key is shown as <redacted>: no secret can appear, whatever the input holds.
nlohmann::ordered_json render_tree(const DesiredState& state);

// render_tree() as text: JSON indented by 2, or block YAML (booleans true/false, strings quoted
// whenever YAML would read them as another type); ends with a newline.
std::string render(const DesiredState& state, RenderFormat format);

}  // namespace pgc::reconciler

// libFuzzer target: one manifest file's bytes through the whole offline pipeline,
// parse_text → validate → compile → render (JSON), as `pgconverge validate`/`render` run it.
// It must never crash, hang or leak, whatever the input (tests/fuzz/run.sh runs it), and what it
// compiles must read back as compiled (the DCS keys as pointers, patroni.yml, pgbouncer.ini).
#include <cstddef>
#include <cstdint>
#include <string>

#include "manifests/loader.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/pgbouncer_ini.hpp"
#include "reconciler/render.hpp"
#include "reconciler/yaml_json.hpp"
#include "util/json_pointer.hpp"

namespace {

// Every leaf of the DCS keys as the plan builds its PATCH (one escaped token per key): building
// it never throws and gives back exactly the compiled keys, whatever a key holds.
void dcs_pointers_round_trip(const nlohmann::json& config) {
  nlohmann::json patch = nlohmann::json::object();
  auto walk = [&](auto&& self, const nlohmann::json& value, const std::string& pointer) -> void {
    if (value.is_object() && !value.empty()) {
      for (auto it = value.begin(); it != value.end(); ++it) self(self, it.value(), pgc::pointer_append(pointer, it.key()));
      return;
    }
    patch[nlohmann::json::json_pointer(pointer)] = value;
  };
  walk(walk, config, "");
  if (!config.empty() && patch != config) __builtin_trap();
}

// What a member's patroni.yml says is what was compiled (nothing a value holds adds a setting),
// and pgbouncer.ini reads back as entries.
void rendered_files_read_back(const pgc::reconciler::DesiredCluster& cluster) {
  for (const auto& m : cluster.members) {
    auto back = pgc::reconciler::yaml_to_json(pgc::reconciler::to_yaml(m.patroni_config));
    if (!back || *back != m.patroni_config) __builtin_trap();
    for (const auto& f : m.files)
      if (f.path.ends_with("pgbouncer.ini") && !pgc::reconciler::parse_pgbouncer_ini(f.content)) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto loaded = pgc::manifests::parse_text(text, "fuzz.yaml");
  pgc::manifests::validate(loaded.manifests, loaded.diagnostics);
  for (const auto& d : loaded.diagnostics) (void)d.str();
  if (pgc::has_errors(loaded.diagnostics)) return 0;
  auto compiled = pgc::reconciler::compile(loaded.manifests);
  for (const auto& d : compiled.diagnostics) (void)d.str();
  if (pgc::has_errors(compiled.diagnostics)) return 0;
  for (const auto& cluster : compiled.state.clusters) {
    dcs_pointers_round_trip(cluster.dynamic_config);
    rendered_files_read_back(cluster);
  }
  (void)pgc::reconciler::render(compiled.state, pgc::reconciler::RenderFormat::json);
  (void)pgc::reconciler::render(compiled.state, pgc::reconciler::RenderFormat::yaml);
  return 0;
}

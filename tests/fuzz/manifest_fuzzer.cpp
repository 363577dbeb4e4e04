// libFuzzer target: one manifest file's bytes through the whole offline pipeline,
// parse_text → validate → compile → render (JSON), as `pgconverge validate`/`render` run it.
// It must never crash, hang or leak, whatever the input (tests/fuzz/run.sh runs it).
#include <cstddef>
#include <cstdint>
#include <string>

#include "manifests/loader.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/render.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto loaded = pgc::manifests::parse_text(text, "fuzz.yaml");
  pgc::manifests::validate(loaded.manifests, loaded.diagnostics);
  for (const auto& d : loaded.diagnostics) (void)d.str();
  if (pgc::has_errors(loaded.diagnostics)) return 0;
  auto compiled = pgc::reconciler::compile(loaded.manifests);
  for (const auto& d : compiled.diagnostics) (void)d.str();
  if (pgc::has_errors(compiled.diagnostics)) return 0;
  (void)pgc::reconciler::render(compiled.state, pgc::reconciler::RenderFormat::json);
  (void)pgc::reconciler::render(compiled.state, pgc::reconciler::RenderFormat::yaml);
  return 0;
}

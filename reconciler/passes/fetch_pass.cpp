// The fetch pass (see fetch_pass.hpp).
#include "reconciler/passes/fetch_pass.hpp"

#include <vector>

namespace pgc::reconciler {

Result<Fetched> fetch_pass(const SourceOptions& source, const FetchHooks& hooks, RunOptions& run,
                           std::string trigger) {
  std::vector<std::string> warnings;
  SourceOptions options = source;
  options.warnings = &warnings;
  auto resolved = resolve_source(options);
  if (hooks.warn)
    for (const auto& w : warnings) hooks.warn(w);
  PGC_TRY(resolved);
  run.sources = resolved->paths;
  run.path_aliases = resolved->aliases;
  Fetched out{.revision = resolved->revision, .trigger = std::move(trigger)};
  out.run = !hooks.fetched || hooks.fetched(*resolved, out.trigger);
  return out;
}

}  // namespace pgc::reconciler

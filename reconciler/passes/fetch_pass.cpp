// The fetch pass (see fetch_pass.hpp).
#include "reconciler/passes/fetch_pass.hpp"

#include <vector>

namespace pgc::reconciler {

Result<ResolvedSource> fetch_source(SourceOptions options, const std::atomic<bool>* cancel,
                                    const std::function<void(const std::string& warning)>& warn) {
  std::vector<std::string> warnings;
  options.cancel = cancel;
  options.warnings = &warnings;
  auto resolved = resolve_source(options);
  for (const auto& w : warnings) warn(w);
  return resolved;
}

void load_from(const ResolvedSource& source, RunOptions& run) {
  run.sources = source.paths;
  run.path_aliases = source.aliases;
}

}  // namespace pgc::reconciler

// The compile pass (see compile_pass.hpp).
#include "reconciler/passes/compile_pass.hpp"

#include "reconciler/source.hpp"

namespace pgc::reconciler {

Result<void> compile_desired(const RunOptions& options, const PlacementHistory& history, Prepared& p,
                             std::ostream& err, const std::string& failure) {
  auto compiled = compile(p.loaded.manifests, history);
  for (const auto& d : compiled.diagnostics) err << apply_aliases(d.str(), options.path_aliases) << "\n";
  if (has_errors(compiled.diagnostics)) return fail(failure);
  p.desired = std::move(compiled.state);
  if (options.cluster)
    std::erase_if(p.desired.clusters, [&](const DesiredCluster& c) { return c.name != *options.cluster; });
  return {};
}

}  // namespace pgc::reconciler

// The load pass (see load_pass.hpp).
#include "reconciler/passes/load_pass.hpp"

#include <algorithm>

#include "reconciler/source.hpp"

namespace pgc::reconciler {

Result<void> load_manifests(const RunOptions& options, Prepared& p, std::ostream& err) {
  p.loaded = manifests::load_paths(options.sources);
  for (const auto& d : p.loaded.diagnostics) err << apply_aliases(d.str(), options.path_aliases) << "\n";
  if (has_errors(p.loaded.diagnostics)) return fail("invalid manifests; nothing was observed or applied");
  if (options.cluster &&
      std::none_of(p.loaded.manifests.clusters.begin(), p.loaded.manifests.clusters.end(),
                   [&](const auto& c) { return c.metadata.name == *options.cluster; }))
    return fail("no SGCluster named \"" + *options.cluster + "\" in the manifests");
  return {};
}

}  // namespace pgc::reconciler

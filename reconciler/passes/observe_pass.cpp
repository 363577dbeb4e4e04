// The observe pass (see observe_pass.hpp).
#include "reconciler/passes/observe_pass.hpp"

#include "reconciler/passes/compile_pass.hpp"

namespace pgc::reconciler {

void probe_hosts(const RunOptions& options, Prepared& p, Sessions& sessions) {
  p.observed.hosts = observe_hosts(p.loaded.manifests, p.desired, sessions, ObserveOptions{options.workers});
}

Result<void> place_members(const RunOptions& options, Prepared& p, std::ostream& err) {
  auto history = placement_from(p.desired, p.observed.hosts);
  if (history.empty()) return {};  // a first run: the placement from scratch stands
  return compile_desired(options, history, p, err, "cannot place the clusters; nothing was applied");
}

void observe_every_cluster(const RunOptions& options, Prepared& p, World& world) {
  p.observed.clusters = observe_clusters(p.loaded.manifests, p.desired, p.observed.hosts, p.working_secrets, world,
                                         ObserveOptions{options.workers});
}

}  // namespace pgc::reconciler

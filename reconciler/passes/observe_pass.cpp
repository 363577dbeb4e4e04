// The observe pass (see observe_pass.hpp).
#include "reconciler/passes/observe_pass.hpp"

#include "reconciler/passes/compile_pass.hpp"
#include "reconciler/placement.hpp"

namespace pgc::reconciler {

void probe_hosts(const RunOptions& options, Prepared& p, Sessions& sessions) {
  p.observed.hosts = observe_hosts(p.loaded.manifests, p.desired, sessions, ObserveOptions{options.workers});
}

Result<void> place_members(const RunOptions& options, Prepared& p, std::ostream& err) {
  auto history = placement_from(p.desired, p.observed.hosts);
  // A first run, or members where a placement from scratch puts them (the usual case): the
  // state compiled before the probe stands, and compile runs once in the pass.
  if (history.empty() || !history_moves_placement(p.loaded.manifests, history)) return {};
  return compile_desired(options, history, p, err, "cannot place the clusters; nothing was applied");
}

void observe_every_cluster(const RunOptions& options, Prepared& p, World& world) {
  p.observed.clusters = observe_clusters(p.loaded.manifests, p.desired, p.observed.hosts, p.working_secrets, world,
                                         ObserveOptions{options.workers});
}

}  // namespace pgc::reconciler

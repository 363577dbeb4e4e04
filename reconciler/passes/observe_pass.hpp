#pragma once
// The observe pass of a run, in three steps: probe every host (one SSH round trip each), keep
// members on the hosts that already hold them (sticky placement: the desired state compiled
// again with the placement found), then observe every cluster through Patroni and PostgreSQL.
// The secrets pass (secrets_pass.hpp) runs between placing and observing the clusters: the
// clusters are observed with the passwords that work on the hosts now.

#include <ostream>

#include "reconciler/observe.hpp"
#include "reconciler/passes/run_state.hpp"
#include "reconciler/world.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

// p.observed.hosts: what every host of the manifests holds, for what p.desired needs.
void probe_hosts(const RunOptions& options, Prepared& p, Sessions& sessions);

// Members stay where the probe found them: p.desired compiled again with that placement (not
// when no host holds a member yet). An error when the clusters cannot be placed so.
Result<void> place_members(const RunOptions& options, Prepared& p, std::ostream& err);

// p.observed.clusters: every cluster through Patroni's REST API and PostgreSQL, with
// p.working_secrets.
void observe_every_cluster(const RunOptions& options, Prepared& p, World& world);

}  // namespace pgc::reconciler

#pragma once
// Secret rotation as a planned change. `pgconverge secrets rotate CLUSTER [KIND…]` writes the new
// values beside the cluster's secrets (SecretStore::save_rotation); the next plan shows one
// rotate-secrets step first in the cluster's changes: ALTER ROLE … PASSWORD on the leader (over
// its socket, as postgres: works whatever the old passwords were), then the configs and files that
// hold the passwords are written and reloaded by the ordinary steps after it. Replicas keep
// streaming (authentication happens only at connect) and reconnect with the new password once
// their config is reloaded. A cluster without a running leader is not touched while a rotation
// waits: configs with new passwords before the roles would lock the members out.

#include <set>
#include <vector>

#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/plan.hpp"

namespace pgc::reconciler {

// The roles whose password is each rotated kind (restapi has none: only Patroni's config).
std::vector<ManagedRole> rotation_roles(const DesiredCluster& cluster, const std::set<SecretKind>& kinds);

// Adds the rotate-secrets step in front of cp's changes (an existing cluster with a running
// leader), or refuses the cluster's changes with the reason. Nothing for a new cluster
// (cp.bootstrap): its first configs carry the new values.
void plan_rotation(const DesiredCluster& cluster, const ObservedCluster& observed, const std::set<SecretKind>& kinds,
                   ClusterPlan& cp);

}  // namespace pgc::reconciler

#pragma once
// Convergence is judged by observation, never by an HTTP status: what still differs between a
// declared cluster and what Patroni and PostgreSQL report.

#include <string>
#include <vector>

#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"

namespace pgc::reconciler {

// The number of sync standbys Patroni keeps for the declared settings once every declared
// replica streams (count capped by the replicas; 0 when asynchronous).
int expected_sync_standbys(const DesiredCluster& desired);

// Every way the observed cluster differs from the declared one, as sentences; empty = converged.
std::vector<std::string> differences(const DesiredCluster& desired, const ObservedCluster& observed);

}  // namespace pgc::reconciler

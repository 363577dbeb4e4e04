#pragma once
// The member changes of one cluster, in execution order: configs (tags first) → reloads → starts
// (bootstrap: the first member alone, then the others together) → the DCS patch → sidecars →
// pending restarts (replicas, then the leader after a switchover) → scale down. diff() (plan.cpp)
// calls it for every cluster whose secrets are known.

#include "manifests/model.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/secrets.hpp"

namespace pgc::reconciler {

void plan_cluster(const manifests::ManifestSet& manifests, const DesiredCluster& desired,
                  const ObservedState& observed, const ClusterSecrets& secrets, const PlanOptions& options,
                  ClusterPlan& plan);

}  // namespace pgc::reconciler

#pragma once
// `pgconverge status`: per cluster, the table users know from `patronictl list`, then the
// declared replication mode against the observed one, pending restarts and drift.

#include <ostream>

#include <nlohmann/json.hpp>

#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/plan.hpp"

namespace pgc::reconciler {

// The `patronictl list` table of one observed cluster.
std::string patronictl_table(const ObservedCluster& observed);

// "Leader", "Sync Standby", "Replica", "Standby Leader" for a GET /cluster role.
std::string role_title(const std::string& role);

void print_status(const DesiredCluster& desired, const ObservedCluster& observed, const ClusterPlan* plan,
                  std::ostream& out);
nlohmann::json status_to_json(const DesiredCluster& desired, const ObservedCluster& observed, const ClusterPlan* plan);

}  // namespace pgc::reconciler

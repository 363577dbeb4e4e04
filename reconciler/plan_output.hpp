#pragma once
// Printing a plan: text like `terraform plan` (+ create, ~ change, - remove, ! restart, with the
// reason and the replication impact) and JSON for tools. Secrets never appear.

#include <ostream>

#include <nlohmann/json.hpp>

#include "reconciler/plan.hpp"

namespace pgc::reconciler {

void print_plan(const Plan& plan, std::ostream& out);
nlohmann::json plan_to_json(const Plan& plan);
nlohmann::json impact_to_json(const Impact& impact);

}  // namespace pgc::reconciler

#pragma once
// The plan pass: the desired state against what was observed, as typed changes (plan.hpp), with
// each cluster's secret problems and rotations, and the suspended clusters marked.

#include "reconciler/passes/run_state.hpp"

namespace pgc::reconciler {

// p.plan from p.desired, p.observed and p.secrets.
void plan_changes(const RunOptions& options, Prepared& p);

}  // namespace pgc::reconciler

#pragma once
// The load pass: every manifest of the run's sources read and validated as one set.

#include <ostream>

#include "reconciler/passes/run_state.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

// Loads options.sources into p.loaded and writes every diagnostic (warnings too) to err, with
// the checkout's paths shown by their aliases. An error when any manifest is invalid, or when
// options.cluster names no SGCluster: nothing may be observed or applied then.
Result<void> load_manifests(const RunOptions& options, Prepared& p, std::ostream& err);

}  // namespace pgc::reconciler

#pragma once
// The compile pass: the loaded manifests compiled into the desired state, narrowed to the one
// cluster asked for (after compiling, so that every manifest is still checked).

#include <ostream>
#include <string>

#include "reconciler/desired.hpp"
#include "reconciler/passes/run_state.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

// Compiles p.loaded with the placement history (empty: placement from scratch, which config
// paths do not depend on) into p.desired, writing every diagnostic to err. On an error p.desired
// is left as it was and the error's message is failure.
Result<void> compile_desired(const RunOptions& options, const PlacementHistory& history, Prepared& p,
                             std::ostream& err, const std::string& failure);

}  // namespace pgc::reconciler

#pragma once
// The passes of a run up to the plan, as `plan`, `status` and each pass of `apply` run them:
//   load manifests → compile → probe hosts → place (sticky) → secrets → observe clusters → plan
// Each is one named call in prepare() (reconcile.cpp), implemented in reconciler/passes/. An
// apply run goes on from there (apply_run.hpp): → save secrets → apply → verify → record.

#include <filesystem>
#include <ostream>

#include "reconciler/observe.hpp"
#include "reconciler/passes/run_state.hpp"
#include "reconciler/passes/secrets_pass.hpp"
#include "reconciler/world.hpp"

namespace pgc::reconciler {

// The default state dir: $PGCONVERGE_STATE_DIR, else $XDG_STATE_HOME/pgconverge, else
// ~/.local/state/pgconverge.
std::filesystem::path default_state_dir();

// Runs the passes up to diff. Invalid manifests: the diagnostics are written to err and an error
// returned, nothing observed or applied.
Result<Prepared> prepare(const RunOptions& options, World& world, Sessions& sessions, std::ostream& err);

}  // namespace pgc::reconciler

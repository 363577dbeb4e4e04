#pragma once
// A prepared run (the passes from fetch up to the plan) with the world it observed through and
// the revision it loaded; see reconcile_commands.hpp prepare_for(). plan, status and
// `secrets recover` share it.

#include <memory>

#include "reconciler/reconcile.hpp"
#include "reconciler/revision.hpp"
#include "reconciler/world.hpp"

namespace pgc::cli {

struct PreparedRun {
  std::unique_ptr<reconciler::World> world;
  reconciler::Prepared prepared;
  reconciler::Revision revision;
};

}  // namespace pgc::cli

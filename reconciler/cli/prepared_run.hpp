#pragma once
// A prepared run (the passes up to diff) with the world it observed through; see
// reconcile_commands.hpp prepare_for().

#include <memory>

#include "reconciler/reconcile.hpp"
#include "reconciler/world.hpp"

namespace pgc::cli {

struct PreparedRun {
  std::unique_ptr<reconciler::World> world;
  reconciler::Prepared prepared;
};

}  // namespace pgc::cli

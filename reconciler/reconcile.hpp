#pragma once
// A reconcile is a straight list of named passes:
//   load manifests → compile → probe hosts → place (sticky) → secrets → observe clusters → diff
// and, for apply, → save secrets → apply → verify. Each pass is one function call in reconcile.cpp.

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "manifests/loader.hpp"
#include "reconciler/apply.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observe.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/secrets.hpp"
#include "reconciler/world.hpp"

namespace pgc::reconciler {

struct RunOptions {
  std::vector<std::filesystem::path> sources;  // -s: directories or files
  std::filesystem::path state_dir;             // --state-dir
  std::optional<std::string> cluster;          // only this cluster
  std::size_t workers = 8;                     // bounded worker pool for observation
  PlanOptions plan;                            // --allow-write-outage
  // How to name files of a git checkout in diagnostics (prefix → "<url>@<short>:").
  std::vector<std::pair<std::string, std::string>> path_aliases;
};

// Everything the passes up to diff produced.
struct Prepared {
  manifests::LoadResult loaded;
  DesiredState desired;
  ObservedState observed;
  // The secrets the plan and apply use: the cluster's secrets with any requested rotation's new
  // values (the configs they write carry these).
  std::map<std::string, ClusterSecrets> secrets;
  // The secrets that work on the hosts now, for observing them (differ from secrets while a
  // rotation waits; absent when the cluster's old passwords are unknown).
  std::map<std::string, ClusterSecrets> working_secrets;
  std::map<std::string, std::set<SecretKind>> rotations;  // cluster → kinds a rotation sets
  std::set<std::string> new_secrets;  // clusters whose secrets were generated or recovered in this run
  std::map<std::string, std::string> secret_errors;  // cluster → why it has no secrets (refused)
  Plan plan;
};

// The default state dir: $PGCONVERGE_STATE_DIR, else $XDG_STATE_HOME/pgconverge, else
// ~/.local/state/pgconverge.
std::filesystem::path default_state_dir();

// Runs the passes up to diff. Invalid manifests: the diagnostics are written to err and an error
// returned, nothing observed or applied.
Result<Prepared> prepare(const RunOptions& options, World& world, Sessions& sessions, std::ostream& err);

// Saves secrets generated or recovered in this run to the state dir (0600) before apply uses them.
// A rotation's new values are saved only once its step ran (promote_rotation), or at once for a
// cluster being created.
Result<void> save_secrets(const Prepared& prepared, const std::filesystem::path& state_dir);

// After a rotate-secrets step: the cluster's secrets with the rotated values become its secrets,
// and the rotation file goes.
Result<void> promote_rotation(const Prepared& prepared, const std::string& cluster,
                              const std::filesystem::path& state_dir);

}  // namespace pgc::reconciler

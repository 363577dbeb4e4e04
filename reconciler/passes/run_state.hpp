#pragma once
// What a run carries from pass to pass: the options it was started with (RunOptions) and what
// the passes up to the plan produced (Prepared). The passes themselves are listed in
// reconcile.cpp (prepare) and apply_run.cpp (apply_run).

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "manifests/loader.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/plan.hpp"
#include "reconciler/secrets.hpp"

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

}  // namespace pgc::reconciler

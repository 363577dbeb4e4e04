#pragma once
// The secrets pass of a run: each cluster's secrets from the state dir, else read back from its
// hosts, else new for a verified new cluster (secret_source.hpp), with a requested rotation's
// values on top; what the plan needs of them; and when they are saved to the state dir.

#include <filesystem>
#include <optional>
#include <set>
#include <string>

#include "reconciler/passes/run_state.hpp"
#include "reconciler/world.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

// Secrets for every cluster of p.desired, after the host probe (p.observed.hosts). A cluster
// refused here gets no secrets: p.secret_errors holds why, its plan carries the reason and
// nothing of it is applied; the other clusters go on.
void resolve_cluster_secrets(Prepared& p, const std::filesystem::path& state_dir, World& world);

// After the diff: each refused cluster's reason first among its plan's errors, and each
// rotation's step in its plan.
void plan_secrets(Prepared& p);

// Saves secrets generated or recovered in this run to the state dir (0600) before apply uses them.
// A rotation's new values are saved only once its step ran (promote_rotation), or at once for a
// cluster being created.
Result<void> save_secrets(const Prepared& prepared, const std::filesystem::path& state_dir);

// Before apply: the CA of each cluster to apply whose certificates pgconverge issues, created in
// the state dir when it has none yet (plan never creates one), so that the steps issue member
// certificates with it and the waits verify the members' REST certificates against it.
Result<void> ensure_cluster_cas(Prepared& prepared, const std::filesystem::path& state_dir,
                                const std::optional<std::set<std::string>>& owned);

// After a rotate-secrets step: the cluster's secrets with the rotated values become its secrets,
// and the rotation file goes.
Result<void> promote_rotation(const Prepared& prepared, const std::string& cluster,
                              const std::filesystem::path& state_dir);

}  // namespace pgc::reconciler

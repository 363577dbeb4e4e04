#include "reconciler/reconcile.hpp"

#include <cstdlib>

#include "reconciler/passes/compile_pass.hpp"
#include "reconciler/passes/load_pass.hpp"
#include "reconciler/passes/observe_pass.hpp"
#include "reconciler/passes/plan_pass.hpp"
#include "reconciler/passes/secrets_pass.hpp"

namespace pgc::reconciler {

std::filesystem::path default_state_dir() {
  if (const char* dir = std::getenv("PGCONVERGE_STATE_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "pgconverge";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : "/root") / ".local/state/pgconverge";
}

Result<Prepared> prepare(const RunOptions& options, World& world, Sessions& sessions, std::ostream& err) {
  Prepared p;
  // Load and validate every manifest.
  PGC_TRY(load_manifests(options, p, err));
  // Compile the desired state (placement without history: config paths do not depend on it).
  PGC_TRY(compile_desired(options, {}, p, err, "cannot place the clusters; nothing was observed or applied"));
  // Probe every host: one SSH round trip each.
  probe_hosts(options, p, sessions);
  // Sticky placement: members stay on the hosts that already hold them.
  PGC_TRY(place_members(options, p, err));
  // Secrets: state dir, else recovered from the hosts, else new for a verified new cluster.
  resolve_cluster_secrets(p, options.state_dir, world);
  // Observe every cluster through Patroni and PostgreSQL, with the passwords that work there now.
  observe_every_cluster(options, p, world);
  // Diff desired against observed.
  plan_changes(options, p);
  return p;
}

}  // namespace pgc::reconciler

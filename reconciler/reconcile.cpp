#include "reconciler/reconcile.hpp"

#include <cstdlib>

#include "reconciler/sidecars.hpp"
#include "reconciler/source.hpp"
#include "reconciler/yaml_json.hpp"

namespace pgc::reconciler {

std::filesystem::path default_state_dir() {
  if (const char* dir = std::getenv("PGCONVERGE_STATE_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "pgconverge";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : "/root") / ".local/state/pgconverge";
}

namespace {

// Keeps only the named cluster (after compile, so validation still sees every manifest).
void filter_cluster(DesiredState& desired, const std::optional<std::string>& cluster) {
  if (!cluster) return;
  std::erase_if(desired.clusters, [&](const DesiredCluster& c) { return c.name != *cluster; });
}

// Secrets for every cluster: the state dir, else recovered from a host's Patroni config, else
// new ones — but only for a cluster that has no member config anywhere (a new cluster).
Result<void> resolve_cluster_secrets(Prepared& p, const std::filesystem::path& state_dir) {
  SecretStore store(state_dir);
  for (const auto& cluster : p.desired.clusters) {
    auto stored = store.load(cluster.namespace_, cluster.name);
    if (!stored) return std::unexpected(stored.error());
    // Kinds added since the state file was written (PgBouncer's): read back from the hosts'
    // files, else new.
    auto complete_kinds = [&](ClusterSecrets& secrets) {
      bool had = secrets.values.contains(SecretKind::pgbouncer);
      recover_sidecar_secrets(cluster, p.observed.hosts, secrets);
      if (add_missing_secrets(secrets) || had != secrets.values.contains(SecretKind::pgbouncer))
        p.new_secrets.insert(cluster.name);
    };
    if (*stored) {
      p.secrets[cluster.name] = **stored;
      complete_kinds(p.secrets[cluster.name]);
      continue;
    }
    bool config_seen = false;
    std::optional<ClusterSecrets> recovered;
    if (!cluster.members.empty()) {
      const auto& path = cluster.members.front().config_path;
      for (const auto& [name, host] : p.observed.hosts) {
        auto f = host.files.find(path);
        if (f == host.files.end() || !f->second) continue;
        config_seen = true;
        if (auto config = yaml_to_json(*f->second); config && config->value("scope", "") == cluster.name)
          if ((recovered = recover_secrets(*config))) break;
      }
    }
    if (recovered) {
      p.secrets[cluster.name] = *recovered;
      complete_kinds(p.secrets[cluster.name]);
      p.new_secrets.insert(cluster.name);
    } else if (config_seen) {
      return fail("cluster " + cluster.name + ": its Patroni config exists on hosts but holds no usable secrets, and " +
                  (state_dir / "secrets").string() + " has none; refusing to generate new ones");
    } else {
      p.secrets[cluster.name] = generate_secrets();
      p.new_secrets.insert(cluster.name);
    }
  }
  return {};
}

}  // namespace

Result<Prepared> prepare(const RunOptions& options, World& world, Sessions& sessions, std::ostream& err) {
  Prepared p;
  ObserveOptions observe_options{options.workers};

  // Load and validate every manifest.
  p.loaded = manifests::load_paths(options.sources);
  for (const auto& d : p.loaded.diagnostics) err << apply_aliases(d.str(), options.path_aliases) << "\n";
  if (has_errors(p.loaded.diagnostics)) return fail("invalid manifests; nothing was observed or applied");
  if (options.cluster &&
      std::none_of(p.loaded.manifests.clusters.begin(), p.loaded.manifests.clusters.end(),
                   [&](const auto& c) { return c.metadata.name == *options.cluster; }))
    return fail("no SGCluster named \"" + *options.cluster + "\" in the manifests");

  // Compile the desired state (placement without history: config paths do not depend on it).
  auto compiled = compile(p.loaded.manifests);
  for (const auto& d : compiled.diagnostics) err << apply_aliases(d.str(), options.path_aliases) << "\n";
  if (has_errors(compiled.diagnostics)) return fail("cannot place the clusters; nothing was observed or applied");
  p.desired = std::move(compiled.state);
  filter_cluster(p.desired, options.cluster);

  // Probe every host: one SSH round trip each.
  p.observed.hosts = observe_hosts(p.loaded.manifests, p.desired, sessions, observe_options);

  // Sticky placement: members stay on the hosts that already hold them.
  auto history = placement_from(p.desired, p.observed.hosts);
  if (!history.empty()) {
    auto placed = compile(p.loaded.manifests, history);
    for (const auto& d : placed.diagnostics) err << apply_aliases(d.str(), options.path_aliases) << "\n";
    if (has_errors(placed.diagnostics)) return fail("cannot place the clusters; nothing was applied");
    p.desired = std::move(placed.state);
    filter_cluster(p.desired, options.cluster);
  }

  // Secrets: state dir, else recovered from the hosts, else new for a new cluster.
  if (auto r = resolve_cluster_secrets(p, options.state_dir); !r) return std::unexpected(r.error());

  // Observe every cluster through Patroni and PostgreSQL.
  p.observed.clusters =
      observe_clusters(p.loaded.manifests, p.desired, p.observed.hosts, p.secrets, world, observe_options);

  // Diff desired against observed.
  p.plan = diff(p.loaded.manifests, p.desired, p.observed, p.secrets, options.plan);
  for (auto& cp : p.plan.clusters)
    if (const auto* dc = p.desired.find(cp.name)) cp.suspended = dc->suspended;
  return p;
}

Result<void> save_secrets(const Prepared& prepared, const std::filesystem::path& state_dir) {
  SecretStore store(state_dir);
  for (const auto& cluster : prepared.desired.clusters) {
    if (!prepared.new_secrets.contains(cluster.name)) continue;
    if (auto r = store.save(cluster.namespace_, cluster.name, prepared.secrets.at(cluster.name)); !r) return r;
  }
  return {};
}

}  // namespace pgc::reconciler

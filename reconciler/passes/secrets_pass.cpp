// The secrets pass: where each cluster's secrets come from (state dir, read back from the hosts,
// or new at a verified first bootstrap), what the plan needs of them, and when they are saved.
#include "reconciler/passes/secrets_pass.hpp"

#include <algorithm>

#include "reconciler/cluster_ca.hpp"
#include "reconciler/member_tls.hpp"
#include "reconciler/rotation.hpp"
#include "reconciler/secret_source.hpp"
#include "reconciler/sidecars.hpp"

namespace pgc::reconciler {
namespace {

// Whether the cluster's DCS holds keys of it. An etcd pgconverge runs that no host has data for
// yet is new: nothing to ask.
void ask_dcs(const DesiredCluster& cluster, const Prepared& p, World& world, SecretEvidence& evidence) {
  for (const auto& etcd : p.desired.etcds) {
    if (etcd.name != cluster.dcs_name) continue;
    bool any_data = std::any_of(p.observed.hosts.begin(), p.observed.hosts.end(),
                                [](const auto& h) { return h.second.etcd && h.second.etcd->has_data; });
    if (!any_data) {
      evidence.dcs_has_cluster = false;
      return;
    }
  }
  std::vector<std::string> keys = dcs_cluster_keys(cluster);
  for (const auto& m : cluster.members) keys.push_back("/service/" + cluster.name + "/members/" + m.name);
  auto found = world.dcs_has_any(cluster.etcd_endpoints, keys);
  if (found) evidence.dcs_has_cluster = *found;
  else evidence.dcs_error = found.error().message;
}

// Kinds added since the state file was written (PgBouncer's): read back from the hosts' files,
// else new — but only when every member host answered (else a working one may be out there).
Result<void> complete_kinds(const DesiredCluster& cluster, Prepared& p, ClusterSecrets& secrets) {
  bool had = secrets.values.contains(SecretKind::pgbouncer);
  recover_sidecar_secrets(cluster, p.observed.hosts, secrets);
  if (had != secrets.values.contains(SecretKind::pgbouncer)) p.new_secrets.insert(cluster.name);
  ClusterSecrets probe = secrets;
  if (!add_missing_secrets(probe)) return {};
  for (const auto& m : cluster.members)
    if (auto h = p.observed.hosts.find(m.host); h == p.observed.hosts.end() || !h->second.reachable)
      return fail("cluster " + cluster.name + ": its secrets file lacks a kind added since (PgBouncer's) and host " +
                  m.host + " did not answer; it is generated only once every member host answers");
  secrets = std::move(probe);
  p.new_secrets.insert(cluster.name);
  return {};
}

// Secrets for one cluster (see secret_source.hpp), with a requested rotation's values on top.
// The cluster's CA (state dir) and what its members' REST certificates are checked against:
// the state dir's CA or the given chain's CA, and the CA files the member hosts hold, read as
// root over SSH whose host keys were verified — so that a lost or replaced state dir (another
// CA) does not leave the members unobservable: the plan then issues their certificates again.
Result<void> load_tls_trust(const DesiredCluster& cluster, const Prepared& p, const SecretStore& store,
                            ClusterSecrets& secrets) {
  auto ca = ClusterCaStore(store.dir()).load(cluster.namespace_, cluster.name);
  if (!ca) return std::unexpected(ca.error());
  if (*ca) secrets.ca_certificate_pem = (*ca)->certificate_pem;
  secrets.rest_tls = cluster.ssl.enabled;
  if (cluster.ssl.enabled && !cluster.ssl.generated()) {
    secrets.rest_ca_pem = last_certificate_block(read_given_chain(cluster.ssl.certificate_file));
  } else {
    secrets.rest_ca_pem = secrets.ca_certificate_pem;
  }
  auto on_host = tls_files(cluster.postgres_major, cluster.name);
  for (const auto& m : cluster.members) {
    auto host = p.observed.hosts.find(m.host);
    if (host == p.observed.hosts.end()) continue;
    auto file = host->second.files.find(on_host.ca);
    if (file != host->second.files.end() && file->second &&
        secrets.rest_ca_pem.find(*file->second) == std::string::npos)
      secrets.rest_ca_pem += *file->second;
  }
  return {};
}

Result<void> resolve_one(const DesiredCluster& cluster, Prepared& p, const SecretStore& store, World& world) {
  auto stored = store.load(cluster.namespace_, cluster.name);
  PGC_TRY(stored);
  auto rotation = store.load_rotation(cluster.namespace_, cluster.name);
  PGC_TRY(rotation);
  std::optional<ClusterSecrets> working = *stored;
  if (!working && !(*rotation && std::all_of(all_secret_kinds().begin(), all_secret_kinds().end(),
                                            [&](SecretKind k) { return (*rotation)->values.contains(k); }))) {
    auto evidence = host_evidence(cluster, p.observed.hosts);
    if (!hosts_decide(evidence)) ask_dcs(cluster, p, world, evidence);
    auto decision = decide_missing_secrets(cluster, evidence, store.file(cluster.namespace_, cluster.name).string());
    if (decision.origin == SecretOrigin::refused) return fail(decision.error);
    working = std::move(decision.secrets);
    p.new_secrets.insert(cluster.name);
  }
  if (working)
    if (auto r = complete_kinds(cluster, p, *working); !r) return r;
  ClusterSecrets secrets = working.value_or(ClusterSecrets{});
  if (*rotation) {
    std::set<SecretKind> kinds;
    for (const auto& [kind, value] : (*rotation)->values) {
      if (secrets.values.contains(kind) && secrets.values.at(kind) == value) continue;  // already promoted
      secrets.values[kind] = value;
      kinds.insert(kind);
    }
    if (!kinds.empty()) p.rotations[cluster.name] = std::move(kinds);
  }
  if (working) p.working_secrets[cluster.name] = std::move(*working);
  else if (auto r = complete_kinds(cluster, p, secrets); !r) return r;
  PGC_TRY(load_tls_trust(cluster, p, store, secrets));
  if (auto w = p.working_secrets.find(cluster.name); w != p.working_secrets.end()) {
    w->second.ca_certificate_pem = secrets.ca_certificate_pem;
    w->second.rest_ca_pem = secrets.rest_ca_pem;
    w->second.rest_tls = secrets.rest_tls;
  }
  p.secrets[cluster.name] = std::move(secrets);
  return {};
}

}  // namespace

// Secrets for every cluster. A cluster refused here gets no secrets: its plan carries the reason
// and nothing of it is applied; the other clusters go on.
void resolve_cluster_secrets(Prepared& p, const std::filesystem::path& state_dir, World& world) {
  SecretStore store(state_dir);
  for (const auto& cluster : p.desired.clusters)
    if (auto r = resolve_one(cluster, p, store, world); !r) p.secret_errors[cluster.name] = r.error().message;
}

// The plan with each refused cluster's reason, and each rotation's step.
void plan_secrets(Prepared& p) {
  for (auto& cp : p.plan.clusters) {
    if (auto e = p.secret_errors.find(cp.name); e != p.secret_errors.end()) {
      std::erase_if(cp.errors, [&](const std::string& m) { return m == "cluster " + cp.name + ": secrets unavailable"; });
      cp.errors.insert(cp.errors.begin(), e->second);
      continue;
    }
    auto r = p.rotations.find(cp.name);
    const auto* dc = p.desired.find(cp.name);
    if (r == p.rotations.end() || !dc) continue;
    plan_rotation(*dc, p.observed.clusters.at(cp.name), r->second, cp);
    if (cp.bootstrap) p.new_secrets.insert(cp.name);  // a new cluster starts with the rotated values
  }
}

Result<void> save_secrets(const Prepared& prepared, const std::filesystem::path& state_dir) {
  SecretStore store(state_dir);
  for (const auto& cluster : prepared.desired.clusters) {
    if (!prepared.new_secrets.contains(cluster.name) || !prepared.secrets.contains(cluster.name)) continue;
    bool rotating = prepared.rotations.contains(cluster.name);
    const ClusterPlan* cp = nullptr;
    for (const auto& c : prepared.plan.clusters)
      if (c.name == cluster.name) cp = &c;
    if (rotating && !(cp && cp->bootstrap)) {
      // Until its step ran, the values that work on the hosts are the ones to keep.
      if (auto w = prepared.working_secrets.find(cluster.name); w != prepared.working_secrets.end())
        if (auto r = store.save(cluster.namespace_, cluster.name, w->second); !r) return r;
      continue;
    }
    if (auto r = store.save(cluster.namespace_, cluster.name, prepared.secrets.at(cluster.name)); !r) return r;
    if (rotating)
      if (auto r = store.remove_rotation(cluster.namespace_, cluster.name); !r) return r;
  }
  return {};
}

Result<void> promote_rotation(const Prepared& prepared, const std::string& cluster,
                              const std::filesystem::path& state_dir) {
  const auto* dc = prepared.desired.find(cluster);
  auto s = prepared.secrets.find(cluster);
  if (!dc || s == prepared.secrets.end()) return fail("internal: no secrets to promote for cluster " + cluster);
  SecretStore store(state_dir);
  if (auto r = store.save(dc->namespace_, cluster, s->second); !r) return r;
  return store.remove_rotation(dc->namespace_, cluster);
}

Result<void> ensure_cluster_cas(Prepared& prepared, const std::filesystem::path& state_dir,
                                const std::optional<std::set<std::string>>& owned) {
  ClusterCaStore store(state_dir);
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  for (const auto& cluster : prepared.desired.clusters) {
    if (!cluster.ssl.generated() || cluster.suspended || (owned && !owned->contains(cluster.name))) continue;
    auto s = prepared.secrets.find(cluster.name);
    if (s == prepared.secrets.end() || !s->second.ca_certificate_pem.empty()) continue;
    auto ca = store.ensure(cluster.namespace_, cluster.name, now);
    if (!ca) return std::unexpected(ca.error().with_context("cluster " + cluster.name));
    for (auto* secrets : {&s->second, prepared.working_secrets.contains(cluster.name)
                                          ? &prepared.working_secrets.at(cluster.name)
                                          : static_cast<ClusterSecrets*>(nullptr)}) {
      if (!secrets) continue;
      secrets->ca_certificate_pem = ca->certificate_pem;
      secrets->rest_ca_pem += ca->certificate_pem;  // beside CA files the hosts still hold
    }
  }
  return {};
}

}  // namespace pgc::reconciler

// The secrets pass: where each cluster's secrets come from (state dir, read back from the hosts,
// or new at a verified first bootstrap), what the plan needs of them, and when they are saved.
#include "reconciler/passes/secrets_pass.hpp"

#include <algorithm>

#include "reconciler/cluster_ca.hpp"
#include "reconciler/etcd_tls.hpp"
#include "reconciler/member_tls.hpp"
#include "reconciler/rotation.hpp"
#include "reconciler/secret_source.hpp"
#include "reconciler/sidecars.hpp"

namespace pgc::reconciler {
namespace {

// How pgconverge reaches its DCS over TLS: a managed etcd with a client certificate issued in
// memory by its CA in the state dir, an external one with its spec.tls files (etcd_tls.hpp);
// nullopt for a plain etcd.
Result<std::optional<providers::EtcdTls>> dcs_tls(const DesiredEtcd* etcd, const ExternalEtcdTls* external,
                                                  const std::filesystem::path& state_dir) {
  if (external) {
    auto client = external_etcd_client(*external);
    PGC_TRY(client);
    return std::optional<providers::EtcdTls>(std::move(*client));
  }
  if (!etcd || !etcd->tls) return std::optional<providers::EtcdTls>{};
  auto ca = ClusterCaStore(state_dir).load_etcd(etcd->name);
  PGC_TRY(ca);
  if (!*ca)
    return fail("etcd " + etcd->name + " serves TLS with client certificates, but the state dir holds no CA of it (" +
                ClusterCaStore(state_dir).etcd_path_for(etcd->name).string() + ")");
  auto client = pgconverge_etcd_client(**ca, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
  PGC_TRY(client);
  return std::optional<providers::EtcdTls>(std::move(*client));
}

// Whether the cluster's DCS holds keys of it. An etcd pgconverge runs that no host has data for
// yet is new: nothing to ask.
void ask_dcs(const DesiredCluster& cluster, const Prepared& p, const SecretStore& store, World& world,
             SecretEvidence& evidence) {
  const DesiredEtcd* managed = nullptr;
  for (const auto& etcd : p.desired.etcds) {
    if (etcd.name != cluster.dcs_name) continue;
    managed = &etcd;
    bool any_data = std::any_of(p.observed.hosts.begin(), p.observed.hosts.end(),
                                [](const auto& h) { return h.second.etcd && h.second.etcd->has_data; });
    if (!any_data) {
      evidence.dcs_has_cluster = false;
      return;
    }
  }
  const ExternalEtcdTls* external = nullptr;
  for (const auto& etcd : p.desired.external_etcds)
    if (etcd.name == cluster.dcs_name) external = &etcd;
  auto tls = dcs_tls(managed, external, store.dir());
  if (!tls) {
    evidence.dcs_error = tls.error().message;
    return;
  }
  std::vector<std::string> keys = dcs_cluster_keys(cluster);
  for (const auto& m : cluster.members) keys.push_back("/service/" + cluster.name + "/members/" + m.name);
  auto found = world.dcs_has_any(cluster.etcd_endpoints, keys, *tls);
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
    if (!hosts_decide(evidence)) ask_dcs(cluster, p, store, world, evidence);
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
  std::map<std::string, std::string> etcd_errors;
  for (auto& etcd : p.desired.etcds) {
    if (!etcd.tls) continue;
    auto ca = ClusterCaStore(state_dir).load_etcd(etcd.name);
    if (!ca) etcd_errors[etcd.name] = "etcd " + etcd.name + ": " + ca.error().message;
    else if (*ca) etcd.ca_certificate_pem = (*ca)->certificate_pem;
  }
  for (const auto& cluster : p.desired.clusters) {
    if (auto e = etcd_errors.find(cluster.dcs_name); e != etcd_errors.end()) {
      p.secret_errors[cluster.name] = "cluster " + cluster.name + ": " + e->second;
      continue;
    }
    if (auto r = resolve_one(cluster, p, store, world); !r) p.secret_errors[cluster.name] = r.error().message;
  }
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
  // The CA of each managed etcd on TLS whose plan issues a certificate (etcd steps are shared by
  // every instance: created whoever applies; never for an etcd the plan refused).
  std::set<std::string> issuing;
  for (const auto& change : prepared.plan.host_changes)
    if (const auto* write = std::get_if<steps::EtcdWriteCertificate>(&change.step); write && write->given.ca_file.empty())
      issuing.insert(write->etcd);
  for (auto& etcd : prepared.desired.etcds) {
    if (!etcd.tls || !etcd.ca_certificate_pem.empty() || !issuing.contains(etcd.name)) continue;
    auto ca = store.ensure_etcd(etcd.name, now);
    if (!ca) return std::unexpected(ca.error().with_context("etcd " + etcd.name));
    etcd.ca_certificate_pem = ca->certificate_pem;
  }
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

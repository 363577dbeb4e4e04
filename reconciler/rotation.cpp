#include "reconciler/rotation.hpp"

#include "reconciler/sidecars.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

// The role name the compiled Patroni config gives a kind (typed: the authentication section).
std::string patroni_username(const DesiredCluster& cluster, const char* section) {
  if (cluster.members.empty()) return "";
  nlohmann::json::json_pointer ptr(std::string("/postgresql/authentication/") + section + "/username");
  const auto& config = cluster.members.front().patroni_config;
  return config.contains(ptr) && config.at(ptr).is_string() ? config.at(ptr).get<std::string>() : "";
}

std::string kind_list(const std::set<SecretKind>& kinds) {
  std::vector<std::string> names;
  for (auto kind : kinds) names.push_back(to_string(kind));
  return join(names, ", ");
}

}  // namespace

std::vector<ManagedRole> rotation_roles(const DesiredCluster& cluster, const std::set<SecretKind>& kinds) {
  std::vector<ManagedRole> roles;
  auto add = [&](SecretKind kind, std::string name, bool superuser) {
    if (kinds.contains(kind) && !name.empty()) roles.push_back(ManagedRole{std::move(name), kind, superuser, {}});
  };
  add(SecretKind::superuser, patroni_username(cluster, "superuser"), true);
  add(SecretKind::replication, patroni_username(cluster, "replication"), false);
  add(SecretKind::rewind, patroni_username(cluster, "rewind"), false);
  bool pooled = std::any_of(cluster.roles.begin(), cluster.roles.end(),
                            [](const ManagedRole& r) { return r.name == k_pgbouncer_auth_user; });
  if (pooled) add(SecretKind::pgbouncer, k_pgbouncer_auth_user, false);
  return roles;
}

void plan_rotation(const DesiredCluster& cluster, const ObservedCluster& observed, const std::set<SecretKind>& kinds,
                   ClusterPlan& cp) {
  if (kinds.empty() || cp.bootstrap) return;
  const auto* leader = observed.leader();
  if (!leader || leader->state != "running") {
    cp.changes.clear();
    cp.impact.reset();
    cp.errors.push_back("cluster " + cluster.name + ": a rotation of " + kind_list(kinds) +
                        " waits for a running leader (ALTER ROLE runs there before any config gets a new "
                        "password); nothing else is applied to this cluster until then");
    return;
  }
  std::vector<std::string> names;
  for (const auto& r : rotation_roles(cluster, kinds)) names.push_back(r.name);
  Change c{.subject = "cluster " + cluster.name + ": secrets " + kind_list(kinds),
           .action = Action::update,
           .before = "current passwords",
           .after = "new passwords (roles " + (names.empty() ? "none" : join(names, ", ")) +
                    " on the leader first, then the configs)",
           .reason = "rotation requested with `pgconverge secrets rotate`",
           .step = steps::RotateSecrets{.kinds = kinds, .roles = names},
           .cluster = cluster.name};
  cp.changes.insert(cp.changes.begin(), std::move(c));
}

}  // namespace pgc::reconciler

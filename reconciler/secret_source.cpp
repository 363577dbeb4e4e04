#include "reconciler/secret_source.hpp"

#include "reconciler/yaml_json.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

// The config is Patroni's for this cluster (its scope). Through the object's std::map rather than
// json::value(): g++ 12 at -O2 reports a null dereference inside value() in some unity batches.
bool scope_is(const nlohmann::json& config, const std::string& cluster) {
  if (!config.is_object()) return false;
  const auto& object = config.get_ref<const nlohmann::json::object_t&>();
  auto scope = object.find("scope");
  return scope != object.end() && scope->second.is_string() && scope->second.get_ref<const std::string&>() == cluster;
}

std::string secrets_commands(const std::string& cluster) {
  return "to read them back from a host's Patroni config run `pgconverge secrets recover " + cluster +
         " -s …` once such a host answers (--from HOST picks one), or restore the state file from a backup; "
         "to set new passwords deliberately run `pgconverge secrets rotate " + cluster +
         " -s …` and apply (ALTER ROLE on the leader first, then the configs)";
}

}  // namespace

std::vector<std::string> dcs_cluster_keys(const DesiredCluster& cluster) {
  return {"/service/" + cluster.name + "/initialize", "/service/" + cluster.name + "/config",
          "/service/" + cluster.name + "/leader"};
}

SecretEvidence host_evidence(const DesiredCluster& cluster, const std::map<std::string, ObservedHost>& hosts) {
  SecretEvidence e;
  if (cluster.members.empty()) return e;
  const auto& first = cluster.members.front();
  const std::string config_path = first.config_path, data_dir = first.data_dir, service = first.service;
  for (const auto& [name, host] : hosts) {
    if (!host.reachable) {
      e.unanswered.push_back(host.error.empty() ? name : host.error);
      continue;
    }
    if (auto f = host.files.find(config_path); f != host.files.end() && f->second) {
      auto config = yaml_to_json(*f->second);
      auto recovered = config && scope_is(*config, cluster.name)
                           ? recover_secrets(*config)
                           : std::nullopt;
      if (recovered) e.configs[name] = *recovered;
      else e.traces.push_back("Patroni config " + config_path + " on " + name + " without usable secrets");
    }
    if (auto d = host.data_dirs.find(data_dir); !data_dir.empty() && d != host.data_dirs.end() && d->second)
      e.traces.push_back("data directory " + data_dir + " on " + name);
    if (auto s = host.services.find(service); s != host.services.end() && s->second == "active")
      e.traces.push_back(service + " running on " + name);
  }
  return e;
}

std::optional<ClusterSecrets> agreed_secrets(const SecretEvidence& evidence, std::string* why) {
  std::optional<ClusterSecrets> agreed;
  std::string first_host;
  for (const auto& [host, secrets] : evidence.configs) {
    if (!agreed) {
      agreed = secrets;
      first_host = host;
      continue;
    }
    for (const auto& [kind, value] : agreed->values) {
      auto it = secrets.values.find(kind);
      if (it == secrets.values.end() || it->second != value) {
        if (why) *why = "the Patroni configs on " + first_host + " and " + host + " hold different " + to_string(kind) +
                        " passwords";
        return std::nullopt;
      }
    }
  }
  if (!agreed && why) *why = "no host's Patroni config holds them";
  return agreed;
}

bool hosts_decide(const SecretEvidence& evidence) {
  return !evidence.configs.empty() || !evidence.traces.empty() || !evidence.unanswered.empty();
}

SecretDecision decide_missing_secrets(const DesiredCluster& cluster, const SecretEvidence& evidence,
                                      const std::string& state_file) {
  SecretDecision d;
  const std::string head = "cluster " + cluster.name + ": no secrets in " + state_file;
  if (!evidence.configs.empty()) {
    std::string why;
    if (auto agreed = agreed_secrets(evidence, &why)) {
      d.origin = SecretOrigin::recovered;
      d.secrets = std::move(agreed);
      return d;
    }
    d.error = head + ", and " + why + "; no secrets were generated or written. Recover deliberately: " +
              secrets_commands(cluster.name);
    return d;
  }
  if (!evidence.traces.empty()) {
    d.error = head + ", but the cluster exists (" + join(evidence.traces, "; ") +
              ") and no host's Patroni config holds its passwords; refusing to generate new ones over working ones. " +
              secrets_commands(cluster.name);
    return d;
  }
  if (!evidence.unanswered.empty()) {
    d.error = head + " and not every host answered (" + join(evidence.unanswered, ", ") +
              "), so a new cluster cannot be told from one whose state dir was lost; no secrets were generated. "
              "Run again once every host answers, or " +
              secrets_commands(cluster.name);
    return d;
  }
  if (!evidence.dcs_has_cluster) {
    d.error = head + " and its DCS could not be asked whether the cluster exists (" + evidence.dcs_error +
              "); no secrets were generated. Run again once etcd answers";
    return d;
  }
  if (*evidence.dcs_has_cluster) {
    d.error = head + ", but its DCS holds the cluster's keys (" + dcs_cluster_keys(cluster).front() +
              "…) while no host shows it; refusing to generate new passwords. " + secrets_commands(cluster.name);
    return d;
  }
  d.origin = SecretOrigin::generated;
  d.secrets = generate_secrets();
  return d;
}

}  // namespace pgc::reconciler

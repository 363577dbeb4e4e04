#pragma once
// Hand-built desired and observed states for the core's unit tests (no compiler, no network).

#include <string>
#include <vector>

#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/secrets.hpp"

namespace pgc::testing {

inline reconciler::OsRelease debian12() {
  return {"debian", "12", "", "Debian GNU/Linux 12 (bookworm)", "bookworm"};
}

// A reachable Debian 12 host with apt, as a fresh VM is before its first apt-get update: a
// missing package is planned with an update first, and apt decides at apply.
inline reconciler::ObservedHost debian_host(const std::string& name) {
  reconciler::ObservedHost h;
  h.name = name;
  h.reachable = true;
  h.os = debian12();
  h.has_apt = true;
  h.apt_lists = false;
  return h;
}

// A cluster "c" of n members c-0..c-(n-1) on hosts h1..hn (10.0.0.11..), in the given mode.
inline reconciler::DesiredCluster make_cluster(int n, manifests::ReplicationMode mode, int sync_count = 1) {
  using manifests::ReplicationMode;
  reconciler::DesiredCluster c;
  c.name = "c";
  c.namespace_ = "default";
  c.mode = mode;
  c.instances = n;
  c.postgres_major = 15;
  bool sync = mode != ReplicationMode::async && n >= 2;
  c.dynamic_config = {{"ttl", 30}, {"loop_wait", 10}, {"retry_timeout", 10},
                      {"synchronous_mode", sync}, {"synchronous_mode_strict", sync && manifests::is_strict(mode)},
                      {"postgresql", {{"use_pg_rewind", true}, {"use_slots", true},
                                      {"parameters", {{"max_connections", 100}}}}}};
  if (sync) c.dynamic_config["synchronous_node_count"] = manifests::is_all(mode) ? n - 1 : sync_count;
  for (int i = 0; i < n; ++i) {
    reconciler::DesiredMember m;
    m.name = "c-" + std::to_string(i);
    m.slot = i;
    m.host = "h" + std::to_string(i + 1);
    m.address = "10.0.0." + std::to_string(11 + i);
    m.data_dir = "/var/lib/postgresql/15/c";
    m.config_path = "/etc/patroni/15-c.yml";
    m.service = "patroni@15-c";
    m.patroni_config = {{"scope", "c"}, {"name", m.name},
                        {"restapi", {{"authentication", {{"username", "pgconverge"}, {"password", "secret:restapi"}}}}},
                        {"postgresql", {{"data_dir", "/var/lib/postgresql/15/c"},
                                        {"authentication", {{"superuser", {{"password", "secret:superuser"}}},
                                                            {"replication", {{"password", "secret:replication"}}},
                                                            {"rewind", {{"password", "secret:rewind"}}}}}}},
                        {"tags", {{"nofailover", false}, {"noloadbalance", false}}}};
    c.members.push_back(m);
  }
  c.packages = {"patroni", "postgresql-15"};
  return c;
}

inline reconciler::ClusterSecrets fixed_secrets() {
  reconciler::ClusterSecrets s;
  s.values = {{reconciler::SecretKind::superuser, "SUPERsecret1"},
              {reconciler::SecretKind::replication, "REPLsecret2"},
              {reconciler::SecretKind::rewind, "REWINDsecret3"},
              {reconciler::SecretKind::restapi, "RESTsecret4"}};
  return s;
}

// A healthy observed cluster matching make_cluster: c-0 leads, the first `syncs` replicas are sync.
inline reconciler::ObservedCluster healthy(const reconciler::DesiredCluster& c, int syncs) {
  reconciler::ObservedCluster o;
  o.name = c.name;
  o.api_reachable = true;
  o.system_identifier = "7373750354182599290";
  o.dcs_config = c.dynamic_config;
  for (std::size_t i = 0; i < c.members.size(); ++i) {
    reconciler::ObservedMember m;
    m.name = c.members[i].name;
    m.host = c.members[i].address;
    m.port = 5432;
    m.timeline = 1;
    if (i == 0) {
      m.role = "leader";
      m.state = "running";
    } else {
      m.role = static_cast<int>(i) <= syncs ? "sync_standby" : "replica";
      m.state = "streaming";
      m.lag_bytes = 0;
    }
    m.tags = {{"nofailover", c.members[i].tags.nofailover}, {"noloadbalance", c.members[i].tags.noloadbalance}};
    o.members.push_back(m);
  }
  reconciler::ObservedPostgres pg;
  pg.reachable = true;
  for (std::size_t i = 1; i < c.members.size(); ++i)
    pg.sync_states.emplace_back(c.members[i].name, static_cast<int>(i) <= syncs ? "sync" : "async");
  o.postgres[c.members[0].name] = pg;
  return o;
}

}  // namespace pgc::testing

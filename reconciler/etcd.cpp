#include "reconciler/etcd.hpp"

#include <algorithm>
#include <sstream>

#include "reconciler/etcd_tls.hpp"
#include "reconciler/observe.hpp"
#include "reconciler/placement.hpp"
#include "util/net_address.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

using json = nlohmann::json;

std::string url_host(const std::string& address) { return is_ipv6(address) ? "[" + address + "]" : address; }
std::string url(const std::string& scheme, const std::string& address, int port) {
  return scheme + "://" + url_host(address) + ":" + std::to_string(port);
}

// The hosts of every member of the clusters that keep their state in the named etcd (the hosts
// whose Patroni is its client).
std::set<std::string> patroni_hosts_of(const DesiredState& desired, const std::string& etcd_name) {
  std::set<std::string> hosts;
  for (const auto& c : desired.clusters)
    if (c.dcs_name == etcd_name)
      for (const auto& m : c.members) hosts.insert(m.host);
  return hosts;
}

// The selected Hosts in member order: the list form as written, the nodeSelector form in natural
// name order (pg-2 before pg-10), as SGCluster placement orders them.
std::vector<const manifests::Host*> member_hosts(const manifests::EtcdCluster& etcd,
                                                 const std::vector<manifests::Host>& hosts) {
  auto selected = manifests::etcd_selected_hosts(etcd, hosts);
  if (etcd.host_selector_form)
    std::stable_sort(selected.begin(), selected.end(), [](const manifests::Host* a, const manifests::Host* b) {
      return natural_less(a->metadata.name, b->metadata.name);
    });
  return selected;
}

int quorum(std::size_t members) { return static_cast<int>(members / 2 + 1); }

// The hexadecimal member id etcdctl takes, from the number `member list -w json` prints.
std::string hex_id(const json& id) {
  if (!id.is_number_unsigned() && !id.is_number_integer()) return "";
  std::ostringstream out;
  out << std::hex << id.get<unsigned long long>();
  return out.str();
}

// object[key] as a string, or fallback when absent; a value of another type throws, as
// json::value does. (json::value itself, inlined here, trips g++ 12's -Wnull-dereference.)
std::string string_or(const json& object, const char* key, const std::string& fallback) {
  auto it = object.find(key);
  return it == object.end() ? fallback : it->get<std::string>();
}

std::vector<std::string> string_list(const json& value) {
  std::vector<std::string> out;
  if (!value.is_array()) return out;
  for (const auto& v : value)
    if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

// A change of etcd: its subject names the EtcdCluster (its step does too, steps.hpp).
Change etcd_change(const DesiredEtcd& etcd, Change c) {
  c.subject = "etcd " + etcd.name + ": " + c.subject;
  return c;
}

// The kept values of ETCD_INITIAL_* in a member's existing file: etcd reads them only on an empty
// data directory, so once the member has data they are left as written (a later membership
// change never rewrites every member's file).
std::optional<EtcdInitial> kept_initial(const std::optional<std::string>& file) {
  if (!file) return std::nullopt;
  auto env = parse_env_file(*file);
  auto cluster = env.find("ETCD_INITIAL_CLUSTER");
  auto state = env.find("ETCD_INITIAL_CLUSTER_STATE");
  if (cluster == env.end() || state == env.end()) return std::nullopt;
  return EtcdInitial{cluster->second, state->second};
}

// The keys whose values differ between two environment files, for display.
std::vector<FieldChange> env_differences(const std::string& before, const std::string& after) {
  auto a = parse_env_file(before);
  auto b = parse_env_file(after);
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  std::vector<FieldChange> out;
  for (const auto& k : keys) {
    auto ia = a.find(k), ib = b.find(k);
    std::string va = ia == a.end() ? "(unset)" : ia->second;
    std::string vb = ib == b.end() ? "(unset)" : ib->second;
    if (va != vb) out.push_back(FieldChange{k, va, vb});
  }
  return out;
}

// What one declared member looks like this run.
struct MemberView {
  const DesiredEtcdMember* desired = nullptr;
  const ObservedHost* host = nullptr;
  ObservedEtcd etcd;  // empty when the probe did not ask (packages missing…)
  bool active = false;
  bool enabled = false;
  std::optional<std::string> file;
};

class EtcdPlanner {
 public:
  EtcdPlanner(const manifests::ManifestSet& manifests, const DesiredState& desired, const DesiredEtcd& etcd,
              const ObservedState& observed, EtcdPlan& out)
      : manifests_(manifests), desired_(desired), etcd_(etcd), observed_(observed), out_(out) {}

  void plan() {
    for (const auto& m : etcd_.members) {
      auto h = observed_.hosts.find(m.host);
      if (h == observed_.hosts.end() || !h->second.reachable) {
        error("member " + m.name + " on host " + m.host + ": " +
              (h == observed_.hosts.end() || h->second.error.empty() ? std::string("not observed") : h->second.error) +
              "; no etcd change is planned until every member's host answers");
        return;
      }
      MemberView v;
      v.desired = &m;
      v.host = &h->second;
      if (h->second.etcd) v.etcd = *h->second.etcd;
      v.active = service_state(h->second.services) == "active";
      v.enabled = service_state(h->second.service_enabled) == "enabled";
      if (auto f = h->second.files.find(etcd_.config_path); f != h->second.files.end()) v.file = f->second;
      for (const auto& p : etcd_.packages) {
        auto it = h->second.packages.find(p);
        if (it == h->second.packages.end() || !it->second) out_.packages[m.host].insert(p);
      }
      views_.push_back(std::move(v));
    }
    if (!scheme_matches_running()) return;
    plan_certificates();
    const MemberView* live = nullptr;
    for (const auto& v : views_)
      if (v.etcd.has_data && v.etcd.healthy && v.etcd.listed) {
        live = &v;
        break;
      }
    bool any_data = std::any_of(views_.begin(), views_.end(), [](const MemberView& v) { return v.etcd.has_data; });
    if (!live && !any_data) return form_new_cluster();
    if (!live) return restart_stopped_cluster();
    plan_live_cluster(*live);
  }

 private:
  std::string service_state(const std::map<std::string, std::string>& states) const {
    auto it = states.find(etcd_.service);
    return it == states.end() ? "unknown" : it->second;
  }
  void error(const std::string& message) { out_.errors.push_back("etcd " + etcd_.name + ": " + message); }

  // A member that has data and runs another scheme than spec.tls asks (an etcd formed plain by an
  // older pgconverge): refused, with the way forward — moving a running etcd between http and
  // https changes every member's peer URL, and a Patroni configured for the other scheme would
  // lose its leader key. Nothing of this etcd, or of the clusters on it, is planned.
  bool scheme_matches_running() {
    for (const auto& v : views_) {
      if (!v.file || !v.etcd.has_data) continue;
      auto env = parse_env_file(*v.file);
      auto advertised = env.find("ETCD_ADVERTISE_CLIENT_URLS");
      if (advertised == env.end()) continue;
      bool https = starts_with(advertised->second, "https://");
      if (https == etcd_.tls) continue;
      error(std::string("member ") + v.desired->name + " (" + v.desired->host + ") serves " +
            (https ? "https" : "plain http") + " (" + etcd_.config_path + ": " + advertised->second +
            ") but spec.tls.enabled is " + (etcd_.tls ? "true" : "false") + " (EtcdCluster " + etcd_.name + " at " +
            etcd_.where.str() + "): pgconverge does not switch a running etcd " +
            (etcd_.tls ? "to TLS" : "off TLS") + "; set spec.tls.enabled: " + (https ? "true" : "false") +
            " to keep it as it is" + (etcd_.tls ? " (plain: insecure, see docs/security.md)" : "") +
            "; nothing of this etcd or its clusters is applied");
      out_.refused.insert(etcd_.name);
      return false;
    }
    return true;
  }

  // Every member's certificate, then every Patroni host's client certificate, written when absent,
  // not as wanted or due for renewal (etcd_tls.hpp). A running healthy member's renewal waits for
  // its /health through the new certificate before the next one is written.
  void plan_certificates() {
    if (!etcd_.tls) return;
    auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    for (const auto& v : views_) {
      auto wanted = etcd_member_certificate(etcd_, *v.desired);
      bool running = v.active && v.etcd.healthy;
      certificate_change(wanted, *v.host, v.desired->host, "member " + v.desired->name,
                         running ? std::vector<std::string>{v.desired->host} : std::vector<std::string>{}, now);
    }
    for (const auto& host : patroni_hosts_of(desired_, etcd_.name)) {
      auto h = observed_.hosts.find(host);
      if (h == observed_.hosts.end() || !h->second.reachable) continue;  // its cluster reports it
      certificate_change(etcd_patroni_certificate(etcd_, host), h->second, host, "Patroni's client", {}, now);
    }
  }

  void certificate_change(const EtcdCertificate& wanted, const ObservedHost& oh, const std::string& host,
                          const std::string& who, std::vector<std::string> wait_hosts, std::chrono::sys_seconds now) {
    auto cert = plan_etcd_certificate(wanted, oh, etcd_.ca_certificate_pem, now);
    if (!cert.write) return;
    out_.changes.push_back(etcd_change(
        etcd_, Change{.subject = who + " (" + host + "): " + wanted.files.certificate,
                      .action = cert.before == "(none)" ? Action::create : Action::update,
                      .before = cert.before,
                      .after = cert.after,
                      .reason = cert.reason + (wait_hosts.empty() ? "" : "; then /health on " + host),
                      .step = steps::EtcdWriteCertificate{.etcd = etcd_.name,
                                                          .files = wanted.files,
                                                          .common_name = wanted.common_name,
                                                          .dns_names = wanted.dns_names,
                                                          .ip_addresses = wanted.ip_addresses,
                                                          .wait_hosts = std::move(wait_hosts),
                                                          .client_url = etcd_.local_client_url()},
                      .host = host}));
  }

  // Writes a member's file when it differs from text; true when a write was planned.
  bool write_if_needed(const MemberView& v, const std::string& text, const std::string& why) {
    if (v.file && *v.file == text) return false;
    Change c{.subject = "member " + v.desired->name + " (" + v.desired->host + "): " + etcd_.config_path,
             .action = v.file ? Action::update : Action::create,
             .step = steps::EtcdWriteConfig{.etcd = etcd_.name,
                                            .path = etcd_.config_path,
                                            .content = text,
                                            .data_dir = etcd_.data_dir},
             .host = v.desired->host};
    if (!v.file) {
      c.after = "etcd configuration of member " + v.desired->name;
      c.reason = "absent; " + why;
    } else {
      c.fields = env_differences(*v.file, text);
      std::vector<std::string> before, after, keys;
      for (const auto& f : c.fields) {
        keys.push_back(f.key);
        before.push_back(f.key + "=" + f.before);
        after.push_back(f.key + "=" + f.after);
      }
      c.before = join(before, ", ");
      c.after = join(after, ", ");
      if (parse_env_file(*v.file).empty()) c.reason = "holds no settings (the package's default file); " + why;
      else c.reason = (keys.empty() ? std::string("formatting or comments differ (drift)") : "drift in " + join(keys, ", ")) +
                      "; " + why;
    }
    out_.changes.push_back(etcd_change(etcd_, std::move(c)));
    return true;
  }

  std::vector<std::string> all_hosts() const {
    std::vector<std::string> hosts;
    for (const auto& m : etcd_.members) hosts.push_back(m.host);
    return hosts;
  }

  // No member has data: a new cluster. Every member gets its file, then all start together (a
  // member of a new cluster waits for quorum before it reports ready), then every member must
  // answer /health. Debian's etcd-server starts etcd "default" on install: restart replaces it.
  void form_new_cluster() {
    auto initial = new_cluster_initial(etcd_);
    for (const auto& v : views_)
      write_if_needed(v, etcd_config_text(etcd_, *v.desired, initial), "new cluster");
    std::vector<std::string> names;
    for (const auto& m : etcd_.members) names.push_back(m.name);
    out_.changes.push_back(etcd_change(
        etcd_, Change{.subject = "members " + join(names, ", "),
                      .action = Action::create,
                      .before = "no cluster",
                      .after = std::to_string(names.size()) + " healthy member(s)",
                      .reason = "form a new " + std::to_string(names.size()) +
                                "-member cluster: start every member together (each waits for quorum), then wait "
                                "for /health on all",
                      .step = steps::EtcdStart{.etcd = etcd_.name,
                                               .hosts = all_hosts(),
                                               .restart = true,
                                               .wait_hosts = all_hosts(),
                                               .client_url = etcd_.local_client_url()}}));
  }

  // Members have data but none answers healthy: start those whose service is down, together.
  void restart_stopped_cluster() {
    std::vector<std::string> hosts, wait, names, running, without_data;
    for (const auto& v : views_) {
      if (!v.etcd.has_data) {
        without_data.push_back(v.desired->name);
        continue;
      }
      wait.push_back(v.desired->host);
      if (v.active) {
        running.push_back(v.desired->name);
        continue;
      }
      hosts.push_back(v.desired->host);
      names.push_back(v.desired->name);
    }
    if (names.empty()) {
      std::string why;
      for (const auto& v : views_)
        if (!v.etcd.health_error.empty()) why = " (" + v.desired->name + ": " + v.etcd.health_error + ")";
      error("members " + join(running, ", ") + " run but none is healthy" + why +
            ": without quorum no change can be verified, so nothing is planned for this etcd");
      return;
    }
    out_.changes.push_back(etcd_change(
        etcd_, Change{.subject = "members " + join(names, ", "),
                      .action = Action::update,
                      .before = "stopped",
                      .after = "active",
                      .reason = "the cluster has no healthy member; start the stopped members together, then wait "
                                "for /health",
                      .step = steps::EtcdStart{.etcd = etcd_.name,
                                               .hosts = hosts,
                                               .restart = false,
                                               .wait_hosts = wait,
                                               .client_url = etcd_.local_client_url()}}));
    if (!without_data.empty())
      error("member(s) " + join(without_data, ", ") +
            " are declared but not in the cluster yet; they are added once it is healthy (apply again)");
  }

  const ObservedEtcdMember* live_member(const std::vector<ObservedEtcdMember>& list, const DesiredEtcdMember& m) const {
    for (const auto& lm : list)
      if (lm.name == m.name) return &lm;
    for (const auto& lm : list)  // added, never started: no name yet
      if (lm.name.empty() && std::find(lm.peer_urls.begin(), lm.peer_urls.end(), m.peer_url) != lm.peer_urls.end())
        return &lm;
    return nullptr;
  }

  std::string initial_of(const std::vector<std::string>& entries) const { return join(entries, ","); }

  // The running cluster as the phases of plan_live_cluster see it: the `member list` of the
  // member the membership changes go through, and the counts each planned add and remove updates.
  struct LiveCluster {
    const MemberView& live;                            // healthy and listed: member add/remove go through it
    const std::vector<ObservedEtcdMember>& list;       // its `member list`
    std::vector<std::string> initial_entries{};        // name=peer of every current member, for added members
    std::size_t size = 0;                              // members, once the changes planned so far are made
    int healthy = 0;                                   // healthy members, likewise
    std::vector<const MemberView*> current{};          // declared members in the cluster
    std::vector<const MemberView*> adds{};             // declared members to add (or added and never started)
    std::vector<std::string> unhealthy{};              // current members that are not healthy
    std::vector<const ObservedEtcdMember*> removes{};  // live members no longer declared
  };

  // A member answers healthy: fix the members the cluster has, then change its membership (adds,
  // then removes). A phase that refuses stops the phases after it.
  void plan_live_cluster(const MemberView& live) {
    LiveCluster cluster = live_cluster(live);
    if (!classify_declared_members(cluster)) return;
    fix_current_members(cluster);
    cluster.removes = undeclared_members(cluster.list);
    if (!membership_change_allowed(cluster)) return;
    if (!plan_adds(cluster)) return;
    plan_removes(cluster);
  }

  // Decides the cluster's size and the ETCD_INITIAL_CLUSTER entries of its members, from `member list`.
  static LiveCluster live_cluster(const MemberView& live) {
    LiveCluster cluster{.live = live, .list = live.etcd.members};
    for (const auto& lm : cluster.list) {
      if (lm.name.empty() || lm.peer_urls.empty()) continue;
      cluster.initial_entries.push_back(lm.name + "=" + lm.peer_urls.front());
    }
    cluster.size = cluster.list.size();
    return cluster;
  }

  // Decides which declared members are in the cluster (healthy or not) and which are to be added;
  // false when one is refused (its peer URL or its data directory changed): nothing more is planned.
  bool classify_declared_members(LiveCluster& cluster) {
    bool refused = false;
    for (const auto& v : views_) {
      const auto* lm = live_member(cluster.list, *v.desired);
      if (!lm) {
        cluster.adds.push_back(&v);
        continue;
      }
      if (!lm->name.empty() &&
          std::find(lm->peer_urls.begin(), lm->peer_urls.end(), v.desired->peer_url) == lm->peer_urls.end()) {
        error("member " + v.desired->name + " has peer URL " + join(lm->peer_urls, ",") + " but " + v.desired->peer_url +
              " is declared: changing a member's peer URL (spec.peerPort or the Host's address) needs `etcdctl "
              "member update`, which pgconverge does not do; refused");
        refused = true;
        continue;
      }
      if (!lm->name.empty() && !v.etcd.has_data) {
        error("member " + v.desired->name + " is in the cluster but " + etcd_.data_dir + " on " + v.desired->host +
              " holds no etcd data: moving a member's data (spec.dataDirectory) is not done by pgconverge; refused");
        refused = true;
        continue;
      }
      if (lm->name.empty()) {  // added by an earlier apply, never started
        cluster.adds.push_back(&v);
        continue;
      }
      cluster.current.push_back(&v);
      if (v.etcd.healthy) ++cluster.healthy;
      else cluster.unhealthy.push_back(v.desired->name);
    }
    return !refused;
  }

  // Decides, one member at a time, how config drift and a stopped service are fixed: rewrite and
  // restart alone (refused when the others would not keep a quorum of healthy members), or start.
  void fix_current_members(const LiveCluster& cluster) {
    const std::size_t size = cluster.size;
    for (const auto* v : cluster.current) {
      auto initial = kept_initial(v->file).value_or(EtcdInitial{initial_of(cluster.initial_entries), "existing"});
      std::string text = etcd_config_text(etcd_, *v->desired, initial);
      bool healthy_now = v->etcd.healthy;
      if (v->file && *v->file == text) {
        if (!v->active || !v->enabled) start_one(*v, v->active ? "service not enabled at boot" : "service stopped");
        continue;
      }
      // Restarting this member must leave a quorum of healthy members meanwhile.
      int others = cluster.healthy - (healthy_now ? 1 : 0);
      if (v->active && healthy_now && others < quorum(size) && size > 1) {
        error("config drift on member " + v->desired->name + " is not fixed: restarting it would leave " +
              std::to_string(others) + " healthy member(s) of " + std::to_string(size) + ", below quorum (" +
              std::to_string(quorum(size)) + "); bring " + join(cluster.unhealthy, ", ") + " back first");
        continue;
      }
      write_if_needed(*v, text, "rewrite, then restart this member alone and wait for /health");
      if (v->active) restart_one(*v, cluster.current);
      else start_one(*v, "service " + std::string(v->active ? "active" : "stopped"));
    }
  }

  // Decides which live members are no longer declared (to remove), in `member list` order.
  std::vector<const ObservedEtcdMember*> undeclared_members(const std::vector<ObservedEtcdMember>& list) const {
    std::vector<const ObservedEtcdMember*> removes;
    for (const auto& lm : list) {
      bool declared = std::any_of(etcd_.members.begin(), etcd_.members.end(), [&](const DesiredEtcdMember& m) {
        return lm.name.empty() ? std::find(lm.peer_urls.begin(), lm.peer_urls.end(), m.peer_url) != lm.peer_urls.end()
                               : lm.name == m.name;
      });
      if (!declared) removes.push_back(&lm);
    }
    return removes;
  }

  // Decides whether the membership may change: not when a member is added while one is unhealthy.
  bool membership_change_allowed(const LiveCluster& cluster) {
    if (cluster.adds.empty() || cluster.unhealthy.empty()) return true;
    error("membership change (" + describe_change(cluster.adds, cluster.removes) + ") refused: member(s) " +
          join(cluster.unhealthy, ", ") + " are not healthy, and adding a member is only safe on a healthy cluster");
    return false;
  }

  // Decides the adds, one at a time: `member add` BEFORE the new member's config and start; false
  // when a member cannot be added (data of an earlier member, too few healthy): nothing more is planned.
  bool plan_adds(LiveCluster& cluster) {
    std::vector<std::string> wait_hosts = all_current_hosts(cluster.current);
    for (const auto* v : cluster.adds) {
      if (v->etcd.has_data) {
        error("member " + v->desired->name + " cannot be added: " + etcd_.data_dir + " on " + v->desired->host +
              " holds data of an earlier etcd member; pgconverge never deletes a data directory: move it away, then "
              "apply again");
        return false;
      }
      const auto* lm = live_member(cluster.list, *v->desired);
      if (cluster.healthy < quorum(cluster.size + 1) - 1) {
        error("member " + v->desired->name + " cannot be added: " + std::to_string(cluster.healthy) +
              " healthy member(s) of " + std::to_string(cluster.size) + " is too few for a cluster of " +
              std::to_string(cluster.size + 1));
        return false;
      }
      if (!lm) {  // else added by an earlier apply, never started
        member_add(cluster, *v);
        ++cluster.size;
      }
      cluster.initial_entries.push_back(v->desired->name + "=" + v->desired->peer_url);
      EtcdInitial initial{initial_of(cluster.initial_entries), "existing"};
      write_if_needed(*v, etcd_config_text(etcd_, *v->desired, initial), "joins the existing cluster");
      wait_hosts.push_back(v->desired->host);
      start_added(*v, wait_hosts);
      ++cluster.healthy;
    }
    return true;
  }

  // Decides the removes, after the adds and one at a time: `member remove` BEFORE its etcd stops,
  // only while the members left keep a quorum of healthy ones; the first refused stops the rest.
  void plan_removes(LiveCluster& cluster) {
    for (const auto* lm : cluster.removes)
      if (removed_member_healthy(*lm)) ++cluster.healthy;
    for (const auto* lm : cluster.removes) {
      std::string label = lm->name.empty() ? "(unstarted " + join(lm->peer_urls, ",") + ")" : lm->name;
      if (cluster.size <= 1) {
        error("member " + label + " is not removed: it is the last member");
        return;
      }
      int left = cluster.healthy - (removed_member_healthy(*lm) ? 1 : 0);
      if (left < quorum(cluster.size - 1)) {
        error("member " + label + " is not removed: the " + std::to_string(cluster.size - 1) +
              " members left would have " + std::to_string(left) + " healthy, below quorum (" +
              std::to_string(quorum(cluster.size - 1)) + ")");
        return;
      }
      cluster.healthy = left;
      member_remove(cluster, *lm, label);
      --cluster.size;
    }
  }

  // A member being removed counts as healthy when its host's etcd answers healthy.
  bool removed_member_healthy(const ObservedEtcdMember& lm) const {
    auto h = observed_.hosts.find(lm.name);
    return !lm.name.empty() && h != observed_.hosts.end() && h->second.reachable && h->second.etcd &&
           h->second.etcd->healthy;
  }

  // `member add` of v through the live member: the cluster has one member more before v starts.
  void member_add(const LiveCluster& cluster, const MemberView& v) {
    const std::size_t size = cluster.size;
    std::string risk = size == 1 ? "; until it is healthy the 2-member cluster has no quorum" : "";
    out_.changes.push_back(etcd_change(
        etcd_, Change{.subject = "member " + v.desired->name,
                      .action = Action::create,
                      .before = std::to_string(size) + " members",
                      .after = std::to_string(size + 1) + " members",
                      .reason = "declared in spec.hosts: `member add` through " + cluster.live.desired->name +
                                " before its configuration is written and it starts" + risk,
                      .step = steps::EtcdMemberAdd{.etcd = etcd_.name,
                                                   .member = v.desired->name,
                                                   .peer_url = v.desired->peer_url,
                                                   .client_url = etcd_.local_client_url()},
                      .host = cluster.live.desired->host}));
  }

  // Starts an added member alone, then waits for /health on every member (wait_hosts).
  void start_added(const MemberView& v, const std::vector<std::string>& wait_hosts) {
    out_.changes.push_back(etcd_change(
        etcd_, Change{.subject = "member " + v.desired->name + " (" + v.desired->host + "): " + etcd_.service,
                      .action = Action::create,
                      .before = v.active ? "running another configuration" : "stopped",
                      .after = "active",
                      .reason = "start the added member, then wait for /health on every member",
                      .step = steps::EtcdStart{.etcd = etcd_.name,
                                               .hosts = {v.desired->host},
                                               .restart = true,
                                               .wait_hosts = wait_hosts,
                                               .client_url = etcd_.local_client_url()}}));
  }

  // `member remove` of lm through the live member, then its etcd stopped where a Host declares it.
  void member_remove(const LiveCluster& cluster, const ObservedEtcdMember& lm, const std::string& label) {
    const std::size_t size = cluster.size;
    const manifests::Host* host = nullptr;
    for (const auto& h : manifests_.hosts)
      if (!lm.name.empty() && h.metadata.name == lm.name) host = &h;
    out_.changes.push_back(etcd_change(
        etcd_, Change{.subject = "member " + label,
                      .action = Action::remove,
                      .before = std::to_string(size) + " members",
                      .after = std::to_string(size - 1) + " members",
                      .reason = "no longer in spec.hosts: `member remove` through " + cluster.live.desired->name +
                                " before its etcd stops" +
                                (host || lm.name.empty()
                                     ? std::string()
                                     : "; no Host \"" + lm.name + "\" is declared, so etcd there is not stopped"),
                      .step = steps::EtcdMemberRemove{.etcd = etcd_.name,
                                                      .member = lm.name,
                                                      .id = lm.id,
                                                      .client_url = etcd_.local_client_url()},
                      .host = cluster.live.desired->host}));
    if (!host) return;
    out_.changes.push_back(etcd_change(
        etcd_, Change{.subject = "member " + lm.name + " (" + host->metadata.name + "): " + etcd_.service,
                      .action = Action::remove,
                      .before = "running",
                      .after = "stopped and disabled (data directory kept)",
                      .reason = "removed from the cluster",
                      .step = steps::EtcdStop{.etcd = etcd_.name},
                      .host = host->metadata.name}));
  }

  std::vector<std::string> all_current_hosts(const std::vector<const MemberView*>& current) const {
    std::vector<std::string> out;
    for (const auto* v : current) out.push_back(v->desired->host);
    return out;
  }

  static std::string describe_change(const std::vector<const MemberView*>& adds,
                                     const std::vector<const ObservedEtcdMember*>& removes) {
    std::vector<std::string> parts;
    for (const auto* v : adds) parts.push_back("add " + v->desired->name);
    for (const auto* lm : removes) parts.push_back("remove " + (lm->name.empty() ? join(lm->peer_urls, ",") : lm->name));
    return join(parts, ", ");
  }

  void start_one(const MemberView& v, const std::string& why) {
    out_.changes.push_back(etcd_change(
        etcd_, Change{.subject = "member " + v.desired->name + " (" + v.desired->host + "): " + etcd_.service,
                      .action = Action::update,
                      .before = v.active ? "active" : service_state(v.host->services),
                      .after = "active",
                      .reason = why + "; start it, then wait for /health",
                      .step = steps::EtcdStart{.etcd = etcd_.name,
                                               .hosts = {v.desired->host},
                                               .restart = false,
                                               .wait_hosts = {v.desired->host},
                                               .client_url = etcd_.local_client_url()}}));
  }

  // Restarts a running member alone on its rewritten configuration, then waits for /health on all.
  void restart_one(const MemberView& v, const std::vector<const MemberView*>& current) {
    out_.changes.push_back(etcd_change(
        etcd_, Change{.subject = "member " + v.desired->name + " (" + v.desired->host + "): " + etcd_.service,
                      .action = Action::restart,
                      .before = "running the old configuration",
                      .after = "restarted",
                      .reason = "configuration changed; one member at a time, waiting for /health on all",
                      .step = steps::EtcdRestart{.etcd = etcd_.name,
                                                 .wait_hosts = all_current_hosts(current),
                                                 .client_url = etcd_.local_client_url()},
                      .host = v.desired->host}));
  }

  const manifests::ManifestSet& manifests_;
  const DesiredState& desired_;
  const DesiredEtcd& etcd_;
  const ObservedState& observed_;
  EtcdPlan& out_;
  std::vector<MemberView> views_;
};

}  // namespace

std::vector<std::string> etcd_client_endpoints(const manifests::EtcdCluster& etcd,
                                               const std::vector<manifests::Host>& hosts) {
  if (!etcd.managed()) return etcd.endpoints;
  std::vector<std::string> out;
  for (const auto* h : member_hosts(etcd, hosts)) out.push_back(url_host(h->address) + ":" + std::to_string(etcd.client_port));
  return out;
}

std::vector<DesiredEtcd> compile_etcds(const manifests::ManifestSet& manifests, Diagnostics& diagnostics) {
  std::vector<DesiredEtcd> out;
  for (const auto& e : manifests.etcd_clusters) {
    if (!e.managed()) continue;
    DesiredEtcd d;
    d.name = e.metadata.name;
    d.client_port = e.client_port;
    d.peer_port = e.peer_port;
    d.data_dir = manifests::etcd_data_directory(e);
    d.where = e.locations.at("");
    d.tls = e.tls_enabled;
    bool ok = true;
    for (const auto* h : member_hosts(e, manifests.hosts)) {
      if (!is_ipv4(h->address) && !is_ipv6(h->address)) {
        // etcd binds its listen URLs to an IP address; a DNS name there is refused at start.
        diagnostics.push_back(Diagnostic{Severity::error, e.locations.at("spec.hosts"), "spec.hosts",
                                         "Host \"" + h->metadata.name + "\" has address \"" + h->address +
                                             "\": an etcd member needs an IP address (etcd listens on it)"});
        ok = false;
        continue;
      }
      DesiredEtcdMember m;
      m.name = h->metadata.name;
      m.host = h->metadata.name;
      m.address = h->address;
      m.peer_url = url(d.scheme(), h->address, e.peer_port);
      m.client_url = url(d.scheme(), h->address, e.client_port);
      d.members.push_back(std::move(m));
    }
    if (ok) out.push_back(std::move(d));
  }
  return out;
}

EtcdInitial new_cluster_initial(const DesiredEtcd& etcd) {
  std::vector<std::string> entries;
  for (const auto& m : etcd.members) entries.push_back(m.name + "=" + m.peer_url);
  return EtcdInitial{join(entries, ","), "new"};
}

std::string etcd_config_text(const DesiredEtcd& etcd, const DesiredEtcdMember& member, const EtcdInitial& initial) {
  std::string out;
  out += "# Managed by pgconverge (EtcdCluster " + etcd.name + "): local edits are reverted on the next apply.\n";
  out += "# ETCD_INITIAL_* are read only on an empty data directory; they are kept as first written.\n";
  out += "ETCD_NAME=" + member.name + "\n";
  out += "ETCD_DATA_DIR=" + etcd.data_dir + "\n";
  out += "ETCD_LISTEN_PEER_URLS=" + member.peer_url + "\n";
  out += "ETCD_LISTEN_CLIENT_URLS=" + member.client_url + "," + etcd.local_client_url() + "\n";
  out += "ETCD_INITIAL_ADVERTISE_PEER_URLS=" + member.peer_url + "\n";
  out += "ETCD_ADVERTISE_CLIENT_URLS=" + member.client_url + "\n";
  out += "ETCD_INITIAL_CLUSTER=" + initial.cluster + "\n";
  out += "ETCD_INITIAL_CLUSTER_STATE=" + initial.state + "\n";
  out += "ETCD_INITIAL_CLUSTER_TOKEN=" + etcd.name + "\n";
  if (!etcd.tls) return out;
  // Clients and peers alike must present a certificate from the etcd's CA (a plain-HTTP client,
  // or one without such a certificate, is refused); the member's certificate serves both.
  auto f = etcd.member_tls();
  out += "ETCD_CERT_FILE=" + f.certificate + "\n";
  out += "ETCD_KEY_FILE=" + f.private_key + "\n";
  out += "ETCD_TRUSTED_CA_FILE=" + f.ca + "\n";
  out += "ETCD_CLIENT_CERT_AUTH=true\n";
  out += "ETCD_PEER_CERT_FILE=" + f.certificate + "\n";
  out += "ETCD_PEER_KEY_FILE=" + f.private_key + "\n";
  out += "ETCD_PEER_TRUSTED_CA_FILE=" + f.ca + "\n";
  out += "ETCD_PEER_CLIENT_CERT_AUTH=true\n";
  return out;
}

std::map<std::string, std::string> parse_env_file(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const auto& raw : split(text, '\n')) {
    std::string line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      out[line] = "(not KEY=VALUE)";
      continue;
    }
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    out[trim(line.substr(0, eq))] = value;
  }
  return out;
}

std::vector<std::string> etcd_probe_args(const DesiredState& desired, const std::string& host_name) {
  // etcdtls before etcd: the probe's etcdctl then presents the member's certificate (https only).
  auto args = [](const DesiredEtcd& e) -> std::vector<std::string> {
    return {"etcddir", e.data_dir, "etcdtls", e.member_tls().dir, "etcd", e.local_client_url()};
  };
  for (const auto& e : desired.etcds)
    if (e.member(host_name)) return args(e);
  // Other hosts may hold a member being removed: their health decides whether removing it keeps a
  // quorum. The probe asks etcd only where etcd.service runs, so this costs one is-active elsewhere.
  if (!desired.etcds.empty()) return args(desired.etcds.front());
  return {};
}

Result<bool> parse_etcd_probe_line(const std::vector<std::string>& f, ObservedHost& host) {
  if (f.empty() || (f[0] != "etcddir" && f[0] != "etcd")) return false;
  auto& etcd = host.etcd ? *host.etcd : host.etcd.emplace();
  if (f[0] == "etcddir") {
    if (f.size() != 3) return fail("host " + host.name + ": probe: malformed etcddir line");
    etcd.data_dir = f[1];
    etcd.has_data = f[2] == "1";
    return true;
  }
  if (f.size() == 3 && f[2] == "0") return true;  // not running: nothing asked
  if (f.size() != 5 || f[2] != "1") return fail("host " + host.name + ": probe: malformed etcd line");
  etcd.running = true;
  auto health = json::parse(f[3] == "-" ? std::string() : probe_base64_decode(f[3]), nullptr, false);
  if (health.is_array() && !health.empty() && health[0].is_object()) {
    etcd.healthy = health[0].value("health", false);
    if (!etcd.healthy) etcd.health_error = string_or(health[0], "error", "unhealthy");
  } else {
    etcd.health_error = "no answer to `etcdctl endpoint health`";
  }
  auto list = json::parse(f[4] == "-" ? std::string() : probe_base64_decode(f[4]), nullptr, false);
  if (list.is_object() && list.contains("members") && list["members"].is_array()) {
    etcd.listed = true;
    if (list.contains("header") && list["header"].is_object() && list["header"].contains("member_id"))
      etcd.member_id = hex_id(list["header"]["member_id"]);
    for (const auto& m : list["members"]) {
      if (!m.is_object()) continue;
      ObservedEtcdMember om;
      if (m.contains("ID")) om.id = hex_id(m["ID"]);
      om.name = string_or(m, "name", "");
      if (m.contains("peerURLs")) om.peer_urls = string_list(m["peerURLs"]);
      if (m.contains("clientURLs")) om.client_urls = string_list(m["clientURLs"]);
      etcd.members.push_back(std::move(om));
    }
  }
  return true;
}

namespace {

// The text a host's file should hold, read from the controller ("" when not given).
std::string controller_text(const std::string& path) { return path.empty() ? std::string() : read_given_chain(path); }

// An external etcd's files on each Patroni host using it: copied when absent or different.
void plan_external_etcd_files(const DesiredState& desired, const ExternalEtcdTls& etcd, const ObservedState& observed,
                              EtcdPlan& out) {
  auto files = etcd_patroni_tls_files(etcd.name);
  const std::string ca = controller_text(etcd.ca_file);
  const std::string certificate = controller_text(etcd.certificate_file);
  const std::string key = controller_text(etcd.key_file);
  std::string shown = certificate_summary(certificate);
  if (shown.empty()) shown = "CA " + etcd.ca_file;
  for (const auto& host : patroni_hosts_of(desired, etcd.name)) {
    auto h = observed.hosts.find(host);
    if (h == observed.hosts.end() || !h->second.reachable) continue;  // its cluster reports it
    auto same = [&](const std::string& path, const std::string& want) {
      auto f = h->second.files.find(path);
      return want.empty() || (f != h->second.files.end() && f->second && *f->second == want);
    };
    if (same(files.ca, ca) && same(files.certificate, certificate) && same(files.private_key, key)) continue;
    auto f = h->second.files.find(files.ca);
    bool absent = f == h->second.files.end() || !f->second;
    out.changes.push_back(Change{
        .subject = "etcd " + etcd.name + ": Patroni's client (" + host + "): " + files.ca,
        .action = absent ? Action::create : Action::update,
        .before = absent ? "(none)" : "other files",
        .after = shown,
        .reason = absent ? "absent" : "differ from " + etcd.ca_file +
                                          (etcd.certificate_file.empty() ? "" : ", " + etcd.certificate_file),
        .step = steps::EtcdWriteCertificate{.etcd = etcd.name, .files = files, .given = etcd},
        .host = host});
  }
}

}  // namespace

EtcdPlan plan_etcd(const manifests::ManifestSet& manifests, const DesiredState& desired, const ObservedState& observed) {
  EtcdPlan out;
  for (const auto& etcd : desired.etcds) EtcdPlanner(manifests, desired, etcd, observed, out).plan();
  for (const auto& etcd : desired.external_etcds) plan_external_etcd_files(desired, etcd, observed, out);
  return out;
}

bool is_etcd_step(const Step& step) {
  return std::visit([](const auto& s) { return requires { s.etcd; }; }, step);
}

}  // namespace pgc::reconciler

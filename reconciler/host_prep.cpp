#include "reconciler/host_prep.hpp"

#include <algorithm>
#include <cstdio>
#include <set>

#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

bool has_word(const std::string& words, std::initializer_list<std::string_view> any) {
  for (const auto& w : split(words, ' '))
    for (auto a : any)
      if (w == a) return true;
  return false;
}

std::string os_name(const OsRelease& os) {
  std::string name = os.pretty_name.empty() ? os.id + " " + os.version_id : os.pretty_name;
  return trim(name) + " (ID=" + (os.id.empty() ? "?" : os.id) + ")";
}


// "postgresql-16" → "16"; "" for other packages.
std::string postgres_major_of(const std::string& package) {
  for (std::string_view prefix : {"postgresql-client-", "postgresql-"}) {
    if (package.starts_with(prefix)) {
      std::string rest = package.substr(prefix.size());
      if (!rest.empty() && std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return rest;
    }
  }
  return "";
}

std::string unavailable_message(const std::string& host, const ObservedHost& h, const std::vector<std::string>& packages,
                                bool pgdg_declared) {
  std::vector<std::string> described;
  std::string major;
  for (const auto& p : packages) {
    described.push_back(p + (h.candidates.contains(p) ? " (apt-cache policy: no installation candidate)"
                                                      : " (apt does not know it)"));
    if (major.empty()) major = postgres_major_of(p);
  }
  std::string msg = "host " + host + ": " + (packages.size() == 1 ? "package " : "packages ") + join(described, ", ") +
                    (packages.size() == 1 ? " is" : " are") + " not available from its package sources";
  if (!major.empty() && !pgdg_declared)
    return msg + ". PostgreSQL " + major + " is not in " + os_name(h.os) +
           "'s own repositories: add `packageRepositories: [pgdg]` to the spec of Host " + host +
           " and pgconverge configures the PostgreSQL project's apt repository (apt.postgresql.org), "
           "or add a repository that has it and run apt-get update there";
  return msg + ". Fix the host's apt sources (/etc/apt/sources.list*) and run apt-get update there";
}

std::string gib(long long bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
  return buf;
}

// SGInstanceProfile and pods.persistentVolume.size against each member host (docs/manifests.md):
// less memory than the profile refuses the host (PostgreSQL's memory is sized from the profile),
// fewer CPUs is a warning, and a data directory whose filesystem cannot hold the declared volume
// refuses a new member (an existing one is warned about).
void check_resources(const DesiredState& desired, const ObservedState& observed, HostPreparation& out) {
  for (const auto& cluster : desired.clusters)
    for (const auto& m : cluster.members) {
      auto it = observed.hosts.find(m.host);
      if (it == observed.hosts.end() || !it->second.reachable) continue;
      const ObservedHost& h = it->second;
      std::string who = "host " + m.host + " (member " + m.name + ")";
      if (cluster.memory_bytes && h.memory_bytes > 0 && h.memory_bytes < *cluster.memory_bytes)
        out.blockers[m.host].push_back(who + ": has " + gib(h.memory_bytes) + " of memory, SGInstanceProfile " +
                                       cluster.profile_name + " declares " + gib(*cluster.memory_bytes) +
                                       " (PostgreSQL's shared_buffers and effective_cache_size are sized from it): "
                                       "give the host more memory or declare a smaller profile");
      if (cluster.cpus && h.cpus > 0 && static_cast<double>(h.cpus) < *cluster.cpus) {
        char cpus[32];
        std::snprintf(cpus, sizeof cpus, "%g", *cluster.cpus);
        out.warnings[cluster.name].push_back(who + ": has " + std::to_string(h.cpus) + " CPU(s), SGInstanceProfile " +
                                             cluster.profile_name + " declares " + cpus);
      }
      if (!cluster.volume_bytes || !m.patroni_config.contains("postgresql")) continue;
      const std::string& data_dir = m.data_dir;
      auto fs = h.filesystems.find(data_dir);
      if (fs == h.filesystems.end()) continue;
      auto [available, total] = fs->second;
      auto has_data = h.data_dirs.find(data_dir);
      bool existing = has_data != h.data_dirs.end() && has_data->second;
      std::string what = "the filesystem holding " + data_dir + " has " + gib(available) + " free of " + gib(total) +
                         ", pods.persistentVolume.size declares " + gib(*cluster.volume_bytes);
      if (!existing && available < *cluster.volume_bytes)
        out.blockers[m.host].push_back(who + ": " + what + ": free space there or declare a smaller size");
      else if (existing && total < *cluster.volume_bytes)
        out.warnings[cluster.name].push_back(who + ": " + what);
    }
}

// What a member host needs: the packages its clusters (and the etcd pgconverge runs there) need,
// its members' ports and data directories.
struct HostNeeds {
  std::set<std::string> packages;
  std::set<int> ports;
  std::set<std::string> data_dirs;
};

// Decides what each member host needs, from its members' clusters and extra_packages.
std::map<std::string, HostNeeds> host_needs(const DesiredState& desired,
                                            const std::map<std::string, std::set<std::string>>& extra_packages) {
  std::map<std::string, HostNeeds> needs;
  for (const auto& cluster : desired.clusters)
    for (const auto& m : cluster.members) {
      auto& n = needs[m.host];
      n.packages.insert(cluster.packages.begin(), cluster.packages.end());
      if (!m.data_dir.empty()) n.data_dirs.insert(m.data_dir);
      if (m.patroni_config.contains("postgresql")) {
        const auto& pg = m.patroni_config["postgresql"];
        auto listen = pg.value("listen", "");
        if (auto colon = listen.rfind(':'); colon != std::string::npos)
          n.ports.insert(std::atoi(listen.c_str() + colon + 1));
      }
    }
  for (const auto& [host, pkgs] : extra_packages) needs[host].packages.insert(pkgs.begin(), pkgs.end());
  return needs;
}

// Decides whether pgconverge can install on the host (an os-release naming Debian or Ubuntu, and
// apt): why not, or "" when it can.
std::string os_blocker(const std::string& name, const ObservedHost& h) {
  if (h.os.id.empty())
    return "host " + name + ": has no /etc/os-release, so its OS is unknown: pgconverge installs and "
           "runs PostgreSQL on Debian and Ubuntu (apt)";
  if (is_rhel_family(h.os))
    return "host " + name + ": unsupported OS " + os_name(h.os) +
           ": RHEL-family hosts (dnf, the PGDG RPM repository, patroni from EPEL) are planned but not "
           "supported yet; pgconverge supports Debian and Ubuntu (apt)";
  if (!is_debian_family(h.os))
    return "host " + name + ": unsupported OS " + os_name(h.os) + ": pgconverge supports Debian and Ubuntu (apt)";
  if (!h.has_apt)
    return "host " + name + ": " + os_name(h.os) + " without apt-get or dpkg-query: cannot install packages";
  return "";
}

// Decides whether the pgdg repository is to be configured (its Host declares it, the host lacks
// it); true when it is, so that the packages after it are resolved only once apt has its lists.
bool plan_repository(const std::string& name, const ObservedHost& h, bool pgdg_declared, HostPreparation& out) {
  if (!pgdg_declared) return false;
  auto r = h.repositories.find(manifests::k_repository_pgdg);
  if (r != h.repositories.end() && r->second) return false;
  out.changes.push_back(Change{.subject = "host " + name + ": package repository pgdg",
                               .action = Action::create,
                               .after = "apt.postgresql.org for " + (h.os.codename.empty() ? h.os.id : h.os.codename),
                               .reason = "Host " + name + " declares packageRepositories: [pgdg]",
                               .step = steps::ConfigureRepository{.repository = manifests::k_repository_pgdg},
                               .host = name});
  return true;
}

// Decides the one install of the packages the host lacks; false when a package no source has
// blocks the host (known now when apt has package lists and no repository is still to be added).
bool plan_packages(const std::string& name, const ObservedHost& h, const HostNeeds& need, bool pgdg_declared,
                   bool pgdg_pending, HostPreparation& out) {
  std::vector<std::string> missing;
  for (const auto& p : need.packages) {
    auto installed = h.packages.find(p);
    if (installed == h.packages.end() || !installed->second) missing.push_back(p);
  }
  if (missing.empty()) return true;
  // With package lists to consult and no repository still to add, a package no source has
  // stops the host now, before anything is installed; otherwise apply checks after apt-get update.
  bool update_first = !h.apt_lists || pgdg_pending;
  if (!update_first) {
    std::vector<std::string> unavailable;
    for (const auto& p : missing) {
      auto cand = h.candidates.find(p);
      if (cand == h.candidates.end() || cand->second.empty()) unavailable.push_back(p);
    }
    if (!unavailable.empty()) {
      out.blockers[name].push_back(unavailable_message(name, h, unavailable, pgdg_declared));
      return false;
    }
  }
  std::vector<std::string> shown;
  for (const auto& p : missing) {
    auto cand = h.candidates.find(p);
    shown.push_back(cand != h.candidates.end() && !cand->second.empty() ? p + " " + cand->second : p);
  }
  out.changes.push_back(Change{
      .subject = "host " + name + ": packages",
      .action = Action::create,
      .after = join(shown, ", "),
      .reason = update_first ? "not installed (apt-get update first: " +
                                   std::string(pgdg_pending ? "a repository is added" : "apt has no package lists") + ")"
                             : "not installed",
      // Checked by apt only once the repository is there: configure-repository updates the lists.
      .step = steps::InstallPackages{.packages = missing, .update = update_first, .after_repository = pgdg_pending},
      .host = name});
  return true;
}

// Decides which of Debian's own clusters to stop: the 15/main its package creates and starts, or
// any on a port a member needs. Stopped and set to start.conf "disabled"; their data is never touched.
void plan_debian_clusters(const std::string& name, const ObservedHost& h, const HostNeeds& need,
                          HostPreparation& out) {
  for (const auto& dc : h.debian_clusters) {
    if (need.data_dirs.contains(dc.data_dir)) continue;
    bool clashes = need.ports.contains(dc.port);
    if (dc.name != "main" && !clashes) continue;
    if (!dc.online && dc.start_conf == "disabled") continue;
    std::string id = dc.version + "/" + dc.name;
    out.changes.push_back(Change{
        .subject = "host " + name + ": Debian's cluster " + id,
        .action = Action::update,
        .before = std::string(dc.online ? "running" : "stopped") + ", start.conf " + dc.start_conf,
        .after = "stopped, start.conf disabled (data kept in " + (dc.data_dir.empty() ? "?" : dc.data_dir) + ")",
        .reason = clashes ? "it uses port " + std::to_string(dc.port) + ", which a member on this host needs"
                          : "the cluster Debian's postgresql package creates; Patroni runs PostgreSQL here",
        .step = steps::StopDebianCluster{.version = dc.version, .cluster = dc.name, .online = dc.online},
        .host = name});
  }
}

// Decides one reachable member host's preparation, in order: OS, repository, packages, Debian's
// clusters; a blocker stops the phases after it. declared: its Host, if any.
void plan_host(const std::string& name, const ObservedHost& h, const HostNeeds& need,
               const manifests::Host* declared, HostPreparation& out) {
  if (auto why = os_blocker(name, h); !why.empty()) {
    out.blockers[name].push_back(why);
    return;
  }
  bool pgdg_declared = declared && std::find(declared->package_repositories.begin(), declared->package_repositories.end(),
                                             manifests::k_repository_pgdg) != declared->package_repositories.end();
  bool pgdg_pending = plan_repository(name, h, pgdg_declared, out);
  if (!plan_packages(name, h, need, pgdg_declared, pgdg_pending, out)) return;
  plan_debian_clusters(name, h, need, out);
}

}  // namespace

PreparationScope preparation_scope(const DesiredState& desired, const std::set<std::string>& failed_hosts) {
  PreparationScope scope;
  for (const auto& etcd : desired.etcds)
    for (const auto& m : etcd.members)
      if (failed_hosts.contains(m.host)) scope.blocked_etcds.insert(etcd.name);
  for (const auto& cluster : desired.clusters) {
    bool blocked = scope.blocked_etcds.contains(cluster.dcs_name);
    for (const auto& m : cluster.members) blocked = blocked || failed_hosts.contains(m.host);
    if (blocked) {
      scope.blocked_clusters.insert(cluster.name);
    } else {
      for (const auto& m : cluster.members) scope.needed_hosts.insert(m.host);
    }
  }
  for (const auto& etcd : desired.etcds)
    if (!scope.blocked_etcds.contains(etcd.name))
      for (const auto& m : etcd.members) scope.needed_hosts.insert(m.host);
  return scope;
}

bool is_debian_family(const OsRelease& os) {
  return os.id == "debian" || os.id == "ubuntu" || has_word(os.id_like, {"debian", "ubuntu"});
}

bool is_rhel_family(const OsRelease& os) {
  static const std::set<std::string> ids{"rhel", "centos", "rocky", "almalinux", "fedora", "ol", "amzn"};
  return ids.contains(os.id) || has_word(os.id_like, {"rhel", "fedora", "centos"});
}

HostPreparation plan_host_preparation(const manifests::ManifestSet& manifests, const DesiredState& desired,
                                      const ObservedState& observed,
                                      const std::map<std::string, std::set<std::string>>& extra_packages) {
  HostPreparation out;
  std::map<std::string, const manifests::Host*> hosts;
  for (const auto& h : manifests.hosts) hosts[h.metadata.name] = &h;
  for (const auto& [name, need] : host_needs(desired, extra_packages)) {
    auto it = observed.hosts.find(name);
    if (it == observed.hosts.end() || !it->second.reachable) continue;  // reported elsewhere
    plan_host(name, it->second, need, hosts.contains(name) ? hosts.at(name) : nullptr, out);
  }
  check_resources(desired, observed, out);
  for (auto it = out.blockers.begin(); it != out.blockers.end();)
    it = it->second.empty() ? out.blockers.erase(it) : std::next(it);
  return out;
}

}  // namespace pgc::reconciler

#pragma once
// Host preparation: what a member host needs before any Patroni member runs on it, from what the
// probe saw — a supported OS, package repositories, packages, and Debian's own clusters out of
// the way. Plain data in, plain data out (no I/O).

#include <map>
#include <set>
#include <string>
#include <vector>

#include "manifests/model.hpp"
#include "reconciler/desired.hpp"
#include "reconciler/observed.hpp"
#include "reconciler/plan.hpp"

namespace pgc::reconciler {

struct HostPreparation {
  std::vector<Change> changes;  // in order: repositories, packages, Debian clusters; per host
  // Host → why nothing can be done on it (unsupported OS, a package no source has). Every
  // cluster with a member there is left alone this run.
  std::map<std::string, std::vector<std::string>> blockers;
  // Cluster → what its hosts lack but does not stop it (fewer CPUs than the profile declares).
  std::map<std::string, std::vector<std::string>> warnings;
};

// What hosts that cannot be prepared stop: every managed etcd with a member there, every cluster
// with a member there or on such an etcd; and the hosts still to prepare (members of the other
// clusters, members of the other etcds).
struct PreparationScope {
  std::set<std::string> blocked_etcds;
  std::set<std::string> blocked_clusters;
  std::set<std::string> needed_hosts;
};
PreparationScope preparation_scope(const DesiredState& desired, const std::set<std::string>& failed_hosts);

// Debian or a derivative (Ubuntu…): what pgconverge installs with apt-get.
bool is_debian_family(const OsRelease& os);
// RHEL, Fedora and derivatives: dnf, planned but not supported yet.
bool is_rhel_family(const OsRelease& os);

// extra_packages: what hosts need beyond their members' clusters (the etcd pgconverge runs).
HostPreparation plan_host_preparation(const manifests::ManifestSet& manifests, const DesiredState& desired,
                                      const ObservedState& observed,
                                      const std::map<std::string, std::set<std::string>>& extra_packages = {});

}  // namespace pgc::reconciler

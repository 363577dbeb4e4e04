#pragma once
// Placement: which Host holds each member slot of an SGCluster, sticky across runs.

#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "manifests/model.hpp"
#include "reconciler/desired.hpp"
#include "util/source_location.hpp"

namespace pgc::reconciler {

// One member slot of a cluster. Slot i is member "<cluster>-<i>".
struct MemberSlot {
  int index = 0;
  std::string group;  // "" for the implicit main group, else the group's name
  manifests::Role role = manifests::Role::ha_read;
};

// The slots of a cluster in order: the main group (instances − Σ groups[].instances members,
// with spec.replication.role), then each group in array order with its own role. A group without
// a name is called "group-<index+1>". Requires a validated cluster (a negative main group counts
// as empty).
std::vector<MemberSlot> member_slots(const manifests::SGCluster& cluster);

// Natural order for host names: runs of digits compare as numbers ("pg-2" before "pg-10");
// names that compare equal that way fall back to plain string order.
bool natural_less(std::string_view a, std::string_view b);

// The Hosts a cluster may use, in natural name order: those whose labels contain every entry of
// spec.pods.scheduling.nodeSelector, or without a nodeSelector those labelled
// pgconverge.io/cluster: <cluster name>.
std::vector<const manifests::Host*> matching_hosts(const manifests::SGCluster& cluster,
                                                   const std::vector<manifests::Host>& hosts);

// How the cluster selects its hosts, for messages: `nodeSelector {pgconverge.io/lab: "true"}` or
// `label {pgconverge.io/cluster: "sync-cluster"}`.
std::string selector_description(const manifests::SGCluster& cluster);

// The hosts of one cluster's slots: element i holds slot i. Pointers into the ManifestSet.
using SlotHosts = std::vector<const manifests::Host*>;

// Places one cluster's `instances` slots on the matching hosts. Sticky: a slot whose host in
// `remembered` (slot → host name) still matches keeps it; the other slots take unused matching
// hosts in natural name order, preferring hosts that hold no remembered member of this cluster.
// A member therefore never moves because a host was added. Too few matching hosts is an error
// diagnostic located at spec.instances.
std::expected<SlotHosts, Diagnostic> place_cluster(const manifests::SGCluster& cluster,
                                                   const std::vector<manifests::Host>& hosts,
                                                   const std::map<int, std::string>& remembered);

// Placement of every cluster of a manifest set (cluster name → slot hosts). Clusters are placed
// in manifest order; a host holds at most one cluster (they would share ports 5432 and 8008), so
// a host already used by an earlier cluster is an error for the later one.
struct Placements {
  std::map<std::string, SlotHosts> by_cluster;
  Diagnostics diagnostics;
};
Placements place_all(const manifests::ManifestSet& manifests, const PlacementHistory& history);

// Whether history places any cluster differently from a placement from scratch (or changes what
// placing reports). When it does not, a compile with history gives the state compiled without it.
bool history_moves_placement(const manifests::ManifestSet& manifests, const PlacementHistory& history);

}  // namespace pgc::reconciler

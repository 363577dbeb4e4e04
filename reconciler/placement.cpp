#include "reconciler/placement.hpp"

#include <algorithm>
#include <set>

#include "util/strings.hpp"

namespace pgc::reconciler {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Compares two runs of digits as numbers, however long: fewer significant digits is smaller.
int compare_numbers(std::string_view a, std::string_view b) {
  auto significant = [](std::string_view s) {
    auto first = s.find_first_not_of('0');
    return first == std::string_view::npos ? std::string_view() : s.substr(first);
  };
  a = significant(a);
  b = significant(b);
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// -1, 0 or 1 in natural order (digit runs as numbers).
int natural_compare(std::string_view a, std::string_view b) {
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() && j < b.size()) {
    if (is_digit(a[i]) && is_digit(b[j])) {
      std::size_t ei = i;
      std::size_t ej = j;
      while (ei < a.size() && is_digit(a[ei])) ++ei;
      while (ej < b.size() && is_digit(b[ej])) ++ej;
      if (int c = compare_numbers(a.substr(i, ei - i), b.substr(j, ej - j)); c != 0) return c;
      i = ei;
      j = ej;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j] ? -1 : 1;
    ++i;
    ++j;
  }
  if (i < a.size()) return 1;
  if (j < b.size()) return -1;
  return 0;
}

bool labels_match(const std::map<std::string, std::string>& labels,
                  const std::map<std::string, std::string>& selector) {
  return std::all_of(selector.begin(), selector.end(), [&](const auto& entry) {
    auto it = labels.find(entry.first);
    return it != labels.end() && it->second == entry.second;
  });
}

// The selector a cluster uses: its nodeSelector, else the pgconverge.io/cluster label.
std::map<std::string, std::string> effective_selector(const manifests::SGCluster& cluster) {
  if (!cluster.node_selector.empty()) return cluster.node_selector;
  return {{manifests::k_cluster_label, cluster.metadata.name}};
}

std::string plural(std::size_t n, const std::string& one, const std::string& many) {
  return n == 1 ? one : many;
}

std::vector<std::string> host_names(const std::vector<const manifests::Host*>& hosts) {
  std::vector<std::string> names;
  for (const auto* h : hosts) names.push_back(h->metadata.name);
  return names;
}

// `cluster "c" wants 4 hosts but only 3 match nodeSelector {…}: pg-1, pg-2, pg-3`
std::string too_few_hosts_message(const manifests::SGCluster& cluster,
                                  const std::vector<const manifests::Host*>& matching) {
  auto wanted = static_cast<std::size_t>(cluster.instances);
  std::string out = "cluster \"" + cluster.metadata.name + "\" wants " + std::to_string(wanted) + " " +
                    plural(wanted, "host", "hosts") + " but ";
  bool by_label = cluster.node_selector.empty();
  std::string selector = selector_description(cluster);
  if (by_label) selector = selector.substr(std::string_view("label ").size());
  if (matching.empty()) {
    out += by_label ? "no Host is labelled " + selector : "no Host matches " + selector;
    return out;
  }
  out += "only " + std::to_string(matching.size()) + " ";
  out += by_label ? plural(matching.size(), "is", "are") + " labelled " + selector
                  : plural(matching.size(), "matches", "match") + " " + selector;
  return out + ": " + join(host_names(matching), ", ");
}

}  // namespace

bool natural_less(std::string_view a, std::string_view b) {
  int c = natural_compare(a, b);
  if (c != 0) return c < 0;
  return a < b;
}

std::vector<MemberSlot> member_slots(const manifests::SGCluster& cluster) {
  const auto& replication = cluster.replication;
  long long in_groups = 0;  // not int: a sum of large groups must not overflow
  for (const auto& g : replication.groups) in_groups += std::max(g.instances, 0);
  int main_group = static_cast<int>(std::max(cluster.instances - in_groups, 0LL));

  std::vector<MemberSlot> slots;
  for (int i = 0; i < main_group; ++i)
    slots.push_back(MemberSlot{static_cast<int>(slots.size()), "", replication.role});
  for (std::size_t g = 0; g < replication.groups.size(); ++g) {
    const auto& group = replication.groups[g];
    std::string name = group.name.empty() ? "group-" + std::to_string(g + 1) : group.name;
    for (int i = 0; i < group.instances; ++i)
      slots.push_back(MemberSlot{static_cast<int>(slots.size()), name, group.role});
  }
  return slots;
}

std::vector<const manifests::Host*> matching_hosts(const manifests::SGCluster& cluster,
                                                   const std::vector<manifests::Host>& hosts) {
  auto selector = effective_selector(cluster);
  std::vector<const manifests::Host*> out;
  for (const auto& h : hosts)
    if (labels_match(h.metadata.labels, selector)) out.push_back(&h);
  std::stable_sort(out.begin(), out.end(), [](const manifests::Host* a, const manifests::Host* b) {
    return natural_less(a->metadata.name, b->metadata.name);
  });
  return out;
}

std::string selector_description(const manifests::SGCluster& cluster) {
  std::vector<std::string> entries;
  for (const auto& [key, value] : effective_selector(cluster)) entries.push_back(key + ": \"" + value + "\"");
  std::string text = "{" + join(entries, ", ") + "}";
  return (cluster.node_selector.empty() ? "label " : "nodeSelector ") + text;
}

std::expected<SlotHosts, Diagnostic> place_cluster(const manifests::SGCluster& cluster,
                                                   const std::vector<manifests::Host>& hosts,
                                                   const std::map<int, std::string>& remembered) {
  auto candidates = matching_hosts(cluster, hosts);
  int wanted = std::max(cluster.instances, 0);
  if (candidates.size() < static_cast<std::size_t>(wanted))
    return std::unexpected(Diagnostic{Severity::error, cluster.locations.at("spec.instances"), "spec.instances",
                                      too_few_hosts_message(cluster, candidates)});

  SlotHosts placed(static_cast<std::size_t>(wanted), nullptr);
  std::set<std::string> used;
  // Sticky: remembered hosts that still match keep their slot.
  for (int slot = 0; slot < wanted; ++slot) {
    auto r = remembered.find(slot);
    if (r == remembered.end() || used.contains(r->second)) continue;
    auto it = std::find_if(candidates.begin(), candidates.end(),
                           [&](const manifests::Host* h) { return h->metadata.name == r->second; });
    if (it == candidates.end()) continue;
    placed[static_cast<std::size_t>(slot)] = *it;
    used.insert(r->second);
  }
  // Hosts that still hold another (e.g. scaled-down) member of this cluster come last.
  std::set<std::string> holds_other;
  for (const auto& [slot, host] : remembered)
    if (!used.contains(host)) holds_other.insert(host);
  auto next_free = [&]() -> const manifests::Host* {
    for (int pass = 0; pass < 2; ++pass)
      for (const auto* h : candidates)
        if (!used.contains(h->metadata.name) && (pass == 1 || !holds_other.contains(h->metadata.name))) return h;
    return nullptr;
  };
  for (auto& host : placed) {
    if (host) continue;
    host = next_free();
    used.insert(host->metadata.name);  // never null: there are at least `wanted` candidates
  }
  return placed;
}

Placements place_all(const manifests::ManifestSet& manifests, const PlacementHistory& history) {
  static const std::map<int, std::string> k_nothing_remembered;
  Placements out;
  std::map<std::string, std::string> owner;  // host name → cluster using it
  for (const auto& cluster : manifests.clusters) {
    auto h = history.find(cluster.metadata.name);
    auto placed = place_cluster(cluster, manifests.hosts, h == history.end() ? k_nothing_remembered : h->second);
    if (!placed) {
      out.diagnostics.push_back(placed.error());
      continue;
    }
    bool collides = false;
    std::string field = cluster.node_selector.empty() ? "spec.instances" : "spec.pods.scheduling.nodeSelector";
    for (const auto* host : *placed) {
      auto it = owner.find(host->metadata.name);
      if (it == owner.end()) continue;
      collides = true;
      out.diagnostics.push_back(Diagnostic{
          Severity::error, cluster.locations.at(field), field,
          "host " + host->metadata.name + " is already used by cluster \"" + it->second +
              "\" (a host runs one cluster: both would need PostgreSQL port 5432 and Patroni port 8008)"});
    }
    if (collides) continue;
    for (const auto* host : *placed) owner.emplace(host->metadata.name, cluster.metadata.name);
    out.by_cluster[cluster.metadata.name] = std::move(*placed);
  }
  return out;
}

bool history_moves_placement(const manifests::ManifestSet& manifests, const PlacementHistory& history) {
  auto sticky = place_all(manifests, history);
  auto fresh = place_all(manifests, {});
  auto text = [](const Diagnostics& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds) out.push_back(d.str());
    return out;
  };
  return sticky.by_cluster != fresh.by_cluster || text(sticky.diagnostics) != text(fresh.diagnostics);
}

}  // namespace pgc::reconciler

// EtcdCluster helpers shared by validation and the compiler.
#include <algorithm>

#include "manifests/model.hpp"

namespace pgc::manifests {

std::vector<const Host*> etcd_selected_hosts(const EtcdCluster& etcd, const std::vector<Host>& hosts) {
  std::vector<const Host*> out;
  if (!etcd.hosts_declared) return out;
  if (!etcd.host_selector_form) {
    for (const auto& name : etcd.host_names) {
      auto it = std::find_if(hosts.begin(), hosts.end(), [&](const Host& h) { return h.metadata.name == name; });
      if (it != hosts.end() && std::find(out.begin(), out.end(), &*it) == out.end()) out.push_back(&*it);
    }
    return out;
  }
  for (const auto& h : hosts) {
    bool match = std::all_of(etcd.host_selector.begin(), etcd.host_selector.end(), [&](const auto& entry) {
      auto it = h.metadata.labels.find(entry.first);
      return it != h.metadata.labels.end() && it->second == entry.second;
    });
    if (match) out.push_back(&h);
  }
  return out;
}

std::string etcd_data_directory(const EtcdCluster& etcd) {
  if (!etcd.data_directory.empty()) return etcd.data_directory;
  return "/var/lib/etcd/" + etcd.metadata.name;
}

}  // namespace pgc::manifests

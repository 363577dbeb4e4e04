// EtcdCluster helpers shared by validation and the compiler.
#include <algorithm>
#include <regex>

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

std::string check_etcd_data_directory(const std::string& dir) {
  static const std::string root = "/var/lib/etcd/";
  static const std::regex plain(R"([A-Za-z0-9._@+-]+(/[A-Za-z0-9._@+-]+)*)");
  if (dir.compare(0, root.size(), root) != 0)
    return "must be a directory below " + root +
           " (pgconverge creates it as root and gives it to the etcd user: no other path may be named)";
  const std::string rest = dir.substr(root.size());
  bool dots = false;
  for (std::size_t start = 0; start <= rest.size();) {
    std::size_t end = std::min(rest.find('/', start), rest.size());
    std::string part = rest.substr(start, end - start);
    dots = dots || part == "." || part == "..";
    start = end + 1;
  }
  if (!std::regex_match(rest, plain) || dots)
    return "must be " + root + " followed by names of letters, digits and ._@+- separated by single slashes, "
           "without . or .. components and without a trailing slash";
  const std::string debian = k_debian_etcd_data_dir;
  if (dir == debian || dir.compare(0, debian.size() + 1, debian + "/") == 0)
    return std::string("must not be ") + k_debian_etcd_data_dir + " or below it: Debian's etcd-server package starts a "
           "single-member cluster \"default\" there on install";
  return "";
}

bool EtcdCluster::https_endpoints() const {
  return !endpoints.empty() && std::all_of(endpoints.begin(), endpoints.end(), [](const std::string& e) {
    return e.rfind("https://", 0) == 0;
  });
}

std::string etcd_endpoint_address(const std::string& endpoint) {
  for (const char* scheme : {"https://", "http://"})
    if (endpoint.rfind(scheme, 0) == 0) return endpoint.substr(std::char_traits<char>::length(scheme));
  return endpoint;
}

std::string etcd_data_directory(const EtcdCluster& etcd) {
  if (!etcd.data_directory.empty()) return etcd.data_directory;
  return "/var/lib/etcd/" + etcd.metadata.name;
}

}  // namespace pgc::manifests

#pragma once
// The etcd pgconverge runs (EtcdCluster with spec.hosts): its desired members and what the host
// probe saw of it. Plain data; the logic is in reconciler/etcd.hpp.

#include <optional>
#include <string>
#include <vector>

#include "util/source_location.hpp"

namespace pgc::reconciler {

// One member of a managed etcd: one Host.
struct DesiredEtcdMember {
  std::string name;        // etcd member name = Host metadata.name
  std::string host;        // Host metadata.name
  std::string address;     // Host spec.address (an IP)
  std::string peer_url;    // http://<address>:<peerPort>
  std::string client_url;  // http://<address>:<clientPort>
};

// One EtcdCluster with spec.hosts, compiled.
struct DesiredEtcd {
  std::string name;                        // metadata.name; also ETCD_INITIAL_CLUSTER_TOKEN
  std::vector<DesiredEtcdMember> members;  // declared order (list) or natural host name order (nodeSelector)
  int client_port = 2379;
  int peer_port = 2380;
  std::string data_dir;                    // /var/lib/etcd/<name> unless spec.dataDirectory
  std::string config_path = "/etc/default/etcd";  // Debian's etcd.service reads it (EnvironmentFile)
  std::string service = "etcd.service";
  std::vector<std::string> packages{"etcd-server", "etcd-client"};
  SourceLocation where;

  [[nodiscard]] const DesiredEtcdMember* member(const std::string& member_name) const {
    for (const auto& m : members)
      if (m.name == member_name) return &m;
    return nullptr;
  }
  // The local client URL the probe and apply use on a member host.
  [[nodiscard]] std::string local_client_url() const { return "http://127.0.0.1:" + std::to_string(client_port); }
};

// One member as `etcdctl member list` reports it. An added member that never started has no name.
struct ObservedEtcdMember {
  std::string id;  // hexadecimal, as `etcdctl member remove` takes it
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
};

// What the probe found of the managed etcd on one host (only hosts that are declared members).
struct ObservedEtcd {
  std::string data_dir;
  bool has_data = false;     // <data_dir>/member exists: this host has been an etcd member
  bool running = false;      // etcd.service active and etcdctl present: the probe asked it
  bool healthy = false;      // `etcdctl endpoint health` on the local client URL
  std::string health_error;  // why not healthy, when it ran
  bool listed = false;       // `etcdctl member list` answered
  std::string member_id;     // the answering member's id (hex)
  std::vector<ObservedEtcdMember> members;
};

}  // namespace pgc::reconciler

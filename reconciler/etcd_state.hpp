#pragma once
// The etcd pgconverge runs (EtcdCluster with spec.hosts): its desired members and what the host
// probe saw of it. Plain data; the logic is in reconciler/etcd.hpp.

#include <chrono>
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
  std::string peer_url;    // https://<address>:<peerPort> (http:// with spec.tls.enabled false)
  std::string client_url;  // https://<address>:<clientPort> (likewise)
};

// TLS files on a host: a CA, a certificate it signed and its key.
struct EtcdTlsFiles {
  std::string dir{};
  std::string ca{};
  std::string certificate{};
  std::string private_key{};
  std::string group{};  // the files' group: root:<group>, the key 0640, the others 0644
};

// A managed etcd's certificates: its CA lives in the state dir (cluster_ca.hpp's EtcdCaStore).
// A member's certificate serves its peer and client URLs and is the client certificate of the
// etcdctl pgconverge runs on that host; a Patroni host holds a client certificate of its own.
inline constexpr std::chrono::days k_etcd_certificate_validity{365};
inline constexpr std::chrono::days k_etcd_renew_before{30};

// A member's files (etcd reads them as the etcd user); the host probe names them too (observe.cpp).
inline EtcdTlsFiles etcd_member_tls_files() {
  return {"/etc/etcd/tls", "/etc/etcd/tls/ca.crt", "/etc/etcd/tls/member.crt", "/etc/etcd/tls/member.key", "etcd"};
}

// A Patroni host's client files for the etcd named etcd (Patroni runs as postgres).
inline EtcdTlsFiles etcd_patroni_tls_files(const std::string& etcd) {
  std::string dir = "/etc/patroni/etcd-tls/" + etcd;
  return {dir, dir + "/ca.crt", dir + "/client.crt", dir + "/client.key", "postgres"};
}

// etcdctl's TLS flags on a member host for client_url: for https, the member's own certificate
// (issued with clientAuth too) and the etcd's CA; none for http.
inline std::vector<std::string> etcdctl_tls_flags(const std::string& client_url) {
  if (client_url.rfind("https://", 0) != 0) return {};
  auto f = etcd_member_tls_files();
  return {"--cacert=" + f.ca, "--cert=" + f.certificate, "--key=" + f.private_key};
}

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
  bool tls = true;                 // spec.tls.enabled
  std::string ca_certificate_pem;  // the state dir's CA of this etcd; empty until apply creates it

  [[nodiscard]] EtcdTlsFiles member_tls() const { return etcd_member_tls_files(); }
  [[nodiscard]] EtcdTlsFiles patroni_tls() const { return etcd_patroni_tls_files(name); }
  [[nodiscard]] std::string scheme() const { return tls ? "https" : "http"; }

  [[nodiscard]] const DesiredEtcdMember* member(const std::string& member_name) const {
    for (const auto& m : members)
      if (m.name == member_name) return &m;
    return nullptr;
  }
  // The local client URL the probe and apply use on a member host.
  [[nodiscard]] std::string local_client_url() const {
    return scheme() + "://127.0.0.1:" + std::to_string(client_port);
  }
};

// An etcd given by spec.endpoints over https: its files on the controller (paths resolved as
// spec.postgres.ssl's, checked when compiled), copied to each Patroni host using it
// (etcd_patroni_tls_files) and used by pgconverge's own client. certificate_file and key_file
// are empty when no client certificate is given.
struct ExternalEtcdTls {
  std::string name{};
  std::vector<std::string> endpoints{};  // host:port
  std::string ca_file{};
  std::string certificate_file{};
  std::string key_file{};
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

#pragma once
// The outside world as the core sees it: factories for connections to hosts, Patroni and
// PostgreSQL. The product uses make_real_world(); unit tests pass fakes.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "manifests/model.hpp"
#include "providers/etcd/etcd_client.hpp"
#include "providers/patroni/patroni_client.hpp"
#include "providers/postgres/postgres_probe.hpp"
#include "providers/ssh/remote_host.hpp"
#include "util/expected.hpp"
#include "util/known_hosts.hpp"

namespace pgc::reconciler {

// Thread-safe: each call returns an independent connection.
class World {
 public:
  virtual ~World() = default;
  // Connects to a host over SSH (strict host key checking; accept-new only if SshSettings say so).
  virtual Result<std::unique_ptr<providers::RemoteHost>> connect(const manifests::Host& host) = 0;
  // A client for one member's Patroni REST API.
  virtual std::unique_ptr<providers::PatroniClient> patroni(const providers::PatroniEndpoint& endpoint) = 0;
  // Observes one member's PostgreSQL over libpq.
  virtual Result<providers::PgObservation> postgres(const providers::PgConnection& connection) = 0;
  // Whether the DCS (etcd v3 at endpoints, "host:port") holds any of keys; asked only before
  // secrets would be generated for a cluster (reconciler/secret_source.hpp); tls: https with a
  // client certificate (an etcd with client-cert-auth).
  virtual Result<bool> dcs_has_any(const std::vector<std::string>& endpoints, const std::vector<std::string>& keys,
                                   const std::optional<providers::EtcdTls>& tls) = 0;
  // Where an etcd client connects to host:port (providers::EtcdOptions::route): through the SSH
  // of the host at that address once this world has connected to it (an EtcdCluster that
  // pgconverge runs), else directly. Empty: always directly.
  virtual std::function<Result<std::string>(const std::string& host, int port)> etcd_route() { return {}; }
};

struct SshSettings {
  std::string identity_file;     // --ssh-identity; empty → agent
  std::string known_hosts_file;  // --known-hosts; empty → ~/.ssh/known_hosts
  NewHostKeys new_host_keys = NewHostKeys::refuse;  // --ssh-accept-new-host-keys: accept
  HostKeyRecorder on_host_key_recorded;             // logs each key accept-new recorded; thread-safe
  int connect_timeout_ms = 10000;
};

// The real world: libssh, Patroni REST over HTTP, libpq.
std::unique_ptr<World> make_real_world(const SshSettings& ssh);

}  // namespace pgc::reconciler

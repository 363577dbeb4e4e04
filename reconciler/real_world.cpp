#include "reconciler/world.hpp"

#include <functional>
#include <map>
#include <mutex>

#include "providers/etcd/etcd_client.hpp"
#include "providers/ssh/tunnels.hpp"

namespace pgc::reconciler {
namespace {

// A Patroni client for a member whose host's tunnel could not be opened: every call fails with
// that error (the SSH connection's, which names the host and the step).
class UnreachablePatroni final : public providers::PatroniClient {
 public:
  explicit UnreachablePatroni(Error error) : error_(std::move(error)) {}
  Result<nlohmann::json> cluster() override { return std::unexpected(error_); }
  Result<nlohmann::json> patroni() override { return std::unexpected(error_); }
  Result<nlohmann::json> config() override { return std::unexpected(error_); }
  Result<nlohmann::json> patch_config(const nlohmann::json&) override { return std::unexpected(error_); }
  Result<providers::HttpResponse> reload() override { return std::unexpected(error_); }
  Result<providers::HttpResponse> restart(bool) override { return std::unexpected(error_); }
  Result<providers::HttpResponse> switchover(const std::string&, const std::string&) override {
    return std::unexpected(error_);
  }
  Result<providers::HttpResponse> request(const std::string&, const std::string&,
                                          const std::optional<nlohmann::json>&) override {
    return std::unexpected(error_);
  }

 private:
  Error error_;
};

// One host's SSH connection (its commands and its tunnels share one session), opened at first
// use; a failure to open is kept for the run (no retry storm).
struct Forwarder {
  manifests::Host host;
  std::mutex mutex;
  std::shared_ptr<providers::SshConnection> connection;
  std::optional<Error> failed;
};

bool same_login(const manifests::Host& a, const manifests::Host& b) {
  return a.metadata.name == b.metadata.name && a.address == b.address && a.ssh_port == b.ssh_port &&
         a.ssh_user == b.ssh_user;
}

std::string directory_of(const std::string& path) { return path.substr(0, path.rfind('/')); }

class RealWorld final : public World {
 public:
  explicit RealWorld(SshSettings ssh) : ssh_(std::move(ssh)) {}

  // Every run's host probe connects to each host first (observe_hosts), so this is where the
  // world learns which host an address belongs to, and how to log in to it: from then on,
  // Patroni's REST API and PostgreSQL at that address go through the host's SSH. Commands and
  // tunnels are channels of one session per host: one handshake and authentication.
  Result<std::unique_ptr<providers::RemoteHost>> connect(const manifests::Host& host) override {
    auto forwarder = route_through(host);
    auto connection = open(*forwarder);
    PGC_TRY(connection);
    return (*connection)->remote_host();
  }

  std::unique_ptr<providers::PatroniClient> patroni(const providers::PatroniEndpoint& endpoint) override {
    auto forwarder = forwarder_at(endpoint.address);
    if (!forwarder) return providers::make_patroni_client(endpoint);
    auto tunnels = open(*forwarder);
    if (!tunnels) return std::make_unique<UnreachablePatroni>(tunnels.error());
    auto socket = (*tunnels)->local_socket(endpoint.address, endpoint.port);
    if (!socket) return std::make_unique<UnreachablePatroni>(socket.error());
    auto through = endpoint;
    through.unix_socket = *socket;
    through.tunnel_failure = [forwarder, tunnel = *tunnels, address = endpoint.address, port = endpoint.port] {
      return tunnel->last_failure(address, port);
    };
    return providers::make_patroni_client(through);
  }

  Result<providers::PgObservation> postgres(const providers::PgConnection& connection) override {
    auto forwarder = forwarder_at(connection.host);
    if (!forwarder) return providers::observe_postgres(connection);
    auto tunnels = open(*forwarder);
    PGC_TRY(tunnels);
    auto socket = (*tunnels)->local_socket(connection.host, connection.port);
    PGC_TRY(socket);
    auto through = connection;
    through.socket_dir = directory_of(*socket);
    auto observed = providers::observe_postgres(through);
    if (observed) return observed;
    std::string why = (*tunnels)->last_failure(connection.host, connection.port);
    return why.empty() ? observed : fail(observed.error().message + " (" + why + ")");
  }

  Result<bool> dcs_has_any(const std::vector<std::string>& endpoints, const std::vector<std::string>& keys,
                           const std::optional<providers::EtcdTls>& tls) override {
    auto client = providers::make_etcd_client(
        providers::EtcdOptions{endpoints, std::chrono::milliseconds(3000), etcd_route(), tls});
    PGC_TRY(client);
    for (const auto& key : keys) {
      auto kv = (*client)->get(key);
      PGC_TRY(kv);
      if (*kv) return true;
    }
    return false;
  }

  // Where the etcd client connects: an endpoint at a known host's address (an EtcdCluster that
  // pgconverge runs, spec.hosts) goes through that host's SSH, like Patroni and PostgreSQL; any
  // other (spec.endpoints, an external etcd) directly.
  std::function<Result<std::string>(const std::string&, int)> etcd_route() override {
    return [this](const std::string& address, int port) -> Result<std::string> {
      auto forwarder = forwarder_at(address);
      if (!forwarder) return std::string();
      auto connection = open(*forwarder);
      PGC_TRY(connection);
      return (*connection)->local_socket(address, port);
    };
  }

 private:
  providers::SshOptions ssh_options(const manifests::Host& host) const {
    providers::SshOptions options;
    options.host_name = host.metadata.name;
    options.address = host.address;
    options.port = host.ssh_port;
    options.user = host.ssh_user;
    options.identity_file = ssh_.identity_file;
    options.known_hosts_file = ssh_.known_hosts_file;
    options.new_host_keys = ssh_.new_host_keys;
    options.on_host_key_recorded = ssh_.on_host_key_recorded;
    options.connect_timeout = std::chrono::milliseconds(ssh_.connect_timeout_ms);
    return options;
  }

  // Records host as the one at its address. A host seen again with the same login keeps its
  // tunnel (a later pass or run reuses it) and may try again after a failed open; a changed one
  // gets a new forwarder (the old tunnel closes when its last user is done).
  std::shared_ptr<Forwarder> route_through(const manifests::Host& host) {
    std::lock_guard lock(mutex_);
    auto& slot = forwarders_[host.address];
    if (slot && same_login(slot->host, host)) {
      std::lock_guard forwarder_lock(slot->mutex);
      if (!slot->connection) slot->failed.reset();
      return slot;
    }
    slot = std::make_shared<Forwarder>();
    slot->host = host;
    return slot;
  }

  // The forwarder of the host at address, or null for an address no host of this run has.
  std::shared_ptr<Forwarder> forwarder_at(const std::string& address) {
    std::lock_guard lock(mutex_);
    auto it = forwarders_.find(address);
    return it == forwarders_.end() ? nullptr : it->second;
  }

  // The host's connection, opened at first use: callers for one host wait for one connection,
  // other hosts' open in parallel.
  Result<providers::SshConnection*> open(Forwarder& forwarder) {
    std::lock_guard lock(forwarder.mutex);
    if (forwarder.connection) return forwarder.connection.get();
    if (forwarder.failed) return std::unexpected(*forwarder.failed);
    auto opened = providers::open_ssh(ssh_options(forwarder.host));
    if (!opened) {
      forwarder.failed = opened.error();
      return std::unexpected(opened.error());
    }
    forwarder.connection = std::move(*opened);
    return forwarder.connection.get();
  }

  SshSettings ssh_;
  std::mutex mutex_;  // forwarders_
  std::map<std::string, std::shared_ptr<Forwarder>> forwarders_;  // by host address
};

}  // namespace

std::unique_ptr<World> make_real_world(const SshSettings& ssh) { return std::make_unique<RealWorld>(ssh); }

}  // namespace pgc::reconciler

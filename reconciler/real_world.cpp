#include "reconciler/world.hpp"

#include "providers/etcd/etcd_client.hpp"

namespace pgc::reconciler {
namespace {

class RealWorld final : public World {
 public:
  explicit RealWorld(SshSettings ssh) : ssh_(std::move(ssh)) {}

  Result<std::unique_ptr<providers::RemoteHost>> connect(const manifests::Host& host) override {
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
    return providers::connect_ssh(options);
  }

  std::unique_ptr<providers::PatroniClient> patroni(const providers::PatroniEndpoint& endpoint) override {
    return providers::make_patroni_client(endpoint);
  }

  Result<providers::PgObservation> postgres(const providers::PgConnection& connection) override {
    return providers::observe_postgres(connection);
  }

  Result<bool> dcs_has_any(const std::vector<std::string>& endpoints, const std::vector<std::string>& keys) override {
    auto client = providers::make_etcd_client(providers::EtcdOptions{endpoints, std::chrono::milliseconds(3000)});
    PGC_TRY(client);
    for (const auto& key : keys) {
      auto kv = (*client)->get(key);
      PGC_TRY(kv);
      if (*kv) return true;
    }
    return false;
  }

 private:
  SshSettings ssh_;
};

}  // namespace

std::unique_ptr<World> make_real_world(const SshSettings& ssh) { return std::make_unique<RealWorld>(ssh); }

}  // namespace pgc::reconciler

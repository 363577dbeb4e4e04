#pragma once
// A small etcd v3 client over the JSON gateway (etcd 3.4: POST /v3/...), Boost.Beast underneath
// (no Beast header here): leases (grant, keepalive, revoke) and the few key operations that
// ownership needs (create-if-absent with a lease, compare-and-replace, get).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/expected.hpp"

namespace pgc::providers {

// TLS to etcd (https): the server's certificate must chain to ca_pem and name the endpoint's host;
// the client certificate is presented when etcd asks (client-cert-auth).
struct EtcdTls {
  std::string ca_pem;
  std::string certificate_pem;
  std::string key_pem;
};

struct EtcdOptions {
  std::vector<std::string> endpoints;        // "host:port", tried in order until one answers
  std::chrono::milliseconds timeout{2000};   // per call and endpoint: connect, write, read together
  // Where a connection to host:port goes: the path of a unix socket that reaches it (a tunnel
  // through the host's SSH, providers/ssh/tunnels.hpp), or "" to connect to host:port directly.
  // Asked at each call; empty function: every endpoint is direct. An error fails that endpoint.
  std::function<Result<std::string>(const std::string& host, int port)> route;
  std::optional<EtcdTls> tls{};  // set: every endpoint is https
};

struct EtcdKeyValue {
  std::string key;
  std::string value;
  std::int64_t lease = 0;            // 0: no lease
  std::int64_t mod_revision = 0;
};

struct EtcdCreate {
  bool created = false;
  std::optional<EtcdKeyValue> existing;  // when not created: the key as it is
};

// Thread-safe: every call is its own connection with its own io_context. Errors read
// "etcd 10.250.5.2:2379: POST /v3/lease/grant: connection refused" (the last endpoint tried;
// every endpoint's error when all fail).
class EtcdClient {
 public:
  virtual ~EtcdClient() = default;
  virtual Result<std::int64_t> grant(std::chrono::seconds ttl) = 0;
  // The lease's remaining TTL in seconds; 0 when etcd no longer knows the lease (expired, revoked).
  virtual Result<std::int64_t> keepalive(std::int64_t lease) = 0;
  virtual Result<bool> revoke(std::int64_t lease) = 0;  // false: the lease was already gone
  // Puts key=value with lease only if key does not exist (create_revision == 0), atomically.
  virtual Result<EtcdCreate> create(const std::string& key, const std::string& value, std::int64_t lease) = 0;
  // Puts key=value with lease only if key's mod_revision is still mod_revision; true when put.
  virtual Result<bool> replace(const std::string& key, const std::string& value, std::int64_t lease,
                               std::int64_t mod_revision) = 0;
  virtual Result<std::optional<EtcdKeyValue>> get(const std::string& key) = 0;
};

// Fails when an endpoint is not host:port.
Result<std::unique_ptr<EtcdClient>> make_etcd_client(const EtcdOptions& options);

}  // namespace pgc::providers

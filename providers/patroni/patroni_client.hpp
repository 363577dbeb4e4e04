#pragma once
// The Patroni REST API (3.0.2 shapes) over HTTP with Boost.Beast (no Beast header here).

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "util/expected.hpp"

namespace pgc::providers {

struct HttpResponse {
  int status = 0;
  std::string body;
  // The body parsed as JSON, or null when it is not JSON.
  [[nodiscard]] nlohmann::json json() const;
};

struct PatroniEndpoint {
  std::string address;
  int port = 8008;
  std::string username;  // Basic auth for unsafe methods; empty → none
  std::string password;  // never logged
  std::chrono::milliseconds timeout{5000};
  // When set, the connection goes to this unix socket (a tunnel to address:port through the
  // host's SSH, providers/ssh/tunnels.hpp); messages still name address:port.
  std::string unix_socket;
  // Asked when a request got no response: why the tunnel dropped the connection, or "".
  std::function<std::string()> tunnel_failure;
};

// A client for one member's REST API. Not thread-safe; cheap to create.
// Each request is one connection bounded as a whole by the endpoint's timeout (connect, write
// and read together; a host name is resolved first, and getaddrinfo itself cannot be cut short:
// use addresses). Errors read "patroni 10.250.0.12:8008: GET /cluster: connection refused"
// (or "timed out after 5s", "HTTP 401: <start of the body>", "not an HTTP response (bad
// version)", "response larger than 8388608 bytes"); the password never appears.
class PatroniClient {
 public:
  virtual ~PatroniClient() = default;
  // GET /cluster, GET /patroni, GET /config: the JSON body (error unless 200 with a JSON object).
  virtual Result<nlohmann::json> cluster() = 0;
  virtual Result<nlohmann::json> patroni() = 0;
  virtual Result<nlohmann::json> config() = 0;
  // PATCH /config with a JSON merge patch; the answer as above. A 200 does not mean applied
  // (Patroni drops invalid changes after answering): callers verify by observing.
  virtual Result<nlohmann::json> patch_config(const nlohmann::json& patch) = 0;
  // These three return the response whatever its status (202 scheduled, 412, 503 ...): the
  // caller decides; only transport failures are errors.
  virtual Result<HttpResponse> reload() = 0;                       // POST /reload
  virtual Result<HttpResponse> restart(bool only_pending) = 0;     // POST /restart
  virtual Result<HttpResponse> switchover(const std::string& leader,
                                          const std::string& candidate) = 0;  // POST /switchover
  // Any request; for health endpoints like GET /replica whose status code is the answer.
  virtual Result<HttpResponse> request(const std::string& method, const std::string& target,
                                       const std::optional<nlohmann::json>& body = std::nullopt) = 0;
};

std::unique_ptr<PatroniClient> make_patroni_client(const PatroniEndpoint& endpoint);

}  // namespace pgc::providers

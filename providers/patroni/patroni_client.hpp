#pragma once
// The Patroni REST API (3.0.2 shapes) over HTTP or verified HTTPS with Boost.Beast (no Beast or
// OpenSSL header here).

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

// The REST API's TLS (restapi.certfile/keyfile/cafile): what the member's certificate must chain
// to and name. While a member's new config is not reloaded yet (TLS being turned on, or off) it
// may still speak the other scheme: see PatroniClient.
struct PatroniTls {
  std::string ca_pem;       // the CA(s) the member's certificate must chain to
  std::string server_name;  // what the certificate must name (the member's address)
  bool prefer = true;       // https first (false: plain http first, e.g. TLS being turned off)
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
  std::optional<PatroniTls> tls;  // unset: plain http only
};

// A client for one member's REST API. Not thread-safe; cheap to create.
// Each request is one connection bounded as a whole by the endpoint's timeout (connect, write
// and read together; a host name is resolved first, and getaddrinfo itself cannot be cut short:
// use addresses). Errors read "patroni 10.250.0.12:8008: GET /cluster: connection refused"
// (or "timed out after 5s", "HTTP 401: <start of the body>", "not an HTTP response (bad
// version)", "response larger than 8388608 bytes"); the password never appears.
// With tls set, each request tries the preferred scheme first and, when the member answered in the
// other one, once more in it within the same timeout: https → http when the member answered in
// plain HTTP; http → https when it answered with TLS or closed or reset the connection before any
// response (what a TLS server does with a plain request). A TLS failure of verification or of the
// handshake is never retried in plain HTTP: "patroni 10.0.0.5:8008: GET /cluster: TLS: certificate
// verify failed: unable to get local issuer certificate", a permanent error (k_tls_verify,
// k_tls_handshake).
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

#pragma once
// One HTTP/1.1 request on a fresh connection, bounded by a deadline — the client side the
// Patroni and etcd providers share, in plain HTTP or in TLS (verified: the certificate must chain
// to the given CA and name the expected address or DNS name). Plain C++ interface: Boost.Beast,
// Asio and OpenSSL stay inside http_client.cpp, compiled once (their templates were most of each
// client's compile time).

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pgc::providers::http_client {

// TLS on a connection (TLS 1.2 or later). The server's certificate must chain to one of ca_pem's
// certificates (the system's trust store is not used) and name server_name; nothing is sent
// before both hold, and a failed verification is never retried in plain text here.
struct Tls {
  std::string ca_pem;       // trust anchors (one or more PEM certificates); never empty when set
  std::string server_name;  // checked against the certificate: an IP address (iPAddress SAN)
                            // or a DNS name (dNSName SAN / CN per RFC 6125); also sent as SNI
                            // when it is a DNS name
  std::string client_certificate_pem;  // optional: presented when the server asks
  std::string client_key_pem;          // optional, with the certificate
};

struct Request {
  std::string host;  // an IP address or a name (resolved within the deadline)
  unsigned short port = 0;
  std::string unix_socket;  // when set, the connection goes to this unix socket instead of
                            // host:port (a tunnel's, providers/ssh/tunnels.hpp); host and port
                            // still make the Host header
  std::string method;  // "GET", "PATCH", … (upper case)
  std::string target;  // "/cluster"
  std::vector<std::pair<std::string, std::string>> headers;  // Host, User-Agent and Content-Length are set here
  std::string body;
  std::optional<Tls> tls;  // set → TLS on the connection (also over unix_socket)
  // The answer's body, when it has no Content-Length, is one JSON object or array (Patroni's):
  // the read ends once that value is whole, without waiting for the connection's end. Patroni
  // ends a TLS connection with a close_notify that Nagle and the peer's delayed ACK hold ~40 ms
  // after the body: waiting for it made every request over TLS that much slower.
  bool json_body = false;
};

struct Limits {
  std::size_t header = 8 * 1024;
  std::size_t body = 1024 * 1024;
};

// Why a request got no response, classified for the callers' messages.
enum class Failure {
  none,
  unknown_method,
  resolve_timeout,  // the name did not resolve before the deadline
  resolve,          // the name does not resolve
  timeout,          // connect, write or read outlasted the deadline
  refused,
  host_unreachable,
  network_unreachable,
  reset,
  closed,        // closed before any response
  partial,       // closed in the middle of the response
  body_limit,    // the body is larger than Limits::body
  header_limit,  // the header is larger than Limits::header
  not_http,      // what answered does not speak HTTP
  tls_verify,    // the server's certificate failed verification (message: OpenSSL's reason,
                 // "certificate verify failed: unable to get local issuer certificate",
                 // "hostname mismatch: certificate is not for 10.0.0.5")
  tls_plain,     // TLS was asked and the server answered in plain HTTP
  tls_handshake, // any other handshake failure (an alert, no common protocol or cipher, the CA
                 // or client certificate PEM unreadable)
  tls_expected,  // plain HTTP asked, the server answered with a TLS record (best effort: a TLS
                 // server that just closes or resets the connection reads as closed or reset)
  other,
};

struct Response {
  Failure failure = Failure::none;
  std::string message;  // the library's words for the failure ("bad version", "Connection refused")
  int status = 0;
  std::string body;
};

// Connects, (with TLS: handshakes and verifies), writes the request, reads the response (the
// header first, then the body), shuts the connection down; every step ends by the deadline. A
// timeout, reset or close during the handshake keeps its transport class (timeout, reset, closed).
Response call(const Request& request, std::chrono::steady_clock::time_point deadline, const Limits& limits);

}  // namespace pgc::providers::http_client

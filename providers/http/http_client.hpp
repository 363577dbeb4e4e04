#pragma once
// One HTTP/1.1 request on a fresh connection, bounded by a deadline — the client side the
// Patroni and etcd providers share. Plain C++ interface: Boost.Beast and Asio stay inside
// http_client.cpp, compiled once (their templates were most of each client's compile time).

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace pgc::providers::http_client {

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
  other,
};

struct Response {
  Failure failure = Failure::none;
  std::string message;  // the library's words for the failure ("bad version", "Connection refused")
  int status = 0;
  std::string body;
};

// Connects, writes the request, reads the response (the header first, then the body), shuts the
// socket down; every step ends by the deadline.
Response call(const Request& request, std::chrono::steady_clock::time_point deadline, const Limits& limits);

}  // namespace pgc::providers::http_client

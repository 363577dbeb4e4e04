#pragma once
// An HTTP/1.1 server for `pgconverge serve` (/metrics, webhooks) over Boost.Beast (no Beast
// header here): one request per connection, every limit enforced before memory is spent, and
// no client (nor many, from many addresses) able to lock others out by holding connections.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "util/expected.hpp"

namespace pgc::providers::http {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query as sent, e.g. "/hooks/github?x=1"
  std::map<std::string, std::string> headers;  // lower-case names; repeated fields joined by ", "
  std::string body;
  std::string peer;  // "127.0.0.1:51234" or "[::1]:51234"
};

struct HttpResponse {
  int status = 200;  // outside 100..599 is sent as 500
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

struct HttpServerOptions {
  std::string listen = "127.0.0.1:9810";  // "<IPv4>:<port>" or "[<IPv6>]:<port>"; port 0 picks one
  std::size_t max_body = 1 << 20;         // larger bodies are answered 413 without being read
  std::chrono::milliseconds read_timeout{10000};  // the whole request (headers and body) must
                                                  // arrive within it, counted from the accept;
                                                  // also bounds the response write
  std::chrono::milliseconds head_timeout{5000};   // the request line and headers must arrive
                                                  // within it, counted from the accept (capped
                                                  // by read_timeout); bytes trickled do not extend it
  std::size_t max_connections = 64;               // open connections, in total
  std::size_t max_connections_per_address = 8;    // per client address (IPv6: per /64)
  // A connection beyond either cap takes the place of the oldest one within the cap's scope
  // that is not running the handler (see connection_table.hpp); when there is none, it is
  // closed as soon as accepted.
  std::size_t threads = 2;  // threads running connections and the handler
  // A connection that has sent nothing yet is handed to the server by the kernel only once its
  // first bytes arrive or after about this long (Linux TCP_DEFER_ACCEPT: the kernel keeps it in
  // its SYN queue, resending the SYN-ACK, and holds no descriptor for it); 0 hands every
  // connection over at once. A crowd of silent connections, even one reconnecting as fast as it
  // is evicted, then reaches the connection table about once a second per connection, while a
  // request that arrives with its connection is read at once and keeps its place (see
  // connection_table.hpp). An idle connection is therefore closed after up to defer_accept +
  // head_timeout.
  std::chrono::seconds defer_accept{1};
};

// What the server refused so far, for metrics; counters only grow.
struct HttpServerStats {
  std::uint64_t accepted = 0;   // connections given a place
  std::uint64_t refused = 0;    // closed at accept: every place was held by a running handler
  std::uint64_t evicted = 0;    // gave up their place to a newcomer
  std::uint64_t head_timeouts = 0;     // cut at head_timeout (no complete request line and headers)
  std::uint64_t request_timeouts = 0;  // cut at read_timeout (headers in time, the body not)
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// A running server. Headers are capped at 8 KiB (431), malformed requests get 400, every
// response carries "Connection: close" (HTTP/1.0 keep-alive and pipelined requests included:
// one request per connection, whatever follows it is discarded). The handler may be called concurrently from the
// server's threads; it should be quick, and exceptions it throws become a 500.
class HttpServer {
 public:
  // Binds and starts serving; errors read "http: listen 127.0.0.1:9810: address already in use".
  static Result<std::unique_ptr<HttpServer>> start(const HttpServerOptions& options, HttpHandler handler);

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();  // stop()

  // The address actually bound, e.g. "127.0.0.1:40123" when listen asked for port 0.
  [[nodiscard]] std::string bound_address() const;
  // Open connections right now (including ones being refused or closed); thread-safe.
  [[nodiscard]] std::size_t active_connections() const;
  // Thread-safe.
  [[nodiscard]] HttpServerStats stats() const;
  // Stops accepting, closes connections still reading a request, lets requests already being
  // handled finish and their responses go out, then joins the threads. Idempotent; must not
  // be called from the handler.
  void stop();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgc::providers::http

// The Beast client: one short-lived connection per request, driven by its own io_context so that
// the asynchronous operations carry beast::tcp_stream's expiry (the synchronous ones would
// ignore it); connect, write and read together never outlast the deadline.

#include "providers/http/http_client.hpp"

#include "util/net_address.hpp"

// GCC 12 reports a false "potential null pointer dereference" inside Asio 1.74's scheduler
// (inlined thread_info access); the pragma covers only the Boost headers' own lines.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#pragma GCC diagnostic pop

namespace pgc::providers::http_client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

Failure classify(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return Failure::timeout;
  if (ec == asio::error::connection_refused) return Failure::refused;
  if (ec == asio::error::host_unreachable) return Failure::host_unreachable;
  if (ec == asio::error::network_unreachable) return Failure::network_unreachable;
  if (ec == asio::error::connection_reset) return Failure::reset;
  if (ec == http::error::end_of_stream || ec == asio::error::eof) return Failure::closed;
  if (ec == http::error::partial_message) return Failure::partial;
  if (ec == http::error::body_limit) return Failure::body_limit;
  if (ec == http::error::header_limit) return Failure::header_limit;
  // The parser's other errors: whatever answered does not speak HTTP (an SSH or PostgreSQL
  // server on the port, garbage).
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) return Failure::not_http;
  return Failure::other;
}

Response failed(Failure failure, std::string message) {
  Response out;
  out.failure = failure;
  out.message = std::move(message);
  return out;
}

Response failed(const beast::error_code& ec) { return failed(classify(ec), ec.message()); }

// Runs the loop until the stream's expiry or the operation ends it.
void run(asio::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

// Writes the request and reads the response on a connected stream (TCP or unix), each step
// bounded by the deadline through the stream's expiry.
template <class Protocol>
Response exchange(asio::io_context& ioc, beast::basic_stream<Protocol>& stream, const Request& request,
                  http::verb verb, Clock::time_point deadline, const Limits& limits) {
  beast::error_code ec;
  auto done = [&](const beast::error_code& e, std::size_t) { ec = e; };
  http::request<http::string_body> req{verb, request.target, 11};
  req.set(http::field::host, host_port(request.host, request.port));
  req.set(http::field::user_agent, "pgconverge");
  for (const auto& [name, value] : request.headers) req.set(name, value);
  req.keep_alive(false);
  req.body() = request.body;
  req.prepare_payload();
  stream.expires_at(deadline);
  http::async_write(stream, req, done);
  run(ioc);
  if (ec) return failed(ec);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.header));
  parser.body_limit(limits.body);
  // The header first, then the body: in one eager read, Beast 1.74 goes on parsing after a
  // Content-Length over body_limit when body bytes came in the same packet, and reserves that
  // length (std::bad_alloc for "Content-Length: 1000000000000"). Read alone, the header stops
  // at the limit's error.
  stream.expires_at(deadline);
  http::async_read_header(stream, buffer, parser, done);
  run(ioc);
  if (ec) return failed(ec);
  if (!parser.is_done()) {
    stream.expires_at(deadline);
    http::async_read(stream, buffer, parser, done);
    run(ioc);
    if (ec) return failed(ec);
  }
  beast::error_code ignored;
  stream.socket().shutdown(Protocol::socket::shutdown_both, ignored);
  auto& res = parser.get();
  Response out;
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
  return out;
}

// The request over a unix socket (a tunnel's, Tunnels::local_socket): no name to resolve.
Response call_unix(const Request& request, http::verb verb, Clock::time_point deadline, const Limits& limits) {
  asio::io_context ioc;
  beast::basic_stream<local> stream(ioc);
  beast::error_code ec;
  stream.expires_at(deadline);
  stream.async_connect(local::endpoint(request.unix_socket), [&](const beast::error_code& e) { ec = e; });
  run(ioc);
  if (ec) return failed(ec);
  return exchange(ioc, stream, request, verb, deadline, limits);
}

}  // namespace

Response call(const Request& request, Clock::time_point deadline, const Limits& limits) {
  auto verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) return failed(Failure::unknown_method, "unknown HTTP method");
  if (!request.unix_socket.empty()) return call_unix(request, verb, deadline, limits);

  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  std::vector<tcp::endpoint> targets;
  auto address = asio::ip::make_address(request.host, ec);
  if (!ec) {
    targets.emplace_back(address, request.port);
  } else {
    // A name, not an address (getaddrinfo runs on Asio's resolver thread; an unfinished lookup
    // is abandoned at the deadline).
    tcp::resolver resolver(ioc);
    bool done = false;
    resolver.async_resolve(request.host, std::to_string(request.port),
                           [&](const beast::error_code& e, const tcp::resolver::results_type& results) {
                             ec = e;
                             for (const auto& r : results) targets.push_back(r.endpoint());
                             done = true;
                           });
    ioc.run_for(deadline - Clock::now());
    if (!done) {
      resolver.cancel();
      return failed(Failure::resolve_timeout, "timed out resolving " + request.host);
    }
    if (ec) return failed(Failure::resolve, ec.message());
  }
  stream.expires_at(deadline);
  stream.async_connect(targets, [&](const beast::error_code& e, const tcp::endpoint&) { ec = e; });
  run(ioc);
  if (ec) return failed(ec);
  return exchange(ioc, stream, request, verb, deadline, limits);
}

}  // namespace pgc::providers::http_client

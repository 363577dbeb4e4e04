#pragma once
// One HTTP/1.1 request and its response over a connected Beast stream, each step bounded by the
// stream's deadline — shared by the Beast clients (providers/patroni, providers/etcd). Header-only:
// it links nothing, and only those providers' .cpp files include it.

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace pgc::providers::http_client {

struct Exchanged {
  boost::beast::error_code error;  // the first step that failed (timeout: beast::error::timeout)
  int status = 0;
  std::string body;
};

// Writes req, reads the response (header at most header_limit bytes, body at most body_limit),
// then shuts the socket down. run() drives the stream's io_context until the step ends.
template <typename Run>
Exchanged exchange(boost::beast::tcp_stream& stream, boost::beast::http::request<boost::beast::http::string_body>& req,
                   std::chrono::steady_clock::time_point deadline, std::size_t header_limit, std::size_t body_limit,
                   Run&& run) {
  namespace beast = boost::beast;
  namespace http = boost::beast::http;
  Exchanged out;
  auto done = [&](const beast::error_code& e, std::size_t) { out.error = e; };
  req.prepare_payload();
  stream.expires_at(deadline);
  http::async_write(stream, req, done);
  run();
  if (out.error) return out;

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(header_limit));
  parser.body_limit(body_limit);
  // The header first, then the body: in one eager read, Beast 1.74 goes on parsing after a
  // Content-Length over body_limit when body bytes came in the same packet, and reserves that
  // length (std::bad_alloc for "Content-Length: 1000000000000"). Read alone, the header stops
  // at the limit's error.
  stream.expires_at(deadline);
  http::async_read_header(stream, buffer, parser, done);
  run();
  if (out.error) return out;
  if (!parser.is_done()) {
    stream.expires_at(deadline);
    http::async_read(stream, buffer, parser, done);
    run();
    if (out.error) return out;
  }
  beast::error_code ignored;
  stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
  return out;
}

}  // namespace pgc::providers::http_client

// The Beast client: one short-lived connection per request, driven by its own io_context so that
// the asynchronous operations carry beast::tcp_stream's expiry (the synchronous ones would
// ignore it); connect, (TLS handshake,) write and read together never outlast the deadline.
// TLS is Asio's over OpenSSL's libssl: a context per call holding only the given CA, peer
// verification with OpenSSL's own name check (X509_VERIFY_PARAM_set1_ip_asc, SSL_set1_host).

#include "providers/http/http_client.hpp"

#include <algorithm>

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
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#pragma GCC diagnostic pop

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace pgc::providers::http_client {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

// How long a TLS shutdown may wait for the server's close_notify once the response is read (most
// servers just close): the connection is closed anyway.
constexpr auto k_tls_shutdown_wait = std::chrono::milliseconds(100);

Failure classify(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return Failure::timeout;
  if (ec == asio::error::connection_refused) return Failure::refused;
  if (ec == asio::error::host_unreachable) return Failure::host_unreachable;
  if (ec == asio::error::network_unreachable) return Failure::network_unreachable;
  if (ec == asio::error::connection_reset) return Failure::reset;
  if (ec == http::error::end_of_stream || ec == asio::error::eof) return Failure::closed;
  // OpenSSL's own errors after the handshake: an alert (TLS 1.3 sends "certificate required"
  // after our side of the handshake completed), a record that does not decrypt.
  if (ec.category() == asio::error::get_ssl_category()) return Failure::tls_handshake;
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

bool ok(const Response& r) { return r.failure == Failure::none; }

// The first bytes of a TLS record (handshake or alert, SSL 3.0 to TLS 1.3 record versions): what
// a TLS server answers when it answers our plain request at all.
bool looks_like_tls(const beast::flat_buffer& buffer) {
  auto data = buffer.data();
  if (data.size() < 3) return false;
  const auto* bytes = static_cast<const unsigned char*>(data.data());
  return (bytes[0] == 0x15 || bytes[0] == 0x16) && bytes[1] == 0x03 && bytes[2] <= 0x04;
}

// Whether a body read piece by piece is one whole JSON object or array (maybe followed by white
// space): brackets counted outside strings, each byte looked at once. Used only to end a read
// early; the caller parses the body. Anything else (text, a bare value) is never "whole": the read
// then ends as it would have, at the connection's end or a limit.
class JsonEnd {
 public:
  // Looks at what was appended to body since the last call; true once the value is whole.
  bool whole(std::string_view body) {
    for (; seen_ < body.size() && !other_; ++seen_) step(body[seen_]);
    return !other_ && started_ && depth_ == 0 && !in_string_;
  }

 private:
  static bool space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
  void step(char c) {
    if (in_string_) {
      if (escaped_) escaped_ = false;
      else if (c == '\\') escaped_ = true;
      else if (c == '"') in_string_ = false;
      return;
    }
    if (!started_ || depth_ == 0) {
      if (space(c)) return;
      if (started_ || (c != '{' && c != '[')) {  // more after the value, or not an object/array
        other_ = true;
        return;
      }
      started_ = true;
    }
    if (c == '"') in_string_ = true;
    else if (c == '{' || c == '[') ++depth_;
    else if (c == '}' || c == ']') --depth_;
  }

  std::size_t seen_ = 0;
  int depth_ = 0;
  bool started_ = false, in_string_ = false, escaped_ = false, other_ = false;
};

// The end of a plain connection: both directions shut down (the socket closes with the stream).
template <class Protocol>
void finish(asio::io_context&, beast::basic_stream<Protocol>& stream, Clock::time_point) {
  beast::error_code ignored;
  stream.socket().shutdown(Protocol::socket::shutdown_both, ignored);
}

// The end of a TLS connection: our close_notify, and the server's awaited briefly (bounded by the
// deadline too), so a server that neither answers nor closes cannot hold the call; whatever
// comes of it, the socket closes with the stream.
template <class Next>
void finish(asio::io_context& ioc, beast::ssl_stream<Next>& stream, Clock::time_point deadline) {
  beast::get_lowest_layer(stream).expires_at(std::min(deadline, Clock::now() + k_tls_shutdown_wait));
  stream.async_shutdown([](const beast::error_code&) {});
  run(ioc);
}

// Writes the request and reads the response on a connected stream (TCP or unix, plain or TLS),
// each step bounded by the deadline through the lowest layer's expiry.
template <class Stream>
Response exchange(asio::io_context& ioc, Stream& stream, const Request& request, http::verb verb,
                  Clock::time_point deadline, const Limits& limits) {
  auto& lowest = beast::get_lowest_layer(stream);
  beast::error_code ec;
  auto done = [&](const beast::error_code& e, std::size_t) { ec = e; };
  http::request<http::string_body> req{verb, request.target, 11};
  req.set(http::field::host, host_port(request.host, request.port));
  req.set(http::field::user_agent, "pgconverge");
  for (const auto& [name, value] : request.headers) req.set(name, value);
  req.keep_alive(false);
  req.body() = request.body;
  req.prepare_payload();
  lowest.expires_at(deadline);
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
  lowest.expires_at(deadline);
  http::async_read_header(stream, buffer, parser, done);
  run(ioc);
  if (ec && !request.tls && looks_like_tls(buffer))
    return failed(Failure::tls_expected, "the server answered with TLS (" + ec.message() + ")");
  if (ec == ssl::error::stream_truncated) {
    bool nothing = buffer.size() == 0 && !parser.got_some();
    return failed(nothing ? Failure::closed : Failure::partial, "connection closed without TLS close_notify");
  }
  if (ec) return failed(ec);
  bool ended_early = false;
  if (!parser.is_done() && request.json_body && parser.need_eof()) {
    // Read piece by piece and stop once the body is one whole JSON value (Request::json_body).
    lowest.expires_at(deadline);
    JsonEnd json_end;
    while (!parser.is_done()) {
      http::async_read_some(stream, buffer, parser, done);
      run(ioc);
      if (ec) break;
      if (json_end.whole(parser.get().body())) {
        parser.put_eof(ec);
        ended_early = !ec;
        break;
      }
    }
    if (ec == ssl::error::stream_truncated || ec == http::error::end_of_stream || ec == asio::error::eof) {
      if (parser.need_eof()) parser.put_eof(ec);
    }
    if (ec == ssl::error::stream_truncated) return failed(Failure::partial, "connection closed without TLS close_notify");
    if (ec) return failed(ec);
  }
  if (!parser.is_done()) {
    lowest.expires_at(deadline);
    http::async_read(stream, buffer, parser, done);
    run(ioc);
    // A body that ends with the connection (HTTP/1.0, Patroni's) over TLS: Python's ssl servers
    // close without close_notify, which Asio reports as a truncated stream; the end is the end.
    if (ec == ssl::error::stream_truncated && parser.need_eof()) parser.put_eof(ec);
    if (ec == ssl::error::stream_truncated) return failed(Failure::partial, "connection closed without TLS close_notify");
    if (ec) return failed(ec);
  }
  // Ended before the server's close: closing is enough (no close_notify exchange to wait for).
  if (!ended_early) finish(ioc, stream, deadline);
  auto& res = parser.get();
  Response out;
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
  return out;
}

// A unix socket (a tunnel's, Tunnels::local_socket): no name to resolve.
Response connect(asio::io_context& ioc, beast::basic_stream<local>& stream, const Request& request,
                 Clock::time_point deadline) {
  beast::error_code ec;
  stream.expires_at(deadline);
  stream.async_connect(local::endpoint(request.unix_socket), [&](const beast::error_code& e) { ec = e; });
  run(ioc);
  return ec ? failed(ec) : Response{};
}

// host:port, an address or a name (getaddrinfo runs on Asio's resolver thread; an unfinished
// lookup is abandoned at the deadline).
Response connect(asio::io_context& ioc, beast::tcp_stream& stream, const Request& request, Clock::time_point deadline) {
  beast::error_code ec;
  std::vector<tcp::endpoint> targets;
  auto address = asio::ip::make_address(request.host, ec);
  if (!ec) {
    targets.emplace_back(address, request.port);
  } else {
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
  return ec ? failed(ec) : Response{};
}

// The client context of one TLS call: only the given CA as trust anchors (not the system's), TLS
// 1.2 or later, the peer's certificate verified, the client certificate when given. The errors
// come from OpenSSL's PEM reader and never echo the PEM text.
Response configure(ssl::context& context, const Tls& tls) {
  if (tls.ca_pem.empty()) return failed(Failure::tls_handshake, "no CA certificate to verify the server with");
  if (::SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION) != 1)
    return failed(Failure::tls_handshake, "cannot require TLS 1.2");
  beast::error_code ec;
  context.set_verify_mode(ssl::verify_peer, ec);
  if (!ec) context.add_certificate_authority(asio::buffer(tls.ca_pem), ec);
  if (ec) return failed(Failure::tls_handshake, "cannot read the CA certificates: " + ec.message());
  if (tls.client_certificate_pem.empty()) return {};
  context.use_certificate_chain(asio::buffer(tls.client_certificate_pem), ec);
  if (ec) return failed(Failure::tls_handshake, "cannot read the client certificate: " + ec.message());
  context.use_private_key(asio::buffer(tls.client_key_pem), ssl::context::pem, ec);
  if (ec) return failed(Failure::tls_handshake, "cannot read the client key: " + ec.message());
  return {};
}

// What the server's certificate must name, checked by OpenSSL during the handshake: an IP address
// against its iPAddress entries, a DNS name against its dNSName entries (its CN only when it has
// none, RFC 6125), no partial wildcards; a DNS name is also sent as SNI.
template <class Next>
Response expect_name(beast::ssl_stream<Next>& stream, const std::string& name) {
  if (name.empty()) return failed(Failure::tls_handshake, "no server name to verify the certificate against");
  SSL* ssl = stream.native_handle();
  beast::error_code not_address;
  asio::ip::make_address(name, not_address);
  if (!not_address) {
    if (::X509_VERIFY_PARAM_set1_ip_asc(::SSL_get0_param(ssl), name.c_str()) != 1)
      return failed(Failure::tls_handshake, "cannot expect the address " + name);
    return {};
  }
  ::SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (::SSL_set1_host(ssl, name.c_str()) != 1 ||
      ::SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(name.c_str())) != 1)
    return failed(Failure::tls_handshake, "cannot expect the name " + name);
  return {};
}

// OpenSSL's reason for a failed verification; a name mismatch says which name was expected.
std::string verify_reason(long result, const std::string& name) {
  std::string reason = ::X509_verify_cert_error_string(result);
  if (result == X509_V_ERR_HOSTNAME_MISMATCH || result == X509_V_ERR_IP_ADDRESS_MISMATCH)
    return reason + ": certificate is not for " + name;
  return "certificate verify failed: " + reason;
}

// A failed handshake classified: the certificate refused (tls_verify), a server that answered
// plain HTTP (OpenSSL reads its first bytes as a record of a wrong version: tls_plain), the
// connection closed, reset or out of time (their transport classes), any other (tls_handshake).
template <class Next>
Response handshake_failure(beast::ssl_stream<Next>& stream, const beast::error_code& ec, const Tls& tls) {
  long verify = ::SSL_get_verify_result(stream.native_handle());
  if (verify != X509_V_OK) return failed(Failure::tls_verify, verify_reason(verify, tls.server_name));
  if (ec == ssl::error::stream_truncated) return failed(Failure::closed, "connection closed during the TLS handshake");
  if (ec.category() != asio::error::get_ssl_category()) return failed(ec);
  auto code = static_cast<unsigned long>(ec.value());
  if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_WRONG_VERSION_NUMBER)
    return failed(Failure::tls_plain, "the server answered in plain text, not TLS (" + ec.message() + ")");
  return failed(Failure::tls_handshake, ec.message());
}

template <class Next>
Response handshake(asio::io_context& ioc, beast::ssl_stream<Next>& stream, const Tls& tls, Clock::time_point deadline) {
  beast::error_code ec;
  beast::get_lowest_layer(stream).expires_at(deadline);
  stream.async_handshake(ssl::stream_base::client, [&](const beast::error_code& e) { ec = e; });
  run(ioc);
  return ec ? handshake_failure(stream, ec, tls) : Response{};
}

// One request over a fresh connection of Protocol (TCP or unix), in TLS when the request asks.
template <class Protocol>
Response call_over(const Request& request, http::verb verb, Clock::time_point deadline, const Limits& limits) {
  asio::io_context ioc;
  if (!request.tls) {
    beast::basic_stream<Protocol> stream(ioc);
    if (auto r = connect(ioc, stream, request, deadline); !ok(r)) return r;
    return exchange(ioc, stream, request, verb, deadline, limits);
  }
  ssl::context context(ssl::context::tls_client);
  if (auto r = configure(context, *request.tls); !ok(r)) return r;
  beast::ssl_stream<beast::basic_stream<Protocol>> stream(ioc, context);
  if (auto r = expect_name(stream, request.tls->server_name); !ok(r)) return r;
  if (auto r = connect(ioc, stream.next_layer(), request, deadline); !ok(r)) return r;
  if (auto r = handshake(ioc, stream, *request.tls, deadline); !ok(r)) return r;
  return exchange(ioc, stream, request, verb, deadline, limits);
}

}  // namespace

Response call(const Request& request, Clock::time_point deadline, const Limits& limits) {
  auto verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) return failed(Failure::unknown_method, "unknown HTTP method");
  if (!request.unix_socket.empty()) return call_over<local>(request, verb, deadline, limits);
  return call_over<tcp>(request, verb, deadline, limits);
}

}  // namespace pgc::providers::http_client

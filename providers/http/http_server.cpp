// The server: one acceptor and one strand per connection on a shared io_context run by a few
// threads. Each connection reads one request under two absolute deadlines counted from the
// accept, one for the head (request line and headers) and one for the whole request (never
// pushed back, so a client trickling bytes cannot keep it open), answers, and closes. Which
// connections keep their place when the server is full is ConnectionTable's policy: a newcomer
// evicts the stalest connection that is not running the handler, one whose request head has not
// arrived before one whose head has. Silent connections reach that table only after the kernel
// has held them about a second (TCP_DEFER_ACCEPT); a request that comes with its connection, at
// once. When a request is refused before it was read in full, the server stops sending and
// discards what still arrives for a short while before closing, so that the client sees the
// answer rather than a reset.

#include "providers/http/http_server.hpp"

#include "providers/http/connection_table.hpp"
#include "util/strings.hpp"

// GCC 12 reports a false "potential null pointer dereference" inside Asio 1.74's scheduler
// (inlined thread_info access); the pragma covers only the Boost headers' own lines.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#pragma GCC diagnostic pop

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace pgc::providers::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

constexpr std::uint32_t k_header_limit = 8 * 1024;
// The longest a refused client is given to stop sending before the connection is cut.
constexpr std::chrono::milliseconds k_linger_limit{2000};

std::string lower_first(std::string text) {
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string str(beast::string_view text) { return std::string(text.data(), text.size()); }

std::string lower(beast::string_view text) {
  return pgc::lower(std::string_view(text.data(), text.size()));
}

std::string format_endpoint(const tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  auto host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

// "<IPv4>:<port>" or "[<IPv6>]:<port>"; names are not resolved.
std::optional<tcp::endpoint> parse_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) return std::nullopt;
  auto host = listen.substr(0, colon);
  auto port_text = listen.substr(colon + 1);
  if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return std::nullopt;
  auto port = std::stoul(port_text);
  if (port > 65535) return std::nullopt;
  bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec || address.is_v6() != bracketed) return std::nullopt;
  return tcp::endpoint(address, static_cast<unsigned short>(port));
}

// The per-address cap's key for a connected peer; empty when the peer is already gone.
std::string peer_key(const tcp::socket& socket) {
  beast::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) return {};
  auto address = remote.address();
  if (!address.is_v6()) return address.to_string();
  auto bytes = address.to_v6().to_bytes();
  return address_key(address.to_string(), true, bytes.data());
}

class Session;

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)), handler_(std::move(handler)),
        table_(options_.max_connections, options_.max_connections_per_address), acceptor_(asio::make_strand(ioc_)),
        retry_timer_(acceptor_.get_executor()) {}

  Result<void> listen() {
    auto what = "http: listen " + options_.listen + ": ";
    if (options_.max_connections == 0) return fail(what + "max_connections must be at least 1");
    if (options_.max_connections_per_address == 0) return fail(what + "max_connections_per_address must be at least 1");
    if (options_.threads == 0) return fail(what + "threads must be at least 1");
    if (options_.defer_accept.count() < 0) return fail(what + "defer_accept must not be negative");
    auto endpoint = parse_listen(options_.listen);
    if (!endpoint) return fail(what + "want <IPv4>:<port> or [<IPv6>]:<port>");
    beast::error_code ec;
    acceptor_.open(endpoint->protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(*endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(what + lower_first(ec.message()));
    if (auto deferred = defer_accept(); !deferred) return fail(what + deferred.error().message);
    bound_ = format_endpoint(acceptor_.local_endpoint());
    accept();
    for (std::size_t i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
    return {};
  }

  void stop();

  // TCP_DEFER_ACCEPT on the listening socket (see HttpServerOptions::defer_accept).
  Result<void> defer_accept() {
    if (options_.defer_accept.count() == 0) return {};
    int seconds = static_cast<int>(std::min<std::int64_t>(options_.defer_accept.count(), 3600));
    if (::setsockopt(acceptor_.native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds) != 0)
      return fail("TCP_DEFER_ACCEPT: " + lower_first(std::system_category().message(errno)));
    return {};
  }

  const HttpServerOptions& options() const { return options_; }
  const HttpHandler& handler() const { return handler_; }
  std::string bound_address() const { return bound_; }
  std::size_t active_connections() const { return active_.load(); }
  HttpServerStats stats() const {
    return {accepted_.load(), refused_.load(), evicted_.load(), head_timeouts_.load(), request_timeouts_.load()};
  }
  void count_timeout(bool in_head) { ++(in_head ? head_timeouts_ : request_timeouts_); }

  // Called by a session's destructor.
  void forget(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    sessions_.erase(id);
    table_.remove(id);
    --active_;
  }

 private:
  void accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  std::shared_ptr<Session> admit(tcp::socket& socket);

  HttpServerOptions options_;
  HttpHandler handler_;
  std::string bound_;
  std::atomic<std::size_t> active_{0};
  std::atomic<std::uint64_t> accepted_{0}, refused_{0}, evicted_{0}, head_timeouts_{0}, request_timeouts_{0};
  std::mutex mutex_;  // guards sessions_, table_, next_id_ and stopping_
  std::map<std::uint64_t, std::weak_ptr<Session>> sessions_;
  ConnectionTable table_;
  std::uint64_t next_id_ = 0;
  bool stopping_ = false;
  std::mutex stop_mutex_;  // one stop() at a time
  // Sessions may be destroyed with the io_context, so they go after the members above.
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  std::vector<std::thread> threads_;
};

namespace {

// One connection: read one request, answer, close. Every member function runs on the
// connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Impl& server, std::uint64_t id)
      : stream_(std::move(socket)), server_(server), id_(id), accepted_at_(std::chrono::steady_clock::now()) {
    beast::error_code ec;
    auto remote = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = format_endpoint(remote);
    fd_ = stream_.socket().native_handle();
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() { server_.forget(id_); }

  asio::any_io_executor executor() { return stream_.get_executor(); }

  // From any thread: gives up this connection's place unless its handler is running, or (asked
  // for stalled connections only) its request head has arrived in full; true when it did (the
  // caller then posts on_evicted()).
  bool try_evict(ConnectionTable::Ask ask) {
    if (ask == ConnectionTable::Ask::stalled && has_head()) return false;
    int free = k_free;
    return hold_.compare_exchange_strong(free, k_evicted);
  }
  // A newcomer took the place: whatever was in progress ends, without an answer.
  void on_evicted() { close(); }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }

  // The server is stopping: a request still being read is abandoned, one being answered finishes.
  void on_stop() {
    stopping_ = true;
    if (phase_ == Phase::reading || phase_ == Phase::lingering) stream_.close();
  }

 private:
  // Whether the request line and headers have arrived in full: parsed already, or waiting in
  // the socket's receive buffer (a peek from the acceptor's thread; the strand may not have run
  // since they arrived). A crowd that reconnects as fast as it is evicted therefore cannot push
  // out a request that is in, however many connections it opens before the strand reads it.
  [[nodiscard]] bool has_head() const {
    if (head_seen_.load()) return true;
    std::array<char, k_header_limit + 4> peeked;
    auto got = ::recv(fd_, peeked.data(), peeked.size(), MSG_PEEK | MSG_DONTWAIT);
    if (got <= 0) return false;
    std::string_view text(peeked.data(), static_cast<std::size_t>(got));
    return text.find("\r\n\r\n") != std::string_view::npos || text.find("\n\n") != std::string_view::npos;
  }

  enum class Phase { reading, responding, lingering, closed };
  static constexpr int k_free = 0, k_handling = 1, k_evicted = 2;  // hold_

  void read_header() {
    if (stopping_ || hold_.load() == k_evicted) return close();
    const auto& options = server_.options();
    parser_.emplace();
    parser_->header_limit(k_header_limit);
    parser_->body_limit(static_cast<std::uint64_t>(options.max_body));
    // Absolute, from the accept: a slow client does not earn more time by sending a byte.
    stream_.expires_at(accepted_at_ + std::min(options.head_timeout, options.read_timeout));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return read_failed(ec);
    in_head_ = false;
    head_seen_.store(true);
    stream_.expires_at(accepted_at_ + server_.options().read_timeout);
    if (auto length = parser_->content_length(); length && *length > server_.options().max_body)
      return refuse_body();
    if (parser_->is_done()) return handle();
    auto& req = parser_->get();
    if (req.version() == 11 && lower(req[bhttp::field::expect]) == "100-continue") {
      static constexpr std::string_view k_continue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(k_continue.data(), k_continue.size()),
                        [self = shared_from_this()](beast::error_code e, std::size_t) {
                          if (e) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (ec) return read_failed(ec);
    handle();
  }

  void read_failed(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) return refuse_body();
    if (ec == bhttp::error::header_limit)
      return respond({431, "text/plain; charset=utf-8", "request headers larger than " + std::to_string(k_header_limit) + " bytes\n"},
                     Complete::no);
    if (ec == beast::error::timeout) server_.count_timeout(in_head_);
    // Timed out (the stream has closed the socket), gone, cancelled by stop() or an eviction,
    // or cut short.
    if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        stopping_)
      return close();
    respond({400, "text/plain; charset=utf-8", "malformed request: " + lower_first(ec.message()) + "\n"}, Complete::no);
  }

  void refuse_body() {
    respond({413, "text/plain; charset=utf-8",
             "request body larger than " + std::to_string(server_.options().max_body) + " bytes\n"},
            Complete::no);
  }

  void handle() {
    phase_ = Phase::responding;
    auto& message = parser_->get();
    HttpRequest request;
    request.method = str(message.method_string());
    request.target = str(message.target());
    for (const auto& field : message) {
      auto name = lower(field.name_string());
      auto [it, inserted] = request.headers.try_emplace(name, str(field.value()));
      if (!inserted) it->second += ", " + str(field.value());
    }
    request.body = std::move(message.body());
    request.peer = peer_;
    head_ = message.method() == bhttp::verb::head;
    parser_.reset();
    // From here until the handler returns, the connection cannot be evicted.
    int free = k_free;
    if (!hold_.compare_exchange_strong(free, k_handling)) return close();
    HttpResponse response;
    try {
      response = server_.handler()(request);
    } catch (const std::exception&) {
      response = {500, "text/plain; charset=utf-8", "internal server error\n"};
    }
    hold_.store(k_free);
    respond(std::move(response), Complete::yes);
  }

  enum class Complete { yes, no };  // whether the request was read in full

  void respond(HttpResponse answer, Complete complete) {
    phase_ = Phase::responding;
    parser_.reset();
    int status = answer.status >= 100 && answer.status <= 599 ? answer.status : 500;
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(status));
    response_.set(bhttp::field::server, "pgconverge");
    response_.set(bhttp::field::content_type, answer.content_type);
    response_.keep_alive(false);
    response_.content_length(answer.body.size());
    if (!head_) response_.body() = std::move(answer.body);
    stream_.expires_after(server_.options().read_timeout);
    bhttp::async_write(stream_, response_, [self = shared_from_this(), complete](beast::error_code ec, std::size_t) {
      self->on_written(ec, complete);
    });
  }

  void on_written(beast::error_code ec, Complete complete) {
    if (ec) return close();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (complete == Complete::yes || stopping_) return close();
    phase_ = Phase::lingering;
    buffer_.consume(buffer_.size());
    stream_.expires_after(std::min(server_.options().read_timeout, k_linger_limit));
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(drain_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void close() {
    phase_ = Phase::closed;
    stream_.close();
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  std::uint64_t id_;
  std::chrono::steady_clock::time_point accepted_at_;
  std::atomic<int> hold_{k_free};  // k_free, k_handling (the handler runs) or k_evicted
  std::atomic<bool> head_seen_{false};  // the request head was parsed
  // The socket's descriptor, for has_head()'s peek from another thread (asio's socket object
  // is only touched on the strand). Read-only use: a descriptor already closed and reused by
  // a later connection only misjudges which connection is stalled.
  int fd_ = -1;
  bool in_head_ = true;            // still reading the request line and headers
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  std::array<char, 4096> drain_{};
  Phase phase_ = Phase::reading;
  bool head_ = false;
  bool stopping_ = false;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void HttpServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // Out of file descriptors and the like: back off instead of spinning.
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([this](beast::error_code e) {
      if (!e && acceptor_.is_open()) accept();
    });
    return;
  }
  if (auto session = admit(socket)) {
    session->start();
  } else {
    // Every place is held by a running handler (or stopping, or the peer is gone): refuse
    // rather than queue.
    beast::error_code ignored;
    socket.close(ignored);
  }
  accept();
}

std::shared_ptr<Session> HttpServer::Impl::admit(tcp::socket& socket) {
  auto key = peer_key(socket);
  if (key.empty()) return nullptr;
  std::shared_ptr<Session> session;
  // Released after the lock: the last reference to a session may be one of these.
  std::vector<std::shared_ptr<Session>> victims;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return nullptr;
    auto id = next_id_++;
    auto admission = table_.admit(id, key, [&](std::uint64_t victim, ConnectionTable::Ask ask) {
      auto found = sessions_.find(victim);
      auto live = found == sessions_.end() ? nullptr : found->second.lock();
      if (!live) return true;  // already closing: its place is free
      if (!live->try_evict(ask)) return false;
      victims.push_back(std::move(live));
      return true;
    });
    if (!admission.admitted) {
      ++refused_;
    } else {
      ++active_;
      ++accepted_;
      session = std::make_shared<Session>(std::move(socket), *this, id);
      sessions_.emplace(id, session);
    }
  }
  evicted_ += victims.size();
  for (auto& victim : victims) {
    auto executor = victim->executor();
    asio::post(executor, [v = std::move(victim)] { v->on_evicted(); });
  }
  return session;
}

void HttpServer::Impl::stop() {
  std::lock_guard stop_lock(stop_mutex_);
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (const auto& [id, weak] : sessions_) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
  });
  for (auto& session : live) {
    auto executor = session->executor();
    asio::post(executor, [s = std::move(session)] { s->on_stop(); });
  }
  live.clear();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::start(const HttpServerOptions& options, HttpHandler handler) {
  auto impl = std::make_unique<Impl>(options, std::move(handler));
  PGC_TRY(impl->listen());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

std::string HttpServer::bound_address() const { return impl_->bound_address(); }

std::size_t HttpServer::active_connections() const { return impl_->active_connections(); }

HttpServerStats HttpServer::stats() const { return impl_->stats(); }

void HttpServer::stop() { impl_->stop(); }

}  // namespace pgc::providers::http

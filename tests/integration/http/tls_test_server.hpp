#pragma once
// A small HTTP server for the TLS tests of the shared client (and the Patroni client beside it),
// on 127.0.0.1 or on a unix socket, over OpenSSL directly (libssl, no Asio): the server side is
// the test's own, so a bug of the client's TLS cannot hide in a shared one. One thread per
// connection; each answers one request, the way Patroni's REST API (Python's http.server) does
// by default: HTTP/1.0, no Content-Length, the body ended by closing the connection without a
// TLS close_notify. It counts what it saw (plain requests, TLS requests, SNI names), so a test can
// tell that nothing reached it in plain text. Header-only; link OpenSSL::SSL, Threads::Threads.

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/support/fake_tcp_server.hpp"

namespace pgc::test {

// How much later than its deadline a request may end in a timing check (an ASan build is slower).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr std::chrono::milliseconds k_tls_timing_margin{3000};
#else
inline constexpr std::chrono::milliseconds k_tls_timing_margin{750};
#endif

// The server's writes to a client that went away must not kill the test: SIGPIPE is ignored
// in every test program that includes this.
inline const bool k_sigpipe_ignored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

class TlsTestServer {
 public:
  enum class Mode {
    tls,         // TLS only: a plain request is dropped unread (what OpenSSL servers do)
    plain,       // plain HTTP only: a ClientHello gets "HTTP/1.0 400" (what Python's server sends)
    silent,      // accepts and never answers, not even a handshake
    tls_alert,   // answers anything with a TLS alert record (protocol_version), then closes
    either,      // TLS when the first byte is a handshake record's, else plain HTTP (counted)
  };
  struct Options {
    Mode mode = Mode::tls;
    std::string certificate_pem;  // the server's, for tls
    std::string key_pem;
    std::string body = R"({"members":[]})";
    std::string unix_socket;      // when set, listens there instead of 127.0.0.1
    bool close_notify = false;    // send a TLS close_notify before closing (Python's server does not)
    // How long the connection stays open after the body (Patroni's close_notify comes ~40 ms
    // late: Nagle and the peer's delayed ACK).
    std::chrono::milliseconds close_after{0};
  };

  explicit TlsTestServer(Options options) : options_(std::move(options)) {
    if (options_.mode == Mode::tls || options_.mode == Mode::either) make_context();
    listen();
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  TlsTestServer(const TlsTestServer&) = delete;
  TlsTestServer& operator=(const TlsTestServer&) = delete;
  ~TlsTestServer() {
    stopping_ = true;
    acceptor_.join();
    ::close(listener_);
    std::lock_guard lock(mutex_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& thread : threads_) thread.join();
    for (int fd : fds_) ::close(fd);
    if (context_) ::SSL_CTX_free(context_);
    if (!options_.unix_socket.empty()) ::unlink(options_.unix_socket.c_str());
  }

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] int connections() const { return accepted_.load(); }
  [[nodiscard]] int plain_requests() const { return plain_requests_.load(); }
  [[nodiscard]] int tls_requests() const { return tls_requests_.load(); }
  // The SNI names the handshakes carried ("" for none), in order.
  [[nodiscard]] std::vector<std::string> server_names() const {
    std::lock_guard lock(mutex_);
    return server_names_;
  }

 private:
  static std::string response(const std::string& body) {
    return "HTTP/1.0 200 OK\r\nServer: BaseHTTP/0.6 Python/3.11\r\nContent-Type: application/json\r\n\r\n" + body;
  }

  void make_context() {
    context_ = ::SSL_CTX_new(::TLS_server_method());
    BIO* cert = ::BIO_new_mem_buf(options_.certificate_pem.data(), static_cast<int>(options_.certificate_pem.size()));
    BIO* key = ::BIO_new_mem_buf(options_.key_pem.data(), static_cast<int>(options_.key_pem.size()));
    X509* x509 = ::PEM_read_bio_X509(cert, nullptr, nullptr, nullptr);
    EVP_PKEY* pkey = ::PEM_read_bio_PrivateKey(key, nullptr, nullptr, nullptr);
    bool ok = x509 && pkey && ::SSL_CTX_use_certificate(context_, x509) == 1 &&
              ::SSL_CTX_use_PrivateKey(context_, pkey) == 1;
    ::X509_free(x509);
    ::EVP_PKEY_free(pkey);
    ::BIO_free(cert);
    ::BIO_free(key);
    if (!ok) throw std::runtime_error("tls test server: cannot load the certificate and key");
  }

  void listen() {
    if (options_.unix_socket.empty()) {
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t length = sizeof address;
      auto* sa = reinterpret_cast<sockaddr*>(&address);
      listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (listener_ < 0 || ::bind(listener_, sa, length) != 0 || ::listen(listener_, 64) != 0 ||
          ::getsockname(listener_, sa, &length) != 0)
        throw std::runtime_error("tls test server: cannot listen on 127.0.0.1");
      port_ = ntohs(address.sin_port);
      return;
    }
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, options_.unix_socket.c_str(), sizeof address.sun_path - 1);
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 64) != 0)
      throw std::runtime_error("tls test server: cannot listen on " + options_.unix_socket);
  }

  void accept_loop() {
    while (!stopping_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      std::lock_guard lock(mutex_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd] {
        serve(fd);
        ::shutdown(fd, SHUT_RDWR);
      });
    }
  }

  void serve(int fd) {
    switch (options_.mode) {
      case Mode::silent: hold_silently(fd, stopping_); return;
      case Mode::tls_alert:
        read_some(fd, stopping_);
        write_all(fd, std::string("\x15\x03\x03\x00\x02\x02\x46", 7), stopping_);
        return;
      case Mode::plain: serve_plain(fd); return;
      case Mode::tls: serve_tls(fd); return;
      case Mode::either: {
        pollfd p{fd, POLLIN, 0};
        while (!stopping_ && ::poll(&p, 1, 20) == 0) {
        }
        char first = 0;
        if (stopping_ || ::recv(fd, &first, 1, MSG_PEEK) != 1) return;
        if (first == '\x16') serve_tls(fd); else serve_plain(fd);
        return;
      }
    }
  }

  void serve_plain(int fd) {
    auto request = read_some(fd, stopping_);
    if (!request.empty() && request[0] == '\x16') {  // a ClientHello read as a request line
      write_all(fd, "HTTP/1.0 400 Bad request version\r\nContent-Type: text/html\r\n\r\n<html>bad</html>", stopping_);
      return;
    }
    while (!request.empty() && request.find("\r\n\r\n") == std::string::npos) {
      auto more = read_some(fd, stopping_);
      if (more.empty()) return;
      request += more;
    }
    if (request.empty()) return;
    ++plain_requests_;
    write_all(fd, response(options_.body), stopping_);
  }

  void serve_tls(int fd) {
    SSL* ssl = ::SSL_new(context_);
    ::SSL_set_fd(ssl, fd);
    if (::SSL_accept(ssl) == 1) {
      const char* sni = ::SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
      {
        std::lock_guard lock(mutex_);
        server_names_.emplace_back(sni ? sni : "");
      }
      std::string request;
      char chunk[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        int n = ::SSL_read(ssl, chunk, sizeof chunk);
        if (n <= 0) break;
        request.append(chunk, static_cast<std::size_t>(n));
      }
      if (request.find("\r\n\r\n") != std::string::npos) {
        ++tls_requests_;
        auto out = response(options_.body);
        ::SSL_write(ssl, out.data(), static_cast<int>(out.size()));
        if (options_.close_after.count() > 0) std::this_thread::sleep_for(options_.close_after);
        if (options_.close_notify) ::SSL_shutdown(ssl);
      }
    }
    ::SSL_free(ssl);
    ::ERR_clear_error();
  }

  Options options_;
  SSL_CTX* context_ = nullptr;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> plain_requests_{0};
  std::atomic<int> tls_requests_{0};
  mutable std::mutex mutex_;  // guards fds_, threads_, server_names_
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::vector<std::string> server_names_;
  std::thread acceptor_;
};

}  // namespace pgc::test

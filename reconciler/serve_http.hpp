#pragma once
// The daemon's HTTP listeners: `listen` (webhooks, /metrics, /healthz) and, when set,
// `metricsListen` (/metrics and /healthz only; anything else 404). The second has its own
// connections, per-address caps and threads: whatever floods `listen` (idle or trickling
// connections, a webhook flood from many addresses), monitoring on `metricsListen` is answered,
// and the address can be one only the monitoring reaches. /metrics on either carries both
// servers' connection totals (pgconverge_http_connections_total{listener}).

#include <memory>
#include <mutex>
#include <string>

#include "providers/http/http_server.hpp"
#include "reconciler/metrics.hpp"
#include "util/expected.hpp"

namespace pgc::reconciler {

class ServeListeners {
 public:
  // Starts `listen` and, unless empty, `metrics_listen`; handler answers every request on both
  // (on `metrics_listen` only those for /metrics and /healthz reach it). Errors name the address.
  // main: `listen`'s options (address, body limit, per-address cap).
  static Result<std::unique_ptr<ServeListeners>> start(const providers::http::HttpServerOptions& main,
                                                       const std::string& metrics_listen, Metrics& metrics,
                                                       providers::http::HttpHandler handler);
  ServeListeners(const ServeListeners&) = delete;
  ServeListeners& operator=(const ServeListeners&) = delete;
  ~ServeListeners() { stop(); }

  // "127.0.0.1:9810", and "127.0.0.1:9811" for the metrics listener when there is one.
  [[nodiscard]] std::string bound_address() const { return main_bound_; }
  [[nodiscard]] std::string metrics_bound_address() const { return metrics_bound_; }
  // Closes both (see HttpServer::stop); idempotent; not from a handler.
  void stop();

 private:
  ServeListeners(Metrics& metrics, providers::http::HttpHandler handler)
      : metrics_(metrics), handler_(std::move(handler)) {}
  providers::http::HttpResponse answer(const providers::http::HttpRequest& request, bool monitoring_only);
  void publish();  // the servers' totals into metrics_

  Metrics& metrics_;
  providers::http::HttpHandler handler_;
  std::mutex mutex_;  // guards the two pointers while a server may already be calling answer()
  std::unique_ptr<providers::http::HttpServer> main_, metrics_server_;
  std::string main_bound_, metrics_bound_;
};

}  // namespace pgc::reconciler

#include "reconciler/serve_http.hpp"

#include <algorithm>

namespace pgc::reconciler {

namespace http = providers::http;

Result<std::unique_ptr<ServeListeners>> ServeListeners::start(const http::HttpServerOptions& options,
                                                              const std::string& metrics_listen, Metrics& metrics,
                                                              http::HttpHandler handler) {
  std::unique_ptr<ServeListeners> self(new ServeListeners(metrics, std::move(handler)));
  auto main = http::HttpServer::start(options, [s = self.get()](const auto& r) { return s->answer(r, false); });
  PGC_TRY(main);
  std::unique_ptr<http::HttpServer> monitoring;
  if (!metrics_listen.empty()) {
    http::HttpServerOptions only;
    only.listen = metrics_listen;
    only.max_body = 1024;  // GETs only: nothing to read
    only.max_connections = 16;
    only.max_connections_per_address = std::min<std::size_t>(options.max_connections_per_address, 16);
    auto started = http::HttpServer::start(only, [s = self.get()](const auto& r) { return s->answer(r, true); });
    if (!started) {
      (*main)->stop();
      return fail("metricsListen: " + started.error().message);
    }
    monitoring = std::move(*started);
  }
  std::lock_guard lock(self->mutex_);
  self->main_bound_ = (*main)->bound_address();
  self->main_ = std::move(*main);
  if (monitoring) {
    self->metrics_bound_ = monitoring->bound_address();
    self->metrics_server_ = std::move(monitoring);
  }
  return self;
}

http::HttpResponse ServeListeners::answer(const http::HttpRequest& request, bool monitoring_only) {
  auto path = request.target.substr(0, request.target.find('?'));
  if (monitoring_only && path != "/metrics" && path != "/healthz")
    return {404, "text/plain; charset=utf-8", "only /metrics and /healthz here\n"};
  if (path == "/metrics") publish();
  return handler_(request);
}

void ServeListeners::publish() {
  std::lock_guard lock(mutex_);
  for (auto [server, name] : {std::pair{main_.get(), "listen"}, std::pair{metrics_server_.get(), "metricsListen"}}) {
    if (!server) continue;
    auto stats = server->stats();
    metrics_.set_http_connections(name, "accepted", static_cast<double>(stats.accepted));
    metrics_.set_http_connections(name, "refused", static_cast<double>(stats.refused));
    metrics_.set_http_connections(name, "evicted", static_cast<double>(stats.evicted));
    metrics_.set_http_connections(name, "head_timeout", static_cast<double>(stats.head_timeouts));
    metrics_.set_http_connections(name, "request_timeout", static_cast<double>(stats.request_timeouts));
  }
}

void ServeListeners::stop() {
  // Not under mutex_: stop() waits for handlers, which may be in publish().
  if (main_) main_->stop();
  if (metrics_server_) metrics_server_->stop();
}

}  // namespace pgc::reconciler

// The Patroni REST API, one short-lived connection per request through the shared Beast client
// (providers/http/http_client.hpp): connect, write and read together never outlast the
// endpoint's timeout.

#include "providers/patroni/patroni_client.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

#include "providers/http/http_client.hpp"
#include "util/base64.hpp"
#include "util/duration.hpp"
#include "util/net_address.hpp"
#include "util/strings.hpp"

namespace pgc::providers {

nlohmann::json HttpResponse::json() const {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  return parsed.is_discarded() ? nlohmann::json() : parsed;
}

namespace {

using Clock = std::chrono::steady_clock;
using http_client::Failure;

// Patroni's answers are small; anything bigger than this is not Patroni.
constexpr std::size_t k_body_limit = 8 * 1024 * 1024;
constexpr std::size_t k_header_limit = 8 * 1024;
constexpr std::size_t k_snippet_length = 200;

// The first part of a body on one line, for error messages.
std::string snippet(std::string_view body) {
  std::string out;
  for (char ch : body) out += (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : ch;
  out = trim(out);
  if (out.size() > k_snippet_length) out = out.substr(0, k_snippet_length) + "...";
  return out;
}

bool is_safe(const std::string& method) { return method == "GET" || method == "HEAD" || method == "OPTIONS"; }

class BeastPatroniClient final : public PatroniClient {
 public:
  explicit BeastPatroniClient(PatroniEndpoint endpoint)
      : endpoint_(std::move(endpoint)), where_("patroni " + host_port()) {}

  Result<nlohmann::json> cluster() override { return json_call("GET", "/cluster", std::nullopt); }
  Result<nlohmann::json> patroni() override { return json_call("GET", "/patroni", std::nullopt); }
  Result<nlohmann::json> config() override { return json_call("GET", "/config", std::nullopt); }
  Result<nlohmann::json> patch_config(const nlohmann::json& patch) override {
    return json_call("PATCH", "/config", patch);
  }
  Result<HttpResponse> reload() override { return send("POST", "/reload", std::nullopt); }
  Result<HttpResponse> restart(bool only_pending) override {
    auto body = only_pending ? nlohmann::json{{"restart_pending", true}} : nlohmann::json::object();
    return send("POST", "/restart", body);
  }
  Result<HttpResponse> switchover(const std::string& leader, const std::string& candidate) override {
    return send("POST", "/switchover", nlohmann::json{{"leader", leader}, {"candidate", candidate}});
  }
  Result<HttpResponse> request(const std::string& method, const std::string& target,
                               const std::optional<nlohmann::json>& body) override {
    std::string upper = method;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
    return send(upper, target, body);
  }

 private:
  std::string host_port() const {
    return pgc::host_port(endpoint_.address, endpoint_.port);
  }

  // A request that must answer 200 with a JSON body.
  Result<nlohmann::json> json_call(const std::string& method, const std::string& target, const std::optional<nlohmann::json>& body) {
    auto response = send(method, target, body);
    PGC_TRY(response);
    auto what = where_ + ": " + method + " " + target + ": ";
    if (response->status != 200) {
      auto text = snippet(response->body);
      // 401/403: the credentials (or their absence) are refused; asking again changes nothing.
      bool refused = response->status == 401 || response->status == 403;
      return std::unexpected(Error{what + "HTTP " + std::to_string(response->status) + (text.empty() ? "" : ": " + text),
                                   refused ? k_http_forbidden : ""});
    }
    auto parsed = nlohmann::json::parse(response->body, nullptr, false);
    auto shown = response->body.empty() ? std::string("(empty)") : snippet(response->body);
    if (parsed.is_discarded()) return fail(what + "the answer is not JSON: " + shown);
    // Every answer Patroni gives here is an object; callers look fields up without type checks.
    if (!parsed.is_object()) return fail(what + "the answer is not a JSON object: " + shown);
    return parsed;
  }

  // One request on a fresh connection (two at most, with TLS: see PatroniClient); any HTTP status
  // is a response, only transport failures are errors.
  Result<HttpResponse> send(const std::string& method, const std::string& target,
                            const std::optional<nlohmann::json>& body) {
    auto req = make_request(method, target, body);
    auto deadline = Clock::now() + endpoint_.timeout;
    bool tls = endpoint_.tls && endpoint_.tls->prefer;
    auto r = attempt(req, tls, deadline);
    if (endpoint_.tls && speaks_other_scheme(r, tls)) {
      tls = !tls;
      r = attempt(req, tls, deadline);
    }
    return answer(method, target, std::move(r));
  }

  http_client::Request make_request(const std::string& method, const std::string& target,
                                    const std::optional<nlohmann::json>& body) const {
    http_client::Request req;
    req.host = endpoint_.address;
    req.port = static_cast<unsigned short>(endpoint_.port);
    req.unix_socket = endpoint_.unix_socket;
    req.method = method;
    req.target = target;
    req.headers.emplace_back("Accept", "application/json");
    req.json_body = true;  // ends at the JSON value, not at Patroni's late TLS close (http_client.hpp)
    if (body) {
      req.headers.emplace_back("Content-Type", "application/json");
      req.body = body->dump();
    }
    if (!is_safe(method) && !endpoint_.username.empty())
      req.headers.emplace_back("Authorization", "Basic " + base64_encode(endpoint_.username + ":" + endpoint_.password));
    return req;
  }

  // The request in https (verified against the endpoint's CA and name) or in plain http.
  http_client::Response attempt(http_client::Request req, bool tls, Clock::time_point deadline) const {
    if (tls) {
      req.tls.emplace();
      req.tls->ca_pem = endpoint_.tls->ca_pem;
      req.tls->server_name = endpoint_.tls->server_name;
    }
    return http_client::call(req, deadline, {k_header_limit, k_body_limit});
  }

  // Whether a failed attempt says the member speaks the other scheme: in TLS, it answered in plain
  // HTTP; in plain HTTP, it answered with TLS, or closed or reset the connection before any
  // response — what a TLS server (OpenSSL's) does with a plain request, without an alert. The
  // retry never downgrades a TLS connection that failed otherwise, and neither attempt can have
  // been carried out by a member that refused it unread.
  static bool speaks_other_scheme(const http_client::Response& r, bool tls) {
    if (tls) return r.failure == Failure::tls_plain;
    return r.failure == Failure::tls_expected || r.failure == Failure::closed || r.failure == Failure::reset;
  }

  // The response, or the failure as an error naming the endpoint and request; a certificate or
  // handshake refused is permanent (a wrong CA or name does not change by waiting).
  Result<HttpResponse> answer(const std::string& method, const std::string& target, http_client::Response r) const {
    if (r.failure == Failure::none) return HttpResponse{r.status, std::move(r.body)};
    auto message = where_ + ": " + method + " " + target + ": " + describe(r) + tunnel_note();
    if (r.failure == Failure::tls_verify) return fail_permanent(std::move(message), k_tls_verify);
    if (r.failure == Failure::tls_handshake) return fail_permanent(std::move(message), k_tls_handshake);
    return fail(std::move(message));
  }

  // Why the tunnel (if any) dropped the connection, in parentheses, else "".
  [[nodiscard]] std::string tunnel_note() const {
    if (!endpoint_.tunnel_failure) return "";
    std::string why = endpoint_.tunnel_failure();
    return why.empty() ? "" : " (" + why + ")";
  }

  // Transport errors in the words an operator expects.
  std::string describe(const http_client::Response& r) const {
    switch (r.failure) {
      case Failure::none: break;
      case Failure::unknown_method: return "unknown HTTP method";
      case Failure::resolve_timeout: return "timed out after " + format_duration(endpoint_.timeout) + " resolving the name";
      case Failure::resolve: return "cannot resolve " + endpoint_.address + ": " + r.message;
      case Failure::timeout: return "timed out after " + format_duration(endpoint_.timeout);
      case Failure::refused: return "connection refused";
      case Failure::host_unreachable: return "host unreachable";
      case Failure::network_unreachable: return "network unreachable";
      case Failure::reset: return "connection reset by peer";
      case Failure::closed: return "connection closed before a response";
      case Failure::partial: return "connection closed in the middle of the response";
      case Failure::body_limit: return "response larger than " + std::to_string(k_body_limit) + " bytes";
      case Failure::header_limit: return "response headers larger than " + std::to_string(k_header_limit) + " bytes";
      // Beast's own words are short: "bad version", "bad chunk".
      case Failure::not_http: return "not an HTTP response (" + r.message + ")";
      // OpenSSL's reason: "certificate verify failed: …", "hostname mismatch: …".
      case Failure::tls_verify:
      case Failure::tls_handshake: return "TLS: " + r.message;
      case Failure::tls_plain: return "TLS: the member answered in plain HTTP";
      case Failure::tls_expected: return "the member answered plain HTTP with TLS";
      case Failure::other: break;
    }
    auto text = r.message;
    if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
    return text;
  }

  PatroniEndpoint endpoint_;
  std::string where_;
};

}  // namespace

std::unique_ptr<PatroniClient> make_patroni_client(const PatroniEndpoint& endpoint) {
  return std::make_unique<BeastPatroniClient>(endpoint);
}

}  // namespace pgc::providers

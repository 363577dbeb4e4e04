// The Patroni REST API over Boost.Beast. Each request is one short-lived connection driven by
// its own io_context: the asynchronous operations carry beast::tcp_stream's expiry (the
// synchronous ones would ignore it), so connect, write and read together never outlast the
// endpoint's timeout.

#include "providers/patroni/patroni_client.hpp"

// GCC 12 reports a false "potential null pointer dereference" inside Asio 1.74's scheduler
// (inlined thread_info access); the pragma covers only the Boost headers' own lines.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cctype>
#include <vector>

#include "providers/http/beast_exchange.hpp"
#include "util/strings.hpp"

namespace pgc::providers {

nlohmann::json HttpResponse::json() const {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  return parsed.is_discarded() ? nlohmann::json() : parsed;
}

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Patroni's answers are small; anything bigger than this is not Patroni.
constexpr std::uint64_t k_body_limit = 8 * 1024 * 1024;
constexpr std::uint32_t k_header_limit = 8 * 1024;
constexpr std::size_t k_snippet_length = 200;

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  std::string s = std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 + 1000).substr(1);
  while (s.back() == '0') s.pop_back();
  return s + "s";
}

std::string base64(std::string_view in) {
  static constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += k_alphabet[(n >> 18) & 63];
    out += k_alphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? k_alphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? k_alphabet[n & 63] : '=';
  }
  return out;
}

// The first part of a body on one line, for error messages.
std::string snippet(std::string_view body) {
  std::string out;
  for (char ch : body) out += (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : ch;
  out = trim(out);
  if (out.size() > k_snippet_length) out = out.substr(0, k_snippet_length) + "...";
  return out;
}

bool is_safe(http::verb v) { return v == http::verb::get || v == http::verb::head || v == http::verb::options; }

class BeastPatroniClient final : public PatroniClient {
 public:
  explicit BeastPatroniClient(PatroniEndpoint endpoint)
      : endpoint_(std::move(endpoint)), where_("patroni " + host_port()) {}

  Result<nlohmann::json> cluster() override { return json_call(http::verb::get, "/cluster", std::nullopt); }
  Result<nlohmann::json> patroni() override { return json_call(http::verb::get, "/patroni", std::nullopt); }
  Result<nlohmann::json> config() override { return json_call(http::verb::get, "/config", std::nullopt); }
  Result<nlohmann::json> patch_config(const nlohmann::json& patch) override {
    return json_call(http::verb::patch, "/config", patch);
  }
  Result<HttpResponse> reload() override { return send(http::verb::post, "/reload", std::nullopt); }
  Result<HttpResponse> restart(bool only_pending) override {
    auto body = only_pending ? nlohmann::json{{"restart_pending", true}} : nlohmann::json::object();
    return send(http::verb::post, "/restart", body);
  }
  Result<HttpResponse> switchover(const std::string& leader, const std::string& candidate) override {
    return send(http::verb::post, "/switchover", nlohmann::json{{"leader", leader}, {"candidate", candidate}});
  }
  Result<HttpResponse> request(const std::string& method, const std::string& target,
                               const std::optional<nlohmann::json>& body) override {
    std::string upper = method;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
    auto verb = http::string_to_verb(upper);
    if (verb == http::verb::unknown) return fail(where_ + ": " + method + " " + target + ": unknown HTTP method");
    return send(verb, target, body);
  }

 private:
  std::string host_port() const {
    bool v6 = endpoint_.address.find(':') != std::string::npos;
    return (v6 ? "[" + endpoint_.address + "]" : endpoint_.address) + ":" + std::to_string(endpoint_.port);
  }

  // A request that must answer 200 with a JSON body.
  Result<nlohmann::json> json_call(http::verb verb, const std::string& target, const std::optional<nlohmann::json>& body) {
    auto response = send(verb, target, body);
    if (!response) return std::unexpected(response.error());
    auto what = where_ + ": " + std::string(http::to_string(verb)) + " " + target + ": ";
    if (response->status != 200) {
      auto text = snippet(response->body);
      return fail(what + "HTTP " + std::to_string(response->status) + (text.empty() ? "" : ": " + text));
    }
    auto parsed = nlohmann::json::parse(response->body, nullptr, false);
    auto shown = response->body.empty() ? std::string("(empty)") : snippet(response->body);
    if (parsed.is_discarded()) return fail(what + "the answer is not JSON: " + shown);
    // Every answer Patroni gives here is an object; callers look fields up without type checks.
    if (!parsed.is_object()) return fail(what + "the answer is not a JSON object: " + shown);
    return parsed;
  }

  // One request on a fresh connection; any HTTP status is a response, only transport failures
  // are errors.
  Result<HttpResponse> send(http::verb verb, const std::string& target, const std::optional<nlohmann::json>& body) {
    auto what = where_ + ": " + std::string(http::to_string(verb)) + " " + target + ": ";
    auto deadline = Clock::now() + endpoint_.timeout;
    auto failure = [&](const beast::error_code& ec) { return fail(what + describe(ec)); };

    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    beast::error_code ec;
    std::vector<tcp::endpoint> targets;
    auto address = asio::ip::make_address(endpoint_.address, ec);
    auto port = static_cast<unsigned short>(endpoint_.port);
    if (!ec) {
      targets.emplace_back(address, port);
    } else {
      // A name, not an address: resolve it (getaddrinfo cannot be interrupted; see the header).
      tcp::resolver resolver(ioc);
      bool done = false;
      resolver.async_resolve(endpoint_.address, std::to_string(endpoint_.port),
                             [&](const beast::error_code& e, const tcp::resolver::results_type& results) {
                               ec = e;
                               for (const auto& r : results) targets.push_back(r.endpoint());
                               done = true;
                             });
      ioc.run_for(deadline - Clock::now());
      if (!done) {
        resolver.cancel();
        return fail(what + "timed out after " + format_duration(endpoint_.timeout) + " resolving the name");
      }
      if (ec) return fail(what + "cannot resolve " + endpoint_.address + ": " + ec.message());
      ioc.restart();
    }

    // Each step sets the completion state and runs the loop until the stream's expiry or the
    // operation ends it.
    auto run = [&]() {
      ioc.restart();
      ioc.run();
    };
    stream.expires_at(deadline);
    stream.async_connect(targets, [&](const beast::error_code& e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec) return failure(ec);

    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, host_port());
    req.set(http::field::user_agent, "pgconverge");
    req.set(http::field::accept, "application/json");
    req.keep_alive(false);
    if (body) {
      req.set(http::field::content_type, "application/json");
      req.body() = body->dump();
    }
    if (!is_safe(verb) && !endpoint_.username.empty())
      req.set(http::field::authorization, "Basic " + base64(endpoint_.username + ":" + endpoint_.password));
    auto r = http_client::exchange(stream, req, deadline, k_header_limit, k_body_limit, run);
    if (r.error) return failure(r.error);
    return HttpResponse{r.status, std::move(r.body)};
  }

  // Transport errors in the words an operator expects.
  std::string describe(const beast::error_code& ec) const {
    if (ec == beast::error::timeout) return "timed out after " + format_duration(endpoint_.timeout);
    if (ec == asio::error::connection_refused) return "connection refused";
    if (ec == asio::error::host_unreachable) return "host unreachable";
    if (ec == asio::error::network_unreachable) return "network unreachable";
    if (ec == asio::error::connection_reset) return "connection reset by peer";
    if (ec == http::error::end_of_stream || ec == asio::error::eof)
      return "connection closed before a response";
    if (ec == http::error::partial_message) return "connection closed in the middle of the response";
    if (ec == http::error::body_limit) return "response larger than " + std::to_string(k_body_limit) + " bytes";
    if (ec == http::error::header_limit)
      return "response headers larger than " + std::to_string(k_header_limit) + " bytes";
    // The parser's other errors: whatever answered does not speak HTTP (an SSH or PostgreSQL
    // server on the port, garbage). Beast's own words are short: "bad version", "bad chunk".
    if (ec.category() == http::make_error_code(http::error::bad_version).category())
      return "not an HTTP response (" + ec.message() + ")";
    auto text = ec.message();
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

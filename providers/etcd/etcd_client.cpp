// etcd v3's JSON gateway through the shared Beast client (providers/http/http_client.hpp), as
// providers/patroni: one short-lived connection per call, connect, write and read bounded by the
// timeout together; header and body size limits.

#include "providers/etcd/etcd_client.hpp"

#include <charconv>

#include <nlohmann/json.hpp>

#include "providers/http/http_client.hpp"
#include "util/base64.hpp"
#include "util/strings.hpp"

namespace pgc::providers {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr std::size_t k_body_limit = 1024 * 1024;  // answers here are a few hundred bytes
constexpr std::size_t k_header_limit = 8 * 1024;

// The gateway writes int64 as JSON strings ("ID": "7587870123"); absent means 0 (proto3).
std::int64_t int64_field(const json& object, const char* name) {
  if (!object.is_object() || !object.contains(name)) return 0;
  const auto& v = object[name];
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (!v.is_string()) return 0;
  std::int64_t n = 0;
  const auto& s = v.get_ref<const std::string&>();
  std::from_chars(s.data(), s.data() + s.size(), n);
  return n;
}

std::string snippet(std::string_view body) {
  std::string out;
  for (char ch : body) out += (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : ch;
  out = trim(out);
  return out.size() > 200 ? out.substr(0, 200) + "..." : out;
}

struct Endpoint {
  std::string host;
  unsigned short port = 0;
};

class BeastEtcdClient final : public EtcdClient {
 public:
  BeastEtcdClient(std::vector<Endpoint> endpoints, std::chrono::milliseconds timeout,
                  std::function<Result<std::string>(const std::string&, int)> route, std::optional<EtcdTls> tls)
      : endpoints_(std::move(endpoints)), timeout_(timeout), route_(std::move(route)), tls_(std::move(tls)) {}

  Result<std::int64_t> grant(std::chrono::seconds ttl) override {
    auto r = call("/v3/lease/grant", {{"TTL", std::to_string(ttl.count())}});
    PGC_TRY(r);
    auto id = int64_field(*r, "ID");
    if (id == 0) return fail("etcd: lease grant: no lease ID in the answer: " + snippet(r->dump()));
    return id;
  }

  Result<std::int64_t> keepalive(std::int64_t lease) override {
    // A streaming RPC on the gateway: one request body, one answer {"result": {...}}.
    auto r = call("/v3/lease/keepalive", {{"ID", std::to_string(lease)}});
    PGC_TRY(r);
    const json& result = r->contains("result") ? (*r)["result"] : *r;
    return int64_field(result, "TTL");
  }

  Result<bool> revoke(std::int64_t lease) override {
    auto r = call("/v3/lease/revoke", {{"ID", std::to_string(lease)}}, true);
    PGC_TRY(r);
    return !r->contains("error");
  }

  Result<EtcdCreate> create(const std::string& key, const std::string& value, std::int64_t lease) override {
    json body = {
        {"compare", json::array({{{"key", base64_encode(key)}, {"result", "EQUAL"}, {"target", "CREATE"},
                                  {"create_revision", "0"}}})},
        {"success", json::array({{{"request_put", {{"key", base64_encode(key)}, {"value", base64_encode(value)},
                                                   {"lease", std::to_string(lease)}}}}})},
        {"failure", json::array({{{"request_range", {{"key", base64_encode(key)}}}}})}};
    auto r = call("/v3/kv/txn", body);
    PGC_TRY(r);
    EtcdCreate out;
    out.created = r->value("succeeded", false);
    if (!out.created) {
      const auto& responses = r->value("responses", json::array());
      if (!responses.empty()) out.existing = first_kv(responses[0].value("response_range", json::object()));
    }
    return out;
  }

  Result<bool> replace(const std::string& key, const std::string& value, std::int64_t lease,
                       std::int64_t mod_revision) override {
    json body = {
        {"compare", json::array({{{"key", base64_encode(key)}, {"result", "EQUAL"}, {"target", "MOD"},
                                  {"mod_revision", std::to_string(mod_revision)}}})},
        {"success", json::array({{{"request_put", {{"key", base64_encode(key)}, {"value", base64_encode(value)},
                                                   {"lease", std::to_string(lease)}}}}})}};
    auto r = call("/v3/kv/txn", body);
    PGC_TRY(r);
    return r->value("succeeded", false);
  }

  Result<std::optional<EtcdKeyValue>> get(const std::string& key) override {
    auto r = call("/v3/kv/range", {{"key", base64_encode(key)}});
    PGC_TRY(r);
    return first_kv(*r);
  }

 private:
  static std::optional<EtcdKeyValue> first_kv(const json& range) {
    if (!range.is_object() || !range.contains("kvs") || !range["kvs"].is_array() || range["kvs"].empty())
      return std::nullopt;
    const auto& kv = range["kvs"][0];
    EtcdKeyValue out;
    out.key = base64_decode(kv.value("key", ""));
    out.value = base64_decode(kv.value("value", ""));
    out.lease = int64_field(kv, "lease");
    out.mod_revision = int64_field(kv, "mod_revision");
    return out;
  }

  // POSTs body to each endpoint in turn until one answers; a 200 with a JSON object is the
  // answer (tolerate_error: an answer carrying {"error": ...} with any status, e.g. a revoke of
  // a lease that is gone).
  Result<json> call(const std::string& target, const json& body, bool tolerate_error = false) {
    std::vector<std::string> errors;
    for (const auto& e : endpoints_) {
      std::string where = "etcd " + e.host + ":" + std::to_string(e.port) + ": POST " + target + ": ";
      auto response = post(e, target, body.dump());
      if (!response) {
        errors.push_back(where + response.error().message);
        continue;
      }
      auto parsed = json::parse(response->second, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        errors.push_back(where + "HTTP " + std::to_string(response->first) + ", not a JSON object: " +
                         snippet(response->second));
        continue;
      }
      if (response->first == 200 && !parsed.contains("error")) return parsed;
      if (tolerate_error && parsed.contains("error")) return parsed;
      // An answer from etcd itself (bad request, lease not found): another endpoint would say the same.
      return fail(where + "HTTP " + std::to_string(response->first) + ": " + snippet(response->second));
    }
    return fail(join(errors, "; "));
  }

  Result<std::pair<int, std::string>> post(const Endpoint& e, const std::string& target, const std::string& body) {
    http_client::Request req;
    req.host = e.host;
    req.port = e.port;
    if (route_) {
      auto socket = route_(e.host, e.port);
      PGC_TRY(socket);
      req.unix_socket = *socket;
    }
    req.method = "POST";
    req.target = target;
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body;
    if (tls_)
      req.tls = http_client::Tls{.ca_pem = tls_->ca_pem,
                                 .server_name = e.host,
                                 .client_certificate_pem = tls_->certificate_pem,
                                 .client_key_pem = tls_->key_pem};
    auto r = http_client::call(req, Clock::now() + timeout_, {k_header_limit, k_body_limit});
    using http_client::Failure;
    switch (r.failure) {
      case Failure::none: return std::pair<int, std::string>{r.status, std::move(r.body)};
      case Failure::timeout: return fail("timed out after " + std::to_string(timeout_.count()) + "ms");
      case Failure::resolve: return fail("cannot resolve " + e.host + ": " + r.message);
      default: return fail(r.message);
    }
  }

  std::vector<Endpoint> endpoints_;
  std::chrono::milliseconds timeout_;
  std::function<Result<std::string>(const std::string&, int)> route_;
  std::optional<EtcdTls> tls_;
};

}  // namespace

Result<std::unique_ptr<EtcdClient>> make_etcd_client(const EtcdOptions& options) {
  std::vector<Endpoint> endpoints;
  for (const auto& text : options.endpoints) {
    auto colon = text.rfind(':');
    std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
    std::string port = colon == std::string::npos ? "" : text.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int n = 0;
    auto [p, err] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (host.empty() || err != std::errc() || p != port.data() + port.size() || n < 1 || n > 65535)
      return fail("etcd endpoint \"" + text + "\" is not host:port");
    endpoints.push_back({host, static_cast<unsigned short>(n)});
  }
  if (endpoints.empty()) return fail("no etcd endpoints");
  return std::unique_ptr<EtcdClient>(std::make_unique<BeastEtcdClient>(std::move(endpoints), options.timeout, options.route, options.tls));
}

}  // namespace pgc::providers

// Webhook verification. Signatures are compared as whole strings in constant time; a GitLab
// token is compared through an HMAC under a random key so that neither its content nor its
// length shows in the timing.

#include "reconciler/webhook.hpp"

#include <cctype>
#include <optional>

#include "providers/crypto/crypto.hpp"
#include "util/strings.hpp"

namespace pgc::reconciler {

namespace crypto = providers::crypto;

namespace {

constexpr std::size_t k_delivery_id_limit = 128;

// The header's value, if the request has it.
std::optional<std::string> header(const WebhookRequest& request, const std::string& name) {
  auto it = request.headers.find(name);
  if (it == request.headers.end()) return std::nullopt;
  return it->second;
}

// Printable ASCII only and bounded, since the id ends up in logs and metrics-adjacent text.
std::string sanitise(const std::string& id) {
  std::string out;
  for (char ch : id) {
    if (out.size() == k_delivery_id_limit) break;
    auto c = static_cast<unsigned char>(ch);
    if (c > 0x20 && c < 0x7f) out += ch;
  }
  return out;
}

std::string delivery_id(const WebhookRequest& request) {
  for (const char* name : {"x-github-delivery", "x-gitea-delivery", "x-gitlab-event-uuid", "x-delivery-id"}) {
    if (auto value = header(request, name); value && !value->empty()) return sanitise(*value);
  }
  return {};
}

// A "sha256=<hex>" header against the body's HMAC; hex digits in either case.
bool hmac_matches(const std::string& presented, const std::string& prefix, const std::string& secret,
                  const std::string& body) {
  auto expected = prefix + crypto::to_hex(crypto::hmac_sha256(secret, body));
  return crypto::constant_time_equal(lower(presented), expected);
}

}  // namespace

WebhookVerifier::WebhookVerifier(std::vector<WebhookReceiver> receivers, std::size_t replay_window)
    : receivers_(std::move(receivers)), comparison_key_(crypto::random_bytes(32)), replay_window_(replay_window) {}

WebhookVerdict WebhookVerifier::verify(const WebhookRequest& request) {
  auto path = request.path.substr(0, request.path.find('?'));
  const WebhookReceiver* receiver = nullptr;
  for (const auto& r : receivers_) {
    if (r.path == path) {
      receiver = &r;
      break;
    }
  }
  if (receiver == nullptr) return {404, "no webhook receiver at " + sanitise(path), false, {}};
  auto where = "webhook " + receiver->name + ": ";
  if (request.method != "POST")
    return {405, where + "method " + sanitise(request.method) + " not allowed, use POST", false, {}};

  auto id = delivery_id(request);
  auto refuse = [&](const std::string& why) { return WebhookVerdict{401, where + why, false, id}; };
  if (receiver->secret.empty()) return refuse("no secret configured");

  switch (receiver->kind) {
    case WebhookKind::github: {
      if (auto signature = header(request, "x-hub-signature-256")) {
        if (!hmac_matches(*signature, "sha256=", receiver->secret, request.body)) return refuse("signature mismatch");
      } else if (auto gitea = header(request, "x-gitea-signature")) {
        if (!hmac_matches(*gitea, "", receiver->secret, request.body)) return refuse("signature mismatch");
      } else {
        return refuse("missing X-Hub-Signature-256 header");
      }
      break;
    }
    case WebhookKind::gitlab: {
      auto token = header(request, "x-gitlab-token");
      if (!token) return refuse("missing X-Gitlab-Token header");
      if (!crypto::constant_time_equal(crypto::hmac_sha256(comparison_key_, *token),
                                       crypto::hmac_sha256(comparison_key_, receiver->secret)))
        return refuse("token mismatch");
      break;
    }
    case WebhookKind::generic: {
      auto signature = header(request, "x-signature-256");
      if (!signature) return refuse("missing X-Signature-256 header");
      if (!hmac_matches(*signature, "sha256=", receiver->secret, request.body)) return refuse("signature mismatch");
      break;
    }
  }

  if (!id.empty() && seen_before(receiver->name, id))
    return {409, where + "delivery " + id + " was already received", false, id};
  return {202, where + "accepted" + (id.empty() ? "" : " delivery " + id), true, id};
}

bool WebhookVerifier::seen_before(const std::string& receiver, const std::string& delivery_id) {
  if (replay_window_ == 0) return false;
  auto key = receiver + '\n' + delivery_id;
  std::lock_guard lock(mutex_);
  if (recent_.contains(key)) return true;
  recent_.insert(key);
  recent_order_.push_back(std::move(key));
  while (recent_order_.size() > replay_window_) {
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
  return false;
}

}  // namespace pgc::reconciler

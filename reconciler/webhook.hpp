#pragma once
// Webhook receivers for `pgconverge serve`: a request whose signature verifies only asks for a
// fetch and a reconcile; its payload is never parsed or trusted.

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace pgc::reconciler {

enum class WebhookKind {
  github,   // GitHub and Gitea: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>;
            // Gitea's own X-Gitea-Signature: <hex> is accepted when the former is absent
  gitlab,   // X-Gitlab-Token: <secret>, compared in constant time
  generic,  // X-Signature-256: sha256=<hex HMAC-SHA256 of the body>
};

struct WebhookReceiver {
  std::string name;    // for messages and metrics, e.g. "github"
  WebhookKind kind = WebhookKind::github;
  std::string path;    // e.g. "/hooks/github"; matched exactly, without the query string
  std::string secret;  // read from a file by the caller, never from argv; empty → always 401
  std::chrono::milliseconds min_interval{5000};  // at most one run per interval (webhook_triggers.hpp)
};

struct WebhookRequest {
  std::string method;
  std::string path;                            // the request target; a query string is ignored
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct WebhookVerdict {
  int status = 0;  // 202 accepted, 401 bad or missing signature, 404 unknown path, 405 not POST,
                   // 409 replayed delivery
  std::string message;  // one line for the response body and the log; never holds a secret
  bool trigger = false;  // true only with 202: the caller should fetch and reconcile
  std::string delivery_id;  // the sender's delivery id (sanitised), empty when none was sent
};

// Checks webhook requests against a fixed set of receivers. Thread-safe.
// Replays are caught by remembering the delivery ids (X-GitHub-Delivery, X-Gitea-Delivery,
// X-Gitlab-Event-UUID, X-Delivery-Id) of the last replay_window verified requests; 0 disables
// it. Those headers are not covered by the signature, so this stops a plain resend, not a
// forger who edits the id: harmless, since a trigger only starts a level-based run.
class WebhookVerifier {
 public:
  explicit WebhookVerifier(std::vector<WebhookReceiver> receivers, std::size_t replay_window = 1024);

  // The verdict on one request; the first receiver whose path matches decides.
  WebhookVerdict verify(const WebhookRequest& request);

 private:
  // Whether the id was seen before; records it otherwise.
  bool seen_before(const std::string& receiver, const std::string& delivery_id);

  std::vector<WebhookReceiver> receivers_;
  std::string comparison_key_;  // random; hides the secret's length when tokens are compared
  std::size_t replay_window_;
  std::mutex mutex_;
  std::deque<std::string> recent_order_;  // oldest first
  std::set<std::string> recent_;
};

}  // namespace pgc::reconciler

// Webhook verification: signatures of each kind, the status of every refusal, replays, and
// that no message ever holds the secret or the expected signature.

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "providers/crypto/crypto.hpp"
#include "reconciler/webhook.hpp"

using namespace pgc::reconciler;
namespace crypto = pgc::providers::crypto;

namespace {

const std::string k_secret = "It's a Secret to Everybody";
const std::string k_body = "Hello, World!";
// GitHub's documented example ("Validating webhook deliveries").
const std::string k_github_example = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

std::vector<WebhookReceiver> receivers() {
  return {
      {"github", WebhookKind::github, "/hooks/github", k_secret},
      {"gitlab", WebhookKind::gitlab, "/hooks/gitlab", "gl-token-123"},
      {"ci", WebhookKind::generic, "/hooks/ci", "ci-secret"},
      {"unset", WebhookKind::github, "/hooks/unset", ""},
  };
}

WebhookRequest post(std::string path, std::map<std::string, std::string> headers, std::string body = k_body) {
  return {"POST", std::move(path), std::move(headers), std::move(body)};
}

std::string sign(const std::string& secret, const std::string& body) {
  return "sha256=" + crypto::to_hex(crypto::hmac_sha256(secret, body));
}

}  // namespace

TEST_CASE("webhook: GitHub signature, the documented example and a computed one") {
  WebhookVerifier verifier(receivers());
  CHECK(sign(k_secret, k_body) == k_github_example);

  auto verdict = verifier.verify(post("/hooks/github", {{"x-hub-signature-256", k_github_example}, {"x-github-delivery", "d-1"}}));
  CHECK(verdict.status == 202);
  CHECK(verdict.trigger);
  CHECK(verdict.delivery_id == "d-1");
  CHECK(verdict.message == "webhook github: accepted delivery d-1");

  std::string payload = R"({"ref":"refs/heads/main"})";
  verdict = verifier.verify(post("/hooks/github", {{"x-hub-signature-256", sign(k_secret, payload)}}, payload));
  CHECK(verdict.status == 202);
  CHECK(verdict.message == "webhook github: accepted");
  CHECK(verdict.delivery_id.empty());
}

TEST_CASE("webhook: upper-case hex digits in a signature are accepted") {
  WebhookVerifier verifier(receivers());
  auto upper = "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17";
  CHECK(verifier.verify(post("/hooks/github", {{"x-hub-signature-256", upper}})).status == 202);
}

TEST_CASE("webhook: Gitea's X-Gitea-Signature without the sha256= prefix") {
  WebhookVerifier verifier(receivers());
  auto hex = crypto::to_hex(crypto::hmac_sha256(k_secret, k_body));
  auto verdict = verifier.verify(post("/hooks/github", {{"x-gitea-signature", hex}, {"x-gitea-delivery", "g-7"}}));
  CHECK(verdict.status == 202);
  CHECK(verdict.delivery_id == "g-7");
  CHECK(verifier.verify(post("/hooks/github", {{"x-gitea-signature", "sha256=" + hex}})).status == 401);
}

TEST_CASE("webhook: GitHub refusals are 401 and say why") {
  WebhookVerifier verifier(receivers());
  auto missing = verifier.verify(post("/hooks/github", {{"x-github-delivery", "d-2"}}));
  CHECK(missing.status == 401);
  CHECK_FALSE(missing.trigger);
  CHECK(missing.message == "webhook github: missing X-Hub-Signature-256 header");

  auto wrong = verifier.verify(post("/hooks/github", {{"x-hub-signature-256", sign("other secret", k_body)}}));
  CHECK(wrong.status == 401);
  CHECK(wrong.message == "webhook github: signature mismatch");

  auto tampered = verifier.verify(post("/hooks/github", {{"x-hub-signature-256", k_github_example}}, "Hello, World?"));
  CHECK(tampered.status == 401);

  auto shorter = k_github_example.substr(0, k_github_example.size() - 2);
  CHECK(verifier.verify(post("/hooks/github", {{"x-hub-signature-256", shorter}})).status == 401);
  CHECK(verifier.verify(post("/hooks/github", {{"x-hub-signature-256", k_github_example + "00"}})).status == 401);
  CHECK(verifier.verify(post("/hooks/github", {{"x-hub-signature-256", ""}})).status == 401);
  CHECK(verifier.verify(post("/hooks/github", {{"x-hub-signature-256", k_github_example.substr(7)}})).status == 401);
  CHECK(verifier.verify(post("/hooks/github", {{"x-hub-signature-256", "sha1=" + k_github_example.substr(7)}})).status == 401);
}

TEST_CASE("webhook: GitLab token ok and bad") {
  WebhookVerifier verifier(receivers());
  auto ok = verifier.verify(post("/hooks/gitlab", {{"x-gitlab-token", "gl-token-123"}, {"x-gitlab-event-uuid", "u-1"}}));
  CHECK(ok.status == 202);
  CHECK(ok.trigger);
  CHECK(ok.delivery_id == "u-1");

  auto bad = verifier.verify(post("/hooks/gitlab", {{"x-gitlab-token", "gl-token-124"}}));
  CHECK(bad.status == 401);
  CHECK(bad.message == "webhook gitlab: token mismatch");
  CHECK(verifier.verify(post("/hooks/gitlab", {{"x-gitlab-token", "gl-token-1234"}})).status == 401);
  CHECK(verifier.verify(post("/hooks/gitlab", {{"x-gitlab-token", ""}})).status == 401);
  CHECK(verifier.verify(post("/hooks/gitlab", {})).message == "webhook gitlab: missing X-Gitlab-Token header");
  // A GitHub signature does not open a GitLab receiver.
  CHECK(verifier.verify(post("/hooks/gitlab", {{"x-hub-signature-256", sign("gl-token-123", k_body)}})).status == 401);
}

TEST_CASE("webhook: generic X-Signature-256") {
  WebhookVerifier verifier(receivers());
  auto ok = verifier.verify(post("/hooks/ci", {{"x-signature-256", sign("ci-secret", k_body)}, {"x-delivery-id", "c-1"}}));
  CHECK(ok.status == 202);
  CHECK(ok.delivery_id == "c-1");
  CHECK(verifier.verify(post("/hooks/ci", {{"x-signature-256", sign("ci-secreT", k_body)}})).message ==
        "webhook ci: signature mismatch");
  CHECK(verifier.verify(post("/hooks/ci", {{"x-hub-signature-256", sign("ci-secret", k_body)}})).message ==
        "webhook ci: missing X-Signature-256 header");
}

TEST_CASE("webhook: unknown path is 404, GET is 405, a receiver without a secret refuses everything") {
  WebhookVerifier verifier(receivers());
  auto unknown = verifier.verify(post("/hooks/nope", {{"x-hub-signature-256", k_github_example}}));
  CHECK(unknown.status == 404);
  CHECK_FALSE(unknown.trigger);
  CHECK(unknown.message == "no webhook receiver at /hooks/nope");

  auto get = verifier.verify({"GET", "/hooks/github", {{"x-hub-signature-256", k_github_example}}, k_body});
  CHECK(get.status == 405);
  CHECK_FALSE(get.trigger);
  CHECK(get.message == "webhook github: method GET not allowed, use POST");

  // The query string is not part of the path.
  CHECK(verifier.verify(post("/hooks/github?from=test", {{"x-hub-signature-256", k_github_example}})).status == 202);

  auto unset = verifier.verify(post("/hooks/unset", {{"x-hub-signature-256", sign("", k_body)}}));
  CHECK(unset.status == 401);
  CHECK(unset.message == "webhook unset: no secret configured");
}

TEST_CASE("webhook: a repeated delivery id is 409 and does not trigger") {
  WebhookVerifier verifier(receivers());
  auto headers = std::map<std::string, std::string>{{"x-hub-signature-256", k_github_example}, {"x-github-delivery", "d-9"}};
  CHECK(verifier.verify(post("/hooks/github", headers)).status == 202);
  auto replay = verifier.verify(post("/hooks/github", headers));
  CHECK(replay.status == 409);
  CHECK_FALSE(replay.trigger);
  CHECK(replay.delivery_id == "d-9");
  CHECK(replay.message == "webhook github: delivery d-9 was already received");
}

TEST_CASE("webhook: only verified deliveries are remembered") {
  WebhookVerifier verifier(receivers());
  // A forged request cannot burn a delivery id that the real sender will use.
  CHECK(verifier.verify(post("/hooks/github", {{"x-hub-signature-256", sign("x", k_body)}, {"x-github-delivery", "d-3"}})).status == 401);
  CHECK(verifier.verify(post("/hooks/github", {{"x-hub-signature-256", k_github_example}, {"x-github-delivery", "d-3"}})).status == 202);
}

TEST_CASE("webhook: the replay window forgets the oldest ids") {
  WebhookVerifier verifier(receivers(), 2);
  auto deliver = [&](const std::string& id) {
    return verifier.verify(post("/hooks/github", {{"x-hub-signature-256", k_github_example}, {"x-github-delivery", id}})).status;
  };
  CHECK(deliver("a") == 202);
  CHECK(deliver("b") == 202);
  CHECK(deliver("c") == 202);  // forgets a
  CHECK(deliver("c") == 409);
  CHECK(deliver("a") == 202);

  WebhookVerifier no_window(receivers(), 0);
  auto headers = std::map<std::string, std::string>{{"x-hub-signature-256", k_github_example}, {"x-github-delivery", "z"}};
  CHECK(no_window.verify(post("/hooks/github", headers)).status == 202);
  CHECK(no_window.verify(post("/hooks/github", headers)).status == 202);
}

TEST_CASE("webhook: delivery ids in messages are printable and bounded") {
  WebhookVerifier verifier(receivers());
  auto verdict = verifier.verify(post("/hooks/github", {{"x-hub-signature-256", k_github_example},
                                                        {"x-github-delivery", "id\r\nX-Injected: 1" + std::string(500, 'x')}}));
  CHECK(verdict.status == 202);
  CHECK(verdict.delivery_id.size() == 128);
  CHECK(verdict.delivery_id.starts_with("idX-Injected:1"));
  CHECK(verdict.message.find('\n') == std::string::npos);
}

TEST_CASE("webhook: no message holds the secret or the expected signature") {
  WebhookVerifier verifier(receivers());
  std::vector<WebhookRequest> requests = {
      post("/hooks/github", {}),
      post("/hooks/github", {{"x-hub-signature-256", "sha256=00"}}),
      post("/hooks/github", {{"x-hub-signature-256", k_github_example}, {"x-github-delivery", "s-1"}}),
      post("/hooks/github", {{"x-hub-signature-256", k_github_example}, {"x-github-delivery", "s-1"}}),
      post("/hooks/gitlab", {{"x-gitlab-token", "wrong"}}),
      post("/hooks/gitlab", {{"x-gitlab-token", "gl-token-123"}}),
      post("/hooks/ci", {{"x-signature-256", "sha256=11"}}),
      {"GET", "/hooks/ci", {}, ""},
      post("/elsewhere", {}),
  };
  std::vector<std::string> forbidden = {k_secret, "gl-token-123", "ci-secret", k_github_example.substr(7),
                                        crypto::to_hex(crypto::hmac_sha256("ci-secret", k_body))};
  for (const auto& request : requests) {
    auto verdict = verifier.verify(request);
    INFO(verdict.message);
    for (const auto& secret : forbidden) CHECK(verdict.message.find(secret) == std::string::npos);
  }
}

TEST_CASE("webhook: concurrent verification counts each delivery once") {
  WebhookVerifier verifier(receivers());
  std::atomic<int> accepted{0};
  std::atomic<int> replayed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto verdict = verifier.verify(post("/hooks/github", {{"x-hub-signature-256", k_github_example},
                                                              {"x-github-delivery", "id-" + std::to_string(i)}}));
        (verdict.status == 202 ? accepted : replayed)++;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(accepted == 200);
  CHECK(replayed == 600);
}

// From verified webhooks to runs: a flood is folded into one pending run per receiver, and a
// receiver starts at most one run per min_interval; nothing asked for is lost.

#include <catch2/catch.hpp>

#include "reconciler/webhook_triggers.hpp"

using namespace pgc::reconciler;
using namespace std::chrono_literals;
using Outcome = WebhookTriggers::Outcome;

TEST_CASE("webhook triggers: the first webhook runs at once, the flood after it is held and folded into one run") {
  WebhookTriggers triggers;
  auto t0 = WebhookTriggers::Clock::time_point{} + 1h;
  CHECK_FALSE(triggers.next_due());
  CHECK(triggers.offer("github", 10s, t0) == Outcome::queued);
  CHECK(triggers.offer("github", 10s, t0) == Outcome::coalesced);  // before the daemon took it
  CHECK(triggers.next_due() == t0);
  CHECK(triggers.take(t0) == "github");
  CHECK_FALSE(triggers.take(t0));

  // While that run goes on and after it: 1000 more within the interval give one held run.
  CHECK(triggers.offer("github", 10s, t0 + 1s) == Outcome::delayed);
  for (int i = 0; i < 1000; ++i) CHECK(triggers.offer("github", 10s, t0 + 2s) == Outcome::coalesced);
  CHECK(triggers.next_due() == t0 + 10s);
  CHECK_FALSE(triggers.take(t0 + 9999ms));
  CHECK(triggers.take(t0 + 10s) == "github");
  CHECK_FALSE(triggers.next_due());
  // The interval counts from the run that was taken.
  CHECK(triggers.offer("github", 10s, t0 + 15s) == Outcome::delayed);
  CHECK(triggers.next_due() == t0 + 20s);
  CHECK(triggers.offer("github", 10s, t0 + 40s) == Outcome::coalesced);
  CHECK(triggers.take(t0 + 40s) == "github");
  CHECK(triggers.offer("github", 10s, t0 + 51s) == Outcome::queued);
}

TEST_CASE("webhook triggers: receivers are limited each on its own; the one due first is taken first") {
  WebhookTriggers triggers;
  auto t0 = WebhookTriggers::Clock::time_point{} + 1h;
  CHECK(triggers.offer("github", 10s, t0) == Outcome::queued);
  CHECK(triggers.take(t0) == "github");
  CHECK(triggers.offer("github", 10s, t0 + 1s) == Outcome::delayed);  // due at t0 + 10s
  CHECK(triggers.offer("gitlab", 5s, t0 + 2s) == Outcome::queued);    // due at once
  CHECK(triggers.next_due() == t0 + 2s);
  CHECK(triggers.take(t0 + 3s) == "gitlab");
  CHECK_FALSE(triggers.take(t0 + 3s));
  CHECK(triggers.take(t0 + 10s) == "github");
  CHECK(to_string(Outcome::queued) == std::string("queued"));
  CHECK(to_string(Outcome::delayed) == std::string("delayed"));
  CHECK(to_string(Outcome::coalesced) == std::string("coalesced"));
}

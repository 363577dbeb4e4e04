#include "reconciler/webhook_triggers.hpp"

namespace pgc::reconciler {

WebhookTriggers::Outcome WebhookTriggers::offer(const std::string& receiver, std::chrono::milliseconds min_interval,
                                                Clock::time_point now) {
  auto& r = receivers_[receiver];
  if (r.pending) return Outcome::coalesced;
  r.pending = true;
  if (r.last_started && now < *r.last_started + min_interval) {
    r.due = *r.last_started + min_interval;
    return Outcome::delayed;
  }
  r.due = now;
  return Outcome::queued;
}

std::optional<std::string> WebhookTriggers::take(Clock::time_point now) {
  auto first = receivers_.end();
  for (auto it = receivers_.begin(); it != receivers_.end(); ++it)
    if (it->second.pending && it->second.due <= now && (first == receivers_.end() || it->second.due < first->second.due))
      first = it;
  if (first == receivers_.end()) return std::nullopt;
  first->second.pending = false;
  first->second.last_started = now;
  return first->first;
}

std::optional<WebhookTriggers::Clock::time_point> WebhookTriggers::next_due() const {
  std::optional<Clock::time_point> first;
  for (const auto& [name, r] : receivers_)
    if (r.pending && (!first || r.due < *first)) first = r.due;
  return first;
}

const char* to_string(WebhookTriggers::Outcome outcome) {
  switch (outcome) {
    case WebhookTriggers::Outcome::queued: return "queued";
    case WebhookTriggers::Outcome::delayed: return "delayed";
    case WebhookTriggers::Outcome::coalesced: return "coalesced";
  }
  return "queued";
}

}  // namespace pgc::reconciler

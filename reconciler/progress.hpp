#pragma once
// Progress of long work: on a terminal a live line per host/step, otherwise one log line per
// step with host, step, duration and result (logfmt, or JSON for --log-format json). Thread-safe.

#include <chrono>
#include <mutex>
#include <ostream>
#include <string>

namespace pgc::reconciler {

class Progress {
 public:
  enum class Style { live, log, json, quiet };
  Progress(std::ostream& out, Style style) : out_(out), style_(style) {}

  // Starts a step; returns a token to pass to finish().
  struct Token {
    std::string where;
    std::string step;
    std::chrono::steady_clock::time_point started;
  };
  Token begin(const std::string& where, const std::string& step);
  // Ends a step with its result ("ok", "failed: …").
  void finish(const Token& token, const std::string& result);
  // Updates the live line of a running step (waits); no-op in log style.
  void update(const Token& token, const std::string& detail);
  // A free-standing line.
  void note(const std::string& line);

 private:
  std::ostream& out_;
  Style style_;
  std::mutex mutex_;
};

}  // namespace pgc::reconciler

#include "reconciler/progress.hpp"

#include "reconciler/event_log.hpp"

#include <cstdio>
#include <iomanip>
#include <sstream>

namespace pgc::reconciler {
namespace {

std::string seconds_since(std::chrono::steady_clock::time_point start) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << static_cast<double>(ms) / 1000.0 << "s";
  return s.str();
}

}  // namespace

Progress::Token Progress::begin(const std::string& where, const std::string& step) {
  Token token{where, step, std::chrono::steady_clock::now()};
  std::lock_guard lock(mutex_);
  if (style_ == Style::live) out_ << "\r\033[K  " << where << "  " << step << " ..." << std::flush;
  return token;
}

void Progress::update(const Token& token, const std::string& detail) {
  if (style_ != Style::live) return;
  std::lock_guard lock(mutex_);
  out_ << "\r\033[K  " << token.where << "  " << token.step << " ... " << detail << " (" << seconds_since(token.started)
       << ")" << std::flush;
}

void Progress::finish(const Token& token, const std::string& result) {
  if (style_ == Style::quiet) return;
  std::lock_guard lock(mutex_);
  if (style_ == Style::live) {
    out_ << "\r\033[K  " << token.where << "  " << token.step << "  " << result << " (" << seconds_since(token.started)
         << ")\n" << std::flush;
  } else {
    out_ << format_event(style_ == Style::json ? LogFormat::json : LogFormat::text, "step",
                         {{"host", token.where},
                          {"step", token.step},
                          {"duration", seconds_since(token.started)},
                          {"result", result}})
         << "\n" << std::flush;
  }
}

void Progress::note(const std::string& line) {
  if (style_ == Style::quiet) return;
  std::lock_guard lock(mutex_);
  if (style_ == Style::live) out_ << "\r\033[K";
  if (style_ == Style::json) out_ << format_event(LogFormat::json, "note", {{"message", line}}) << "\n" << std::flush;
  else out_ << line << "\n" << std::flush;
}

}  // namespace pgc::reconciler

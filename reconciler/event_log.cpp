#include "reconciler/event_log.hpp"

#include <nlohmann/json.hpp>

#include "reconciler/history.hpp"

namespace pgc::reconciler {
namespace {

std::string logfmt_value(const std::string& value) {
  bool plain = !value.empty();
  for (char c : value)
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) plain = false;
  if (plain) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string format_event(LogFormat format, const std::string& event, const LogFields& fields) {
  if (format == LogFormat::json) {
    nlohmann::json j = {{"time", now_rfc3339()}, {"event", event}};
    for (const auto& [k, v] : fields) j[k] = v;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string line = event;
  for (const auto& [k, v] : fields) line += " " + k + "=" + logfmt_value(v);
  return line;
}

void EventLog::line(const std::string& text) {
  std::lock_guard lock(mutex_);
  out_ << text << "\n" << std::flush;
}

void EventLog::event(const std::string& event, const LogFields& fields) {
  auto line = format_event(format_, event, fields);
  std::lock_guard lock(mutex_);
  out_ << line << "\n" << std::flush;
}

}  // namespace pgc::reconciler

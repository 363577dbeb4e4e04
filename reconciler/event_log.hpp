#pragma once
// Log lines for daemons and timers: one line per event, journald-friendly. Text is logfmt
// (`reconcile trigger=poll result=success duration=1.2s`); JSON is one object per line with
// "time" and "event". Thread-safe.

#include <mutex>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace pgc::reconciler {

enum class LogFormat { text, json };

using LogFields = std::vector<std::pair<std::string, std::string>>;

// One event as a line without the newline. Text quotes values with spaces, quotes or '='.
std::string format_event(LogFormat format, const std::string& event, const LogFields& fields);

class EventLog {
 public:
  EventLog(std::ostream& out, LogFormat format) : out_(out), format_(format) {}
  void event(const std::string& event, const LogFields& fields);
  // A line formatted elsewhere (e.g. Progress), written whole under the same lock.
  void line(const std::string& text);
  [[nodiscard]] LogFormat format() const { return format_; }

 private:
  std::ostream& out_;
  LogFormat format_;
  std::mutex mutex_;
};

// An ostream whose complete lines go to an EventLog, so that writers with their own stream
// (Progress) never interleave with events. Writes must come from one thread at a time.
class EventLogStream : public std::ostream {
 public:
  explicit EventLogStream(EventLog& log) : std::ostream(&buffer_), buffer_(log) {}

 private:
  class Buffer : public std::streambuf {
   public:
    explicit Buffer(EventLog& log) : log_(log) {}

   protected:
    int_type overflow(int_type c) override {
      if (c == traits_type::eof()) return traits_type::not_eof(c);
      if (c == '\n') {
        log_.line(pending_);
        pending_.clear();
      } else {
        pending_ += static_cast<char>(c);
      }
      return c;
    }

   private:
    EventLog& log_;
    std::string pending_;
  };
  Buffer buffer_;
};

}  // namespace pgc::reconciler

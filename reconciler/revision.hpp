#pragma once
// Where a run's desired state came from: a git revision, or plain directories. Its own header so
// that the source (source.hpp) and the run history (history.hpp) each depend on it, not on each
// other.

#include <string>

namespace pgc::reconciler {

// The desired state's origin: a git revision, or a plain directory (sha empty).
struct Revision {
  std::string source;     // URL or directory, passwords redacted
  std::string ref;        // as asked (--ref), may be empty
  std::string sha;
  std::string short_sha;
  std::string subject;
  bool rewound = false;   // not a descendant of the previous revision (force-push)
  bool stale = false;     // the fetch failed: this is the last good revision
  std::string fetch_error;

  // "abc1234 "Subject"" or the source when there is no commit.
  [[nodiscard]] std::string describe() const;
};

}  // namespace pgc::reconciler

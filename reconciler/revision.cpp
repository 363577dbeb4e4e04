// How a revision is described in messages and the history.
#include "reconciler/revision.hpp"

namespace pgc::reconciler {

std::string Revision::describe() const {
  if (sha.empty()) return source;
  std::string text = short_sha + " \"" + subject + "\"";
  if (stale) text += " (last good: fetch failed)";
  if (rewound) text += " (rewound: not a descendant of the previous revision)";
  return text;
}

}  // namespace pgc::reconciler

#pragma once
// Where something was declared in the manifests, and diagnostics that point there.

#include <string>
#include <vector>

namespace pgc {

// A position in a manifest file; line and column are 1-based, 0 means unknown.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;

  // "path/file.yaml:LINE:COL", or just the file when the position is unknown.
  [[nodiscard]] std::string str() const;
};

enum class Severity { error, warning };

// One finding about the manifests: `file:LINE:COL: field.path: message`.
struct Diagnostic {
  Severity severity = Severity::error;
  SourceLocation where;
  std::string field;    // dotted path, e.g. "spec.replication.mode"; may be empty
  std::string message;

  // The one-line form printed to users (warnings carry a "warning: " prefix before the field);
  // control characters from the manifests are escaped (\n, \t, \x1b), so it is always one line.
  [[nodiscard]] std::string str() const;
};

using Diagnostics = std::vector<Diagnostic>;

// True when any diagnostic is an error.
bool has_errors(const Diagnostics& diagnostics);

}  // namespace pgc

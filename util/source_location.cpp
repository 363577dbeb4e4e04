#include "util/source_location.hpp"

#include <algorithm>

namespace pgc {

std::string SourceLocation::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Diagnostic::str() const {
  std::string out = where.str();
  if (!out.empty()) out += ": ";
  if (severity == Severity::warning) out += "warning: ";
  if (!field.empty()) out += field + ": ";
  out += message;
  // One finding is one line, whatever the manifest held: control characters are shown escaped,
  // so a value can neither split the output nor send terminal escape sequences.
  std::string escaped;
  escaped.reserve(out.size());
  for (char c : out) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n') escaped += "\\n";
    else if (c == '\r') escaped += "\\r";
    else if (c == '\t') escaped += "\\t";
    else if (u < 0x20 || u == 0x7f) {
      static const char* digits = "0123456789abcdef";
      escaped += "\\x";
      escaped += digits[u >> 4];
      escaped += digits[u & 0xf];
    } else escaped += c;
  }
  return escaped;
}

bool has_errors(const Diagnostics& diagnostics) {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::error; });
}

}  // namespace pgc

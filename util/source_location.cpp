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
  static const char* digits = "0123456789abcdef";
  for (std::size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    auto u = static_cast<unsigned char>(c);
    auto next = [&](std::size_t k) -> unsigned char {
      return i + k < out.size() ? static_cast<unsigned char>(out[i + k]) : static_cast<unsigned char>(0);
    };
    // Unicode line breaks (C1 controls with NEL U+0085, U+2028, U+2029) end a line in many
    // terminals, log viewers and YAML readers: shown as \u escapes.
    if (u == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f) {
      escaped += "\\u00";
      escaped += digits[next(1) >> 4];
      escaped += digits[next(1) & 0xf];
      ++i;
      continue;
    }
    if (u == 0xe2 && next(1) == 0x80 && (next(2) == 0xa8 || next(2) == 0xa9)) {
      escaped += next(2) == 0xa8 ? "\\u2028" : "\\u2029";
      i += 2;
      continue;
    }
    if (c == '\n') escaped += "\\n";
    else if (c == '\r') escaped += "\\r";
    else if (c == '\t') escaped += "\\t";
    else if (u < 0x20 || u == 0x7f) {
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

#include "util/line_breaks.hpp"

namespace pgc {

namespace {

std::string hex_byte(unsigned char u) {
  static const char* digits = "0123456789abcdef";
  return std::string("\\x") + digits[u >> 4] + digits[u & 0xf];
}

std::string ascii_name(unsigned char u) {
  switch (u) {
    case '\n': return "a newline (LF)";
    case '\r': return "a carriage return (CR)";
    case '\t': return "a tab";
    case '\v': return "a vertical tab (VT)";
    case '\f': return "a form feed (FF)";
    case 0: return "a NUL byte";
    default: return "a control character (" + hex_byte(u) + ")";
  }
}

}  // namespace

std::optional<LineBreak> find_line_break(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto u = static_cast<unsigned char>(text[i]);
    if (u < 0x20 || u == 0x7f) return LineBreak{i, 1, ascii_name(u)};
    auto next = [&](std::size_t k) -> unsigned char {
      return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : static_cast<unsigned char>(0);
    };
    // C1 controls U+0080–U+009F are C2 80 – C2 9F in UTF-8; NEL (U+0085) is one of them.
    if (u == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f) {
      if (next(1) == 0x85) return LineBreak{i, 2, "U+0085 NEXT LINE (NEL)"};
      return LineBreak{i, 2, "a C1 control character (U+00" + hex_byte(next(1)).substr(2) + ")"};
    }
    // U+2028 / U+2029 are E2 80 A8 / E2 80 A9.
    if (u == 0xe2 && next(1) == 0x80 && (next(2) == 0xa8 || next(2) == 0xa9))
      return LineBreak{i, 3, next(2) == 0xa8 ? "U+2028 LINE SEPARATOR" : "U+2029 PARAGRAPH SEPARATOR"};
  }
  return std::nullopt;
}

std::string line_break_message(const LineBreak& found) {
  return "must not contain line breaks or control characters (found " + found.name + " at byte " +
         std::to_string(found.offset) + ")";
}

}  // namespace pgc

#pragma once
// Characters that end a line in some reader of the files pgconverge renders: PyYAML (Patroni's
// patroni.yml) breaks lines at LF, CR, U+0085, U+2028 and U+2029; PostgreSQL's and PgBouncer's
// config parsers at LF (and CR); NUL ends a C string early. No setting a manifest holds needs any
// of them, nor any other control character (VT, FF, ESC, TAB, DEL, C1).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pgc {

// One character found by find_line_break().
struct LineBreak {
  std::size_t offset = 0;  // byte offset in the text
  std::size_t length = 1;  // bytes of its UTF-8 encoding
  std::string name;        // "a newline (LF)", "U+2028 LINE SEPARATOR", "a control character (\\x0b)"
};

// The first C0 control (U+0000–U+001F, TAB included), DEL, C1 control (U+0080–U+009F, NEL
// U+0085 included), U+2028 LINE SEPARATOR or U+2029 PARAGRAPH SEPARATOR in text, or nullopt.
// Text that is not UTF-8 is still scanned byte by byte: a C1 or U+2028 needs its exact encoding.
std::optional<LineBreak> find_line_break(std::string_view text);

// The message for a value holding one: "must not contain line breaks or control characters
// (found U+2028 LINE SEPARATOR at byte 3)".
std::string line_break_message(const LineBreak& found);

}  // namespace pgc

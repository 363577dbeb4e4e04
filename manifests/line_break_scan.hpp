#pragma once
// The whole document of a managed kind, every key and every scalar, scanned for characters that
// end a line in some reader of the files pgconverge renders (util/line_breaks.hpp). Keys hold
// none of them; values may hold a newline or a tab (an annotation, a field pgconverge ignores)
// and the fields that reach a file refuse those too, but never NUL, CR, VT, FF, another
// control, DEL, a C1 control, U+0085, U+2028 or U+2029.

#include <string_view>

#include "manifests/yaml_value.hpp"
#include "util/source_location.hpp"

namespace pgc::manifests {

// Appends one error per key or value holding such a character, at its file:line:col and dotted
// field.
void scan_line_breaks(const YamlValue& document, Diagnostics& diagnostics);

// Whether scan_line_breaks reports this key / this value: the rules of single fields skip what it
// reported, so that each finding is printed once and no rule is skipped for its siblings.
bool scan_refuses_key(std::string_view key);
bool scan_refuses_value(std::string_view value);

}  // namespace pgc::manifests

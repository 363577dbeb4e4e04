#pragma once
// JSON pointers (RFC 6901) built from keys: every key is one token, whatever it holds. A key
// "postgresql/parameters/archive_command" is one key named so, never a path into postgresql.

#include <string>
#include <string_view>

namespace pgc {

// The reference token of one key: '~' → "~0", '/' → "~1" (in that order, RFC 6901 §3).
std::string pointer_token(std::string_view key);

// pointer + "/" + the token of key.
std::string pointer_append(std::string_view pointer, std::string_view key);

// The pointer as dotted text for messages ("/ttl" → "ttl", "/postgresql/parameters/x" →
// "postgresql.parameters.x"); each token unescaped ("~1" → "/", "~0" → "~").
std::string pointer_dotted(std::string_view pointer);

}  // namespace pgc

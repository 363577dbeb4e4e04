#pragma once
// Base64 (RFC 4648, the standard alphabet): the one encoder and the two decoders every layer
// shares. Pure functions, thread-safe.

#include <optional>
#include <string>
#include <string_view>

namespace pgc {

// Encodes with '=' padding ("f" → "Zg==").
std::string base64_encode(std::string_view in);

// Encodes without padding ("f" → "Zg"), as OpenSSH prints "SHA256:..." fingerprints.
std::string base64_encode_unpadded(std::string_view in);

// Lenient: characters outside the alphabet ('=' padding, whitespace, line breaks) are skipped.
// For text a trusted peer produced (etcd's JSON gateway), where a wrapped line must not fail.
std::string base64_decode(std::string_view in);

// Strict: stops at the first '=', and any other character outside the alphabet refuses the
// whole text (nullopt). For text a person or another program wrote (known_hosts key blobs,
// SCRAM verifiers read back from a host), where garbage must not decode to something else.
std::optional<std::string> base64_decode_strict(std::string_view in);

}  // namespace pgc

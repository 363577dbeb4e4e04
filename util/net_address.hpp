#pragma once
// Syntax of network addresses as manifests write them (no resolution, no C library): what may
// reach ssh, patroni.yml and pg_hba.conf. Pure functions, thread-safe.

#include <string>
#include <string_view>

namespace pgc {

// Dotted-quad IPv4, each part 0..255 without sign ("10.0.0.11").
bool is_ipv4(std::string_view text);

// RFC 4291 text form: up to 8 groups of 1..4 hex digits, at most one "::", an optional trailing
// dotted-quad ("fd00::1", "::ffff:10.0.0.1"). No zone ("%eth0"), no brackets.
bool is_ipv6(std::string_view text);

// A DNS host name (RFC 1123): dot-separated labels of letters, digits and '-', not starting or
// ending with '-', each at most 63 characters, at most 253 in all; an optional final dot. The
// last label is not all digits ("10.0.0.256" is a mistyped address, not a name).
bool is_dns_name(std::string_view text);

// "10.0.0.11:8008", "db1.example:8008" or "[fd00::1]:8008": an address joined with a port as
// URLs, Patroni and HTTP Host headers write it. Brackets go around any address holding a ':'
// (for a Host's validated address, exactly the IPv6 ones), since the port could not be told
// apart from it otherwise.
std::string host_port(std::string_view address, int port);

}  // namespace pgc

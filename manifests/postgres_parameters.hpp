#pragma once
// Which postgresql.conf parameters an SGPostgresConfig may set. A pusher describes how
// PostgreSQL behaves, never what it runs, loads or which files it reads and writes: parameters
// that run a shell command as postgres, load a library from a path, name a file or directory,
// or include other configuration files are refused; the ones pgconverge and Patroni set are
// refused too (StackGres' blocklist). PostgreSQL reads parameter names case-insensitively, and
// so does this check.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgc::manifests {

// Why name = value may not be set in an SGPostgresConfig, or nullopt when it may.
// The *_preload_libraries and jit_provider take library names PostgreSQL finds in $libdir (what
// the hosts' packages install), comma-separated: no path, no $libdir prefix.
std::optional<std::string> refused_parameter(std::string_view name, std::string_view value);

// Every parameter name refused whatever its value (lower case, sorted): for tests and docs.
std::vector<std::string> refused_parameter_names();

// The parameters that take library names (lower case).
const std::vector<std::string>& library_parameters();

}  // namespace pgc::manifests

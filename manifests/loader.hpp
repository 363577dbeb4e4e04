#pragma once
// Loading manifests: every *.yaml / *.yml under a directory, multi-document files allowed.

#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "manifests/model.hpp"
#include "util/source_location.hpp"

namespace pgc::manifests {

struct LoadResult {
  ManifestSet manifests;
  // Every error and warning of the whole run, in file/line order; errors make the set unusable.
  Diagnostics diagnostics;
  std::vector<std::string> files;  // the files read, sorted
};

// Reads every *.yaml/*.yml under dir (recursively, sorted by path; hidden entries skipped),
// checks each document against the schema of its kind, then runs validate(). File names in
// diagnostics are given as found under dir (e.g. "examples/seeds/sync-cluster.yaml").
LoadResult load_directory(const std::filesystem::path& dir);

// Loads several directories/files as one set (e.g. the lab's manifests plus a cluster's).
LoadResult load_paths(const std::vector<std::filesystem::path>& paths);

// Parses one YAML text as if read from file_name; does NOT run cross-document validation.
LoadResult parse_text(const std::string& text, const std::string& file_name);

// Cross-document and semantic validation (StackGres' rules, references, duplicates, DCS);
// appends diagnostics.
void validate(const ManifestSet& manifests, Diagnostics& diagnostics);

// The pgbouncer.ini [pgbouncer] parameters an SGPoolingConfig may not set (StackGres' blocklist):
// pgconverge sets them (listen_addr, listen_port, auth_*, unix_socket_dir…) or keeps them fixed.
const std::set<std::string, std::less<>>& pgbouncer_blocklist();

}  // namespace pgc::manifests

#pragma once
// What every command shares: the output streams, the exit code, common options and the
// load → validate → compile pass. Adding a command = one <name>_command.cpp defining
// register_<name>(), declared below and called once in cli.cpp.

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "manifests/loader.hpp"
#include "reconciler/cli/cli.hpp"
#include "reconciler/desired.hpp"

namespace pgc::cli {

// Where a command writes and what it returns. Results go to out; diagnostics, errors and
// progress go to err, so that stdout can be piped.
struct Context {
  std::ostream& out;
  std::ostream& err;
  int exit_code = 0;
};

// The commands. Each adds one subcommand to app whose callback sets context.exit_code.
void register_validate(CLI::App& app, Context& context);
void register_render(CLI::App& app, Context& context);
void register_serve(CLI::App& app, Context& context);
void register_git_sync(CLI::App& app, Context& context);  // hidden: the fetch's child process
void register_secrets(CLI::App& app, Context& context);

// -s/--source DIR|FILE[|URL], required, repeatable (one per -s); every path must exist.
enum class SourceKinds { paths, paths_and_git };
CLI::Option* add_source_option(CLI::App& command, std::vector<std::string>& sources,
                               SourceKinds kinds = SourceKinds::paths);

// --cluster NAME: only this SGCluster (every manifest is still loaded and validated).
CLI::Option* add_cluster_option(CLI::App& command, std::optional<std::string>& cluster);

// The manifests loaded, validated and compiled without errors.
struct Compiled {
  manifests::LoadResult loaded;
  reconciler::DesiredState desired;
  std::size_t warnings = 0;
};

// Loads every source as one set, validates it and compiles it (placement without history),
// printing every diagnostic — warnings too — to context.err as `file:LINE:COL: field: message`.
// Returns nullopt when there was any error (a summary line is printed to err as well).
std::optional<Compiled> load_and_compile(const std::vector<std::string>& sources, Context& context);

// Keeps only the named cluster; false (and an error printed) when there is no such cluster.
bool select_cluster(reconciler::DesiredState& desired, const std::optional<std::string>& cluster, Context& context);

// The number of manifests in a set, all kinds together.
std::size_t manifest_count(const manifests::ManifestSet& set);

}  // namespace pgc::cli

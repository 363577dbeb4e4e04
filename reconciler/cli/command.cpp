#include "reconciler/cli/command.hpp"

#include <algorithm>
#include <filesystem>
#include <tuple>

#include "manifests/kinds.hpp"
#include "providers/git/git_source.hpp"
#include "util/strings.hpp"

namespace pgc::cli {
namespace {

std::string counted(std::size_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::size_t count(const Diagnostics& diagnostics, Severity severity) {
  return static_cast<std::size_t>(std::count_if(diagnostics.begin(), diagnostics.end(),
                                                [&](const Diagnostic& d) { return d.severity == severity; }));
}

}  // namespace

CLI::Option* add_source_option(CLI::App& command, std::vector<std::string>& sources, SourceKinds kinds) {
  // An option function rather than add_option(name, vector): the latter makes g++ 12 emit a
  // false -Wnull-dereference inside CLI11's detail::split.
  auto* option = command
                     .add_option_function<std::vector<std::string>>(
                         "-s,--source", [&sources](const std::vector<std::string>& paths) { sources = paths; },
                         kinds == SourceKinds::paths_and_git
                             ? "Manifest directory or file (*.yaml, *.yml; directories recursively), or a git URL "
                               "(file://, https://, ssh://, user@host:path; see --ref, --path); repeat to merge "
                               "several, e.g. your Hosts' manifests plus a repository's clusters"
                             : "Manifest directory or file (*.yaml, *.yml; directories recursively); repeat to "
                               "merge several, e.g. your Hosts' manifests plus a cluster's")
                     ->required()
                     ->allow_extra_args(false);
  if (kinds == SourceKinds::paths) return option->check(CLI::ExistingPath)->type_name("DIR|FILE");
  return option
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            if (providers::is_git_url(value)) return {};
            return CLI::ExistingPath(value);
          },
          "PATH|URL"))
      ->type_name("DIR|FILE|URL");
}

CLI::Option* add_cluster_option(CLI::App& command, std::optional<std::string>& cluster) {
  return command.add_option("--cluster", cluster, "Only this SGCluster (metadata.name)")->type_name("NAME");
}

std::size_t manifest_count(const manifests::ManifestSet& set) {
  return manifests::count_manifests(set);
}

std::optional<Compiled> load_and_compile(const std::vector<std::string>& sources, Context& context) {
  Compiled result;
  std::vector<std::filesystem::path> paths(sources.begin(), sources.end());
  result.loaded = manifests::load_paths(paths);
  Diagnostics all = result.loaded.diagnostics;
  // Compile only a valid set: placement and configs assume validated manifests.
  if (!has_errors(all)) {
    auto compiled = reconciler::compile(result.loaded.manifests);
    all.insert(all.end(), compiled.diagnostics.begin(), compiled.diagnostics.end());
    result.desired = std::move(compiled.state);
  }
  std::stable_sort(all.begin(), all.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.where.file, a.where.line, a.where.column) < std::tie(b.where.file, b.where.line, b.where.column);
  });
  for (const auto& d : all) context.err << d.str() << "\n";
  result.warnings = count(all, Severity::warning);
  if (has_errors(all)) {
    context.err << "pgconverge: invalid manifests: " << counted(count(all, Severity::error), "error", "errors") << ", "
                << counted(result.warnings, "warning", "warnings") << "\n";
    return std::nullopt;
  }
  return result;
}

bool select_cluster(reconciler::DesiredState& desired, const std::optional<std::string>& cluster, Context& context) {
  if (!cluster) return true;
  if (!desired.find(*cluster)) {
    std::vector<std::string> names;
    for (const auto& c : desired.clusters) names.push_back(c.name);
    context.err << "pgconverge: no SGCluster named \"" << *cluster << "\" in the manifests"
                << (names.empty() ? std::string() : " (declared: " + join(names, ", ") + ")") << "\n";
    return false;
  }
  std::erase_if(desired.clusters, [&](const reconciler::DesiredCluster& c) { return c.name != *cluster; });
  return true;
}

}  // namespace pgc::cli

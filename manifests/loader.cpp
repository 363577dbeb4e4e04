#include "manifests/loader.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "manifests/document.hpp"
#include "manifests/yaml_value.hpp"

namespace pgc::manifests {

namespace fs = std::filesystem;

namespace {

bool is_manifest_file(const fs::path& path) {
  const auto ext = path.extension();
  return ext == ".yaml" || ext == ".yml";
}

bool is_hidden(const fs::path& path) {
  const auto name = path.filename().string();
  return !name.empty() && name.front() == '.' && name != "." && name != "..";
}

// The name diagnostics use: the path as the caller spelled it, without "./" noise.
std::string display(const fs::path& path) { return path.lexically_normal().generic_string(); }

void error(Diagnostics& diagnostics, const std::string& file, std::string message) {
  diagnostics.push_back(Diagnostic{Severity::error, SourceLocation{file, 0, 0}, "", std::move(message)});
}

// Every *.yaml/*.yml below dir (hidden entries skipped), sorted by path.
std::vector<fs::path> collect(const fs::path& dir, Diagnostics& diagnostics) {
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) {
    error(diagnostics, display(dir), "cannot read directory: " + ec.message());
    return files;
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      error(diagnostics, display(it->path()), "cannot read directory: " + ec.message());
      break;
    }
    if (is_hidden(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && is_manifest_file(it->path())) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.generic_string() < b.generic_string(); });
  return files;
}

// Parses one file's text into the set; a YAML syntax error drops the whole file.
void parse_into(const std::string& text, const std::string& file_name, LoadResult& result) {
  auto documents = parse_yaml(text, file_name);
  if (!documents) {
    const auto& e = documents.error();
    const bool limit = e.kind == YamlSyntaxError::Kind::limit;
    result.diagnostics.push_back(
        Diagnostic{Severity::error, e.where, "", (limit ? "" : "YAML syntax error: ") + e.message});
    return;
  }
  for (const auto& document : *documents) add_document(document, result.manifests, result.diagnostics);
}

void load_file(const fs::path& path, LoadResult& result) {
  const std::string name = display(path);
  // Refused before reading: a huge file must not be read into memory to be rejected.
  std::error_code size_error;
  if (auto size = fs::file_size(path, size_error); !size_error && size > k_max_file_bytes) {
    result.files.push_back(name);
    error(result.diagnostics, name, file_too_large(size));
    return;
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    error(result.diagnostics, name, "cannot read file");
    return;
  }
  result.files.push_back(name);
  parse_into(text.str(), name, result);
}

// File by file, then line and column; findings at the same place keep their order.
void sort_diagnostics(Diagnostics& diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.where.file, a.where.line, a.where.column) <
           std::tie(b.where.file, b.where.line, b.where.column);
  });
}

}  // namespace

LoadResult load_directory(const fs::path& dir) { return load_paths({dir}); }

LoadResult load_paths(const std::vector<fs::path>& paths) {
  LoadResult result;
  std::vector<fs::path> files;
  for (const auto& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      auto found = collect(path, result.diagnostics);
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(path, ec)) {
      files.push_back(path);
    } else {
      error(result.diagnostics, display(path), "no such file or directory");
    }
  }
  // The same file reached twice (overlapping arguments) is read once.
  std::set<fs::path> seen;
  for (const auto& file : files) {
    std::error_code ec;
    auto canonical = fs::weakly_canonical(file, ec);
    if (!seen.insert(ec ? file : canonical).second) continue;
    load_file(file, result);
  }
  validate(result.manifests, result.diagnostics);
  sort_diagnostics(result.diagnostics);
  return result;
}

LoadResult parse_text(const std::string& text, const std::string& file_name) {
  LoadResult result;
  result.files.push_back(file_name);
  parse_into(text, file_name, result);
  sort_diagnostics(result.diagnostics);
  return result;
}

}  // namespace pgc::manifests

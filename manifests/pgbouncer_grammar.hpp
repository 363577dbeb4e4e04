#pragma once
// PgBouncer's configuration grammar, as far as an SGPoolingConfig reaches pgbouncer.ini: keys of
// [pgbouncer], [databases] and [users] are words (^[A-Za-z0-9_.*-]+$: no '[', '=', '%', space or
// quote that would open a section, end the key or start a directive); database and user entries
// are connection strings of known options ("dbname=app pool_size=10"), a value quoted as
// 'it''s' when it holds spaces or quotes.

#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgc::manifests {

// ^[A-Za-z0-9_.*-]+$.
bool is_pgbouncer_key(std::string_view key);
inline constexpr const char* k_pgbouncer_key_rule = "^[A-Za-z0-9_.*-]+$";

// A connection-string value as PgBouncer reads it back: as is when it is a plain word, else in
// single quotes with ' doubled.
std::string quote_connection_value(std::string_view value);

// "k=v k='v w'" → {{k, v}, {k, "v w"}}, or why it is not one (PgBouncer's cstr parser).
std::expected<std::vector<std::pair<std::string, std::string>>, std::string> parse_connection_options(
    std::string_view text);

enum class EntrySection { databases, users };

// Why a [databases] or [users] entry's value may not be written, or nullopt: an option PgBouncer
// does not know there, or one that logs in as another role or changes how PgBouncer authenticates
// (auth_user, user, password: pgconverge's).
std::optional<std::string> entry_problem(EntrySection section, std::string_view value);

}  // namespace pgc::manifests

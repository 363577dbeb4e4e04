#pragma once
// The pg_hba lines an SGCluster declares (StackGres's
// spec.configurations.patroni.dynamicConfig.postgresql.pg_hba, which StackGres puts before its own
// lines). The manifest's author is not trusted with the hosts, and a pg_hba line decides who may
// log in as a superuser — who may then run programs on the host (COPY ... TO PROGRAM). So a line
// is one rule of a known connection type, with a method that needs a secret pgconverge holds (or
// refuses), no file of the host in it (no include directives, no @file), and no way around the
// cluster's TLS.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace pgc::manifests {

// Why pg_hba line `line` is refused, or nullopt when it is accepted. tls: the cluster's
// PostgreSQL TLS is on (spec.postgres.ssl.enabled), so a line that admits connections from the
// network without TLS is refused.
std::optional<std::string> refuse_pg_hba_line(std::string_view line, bool tls);

// The lines of dynamicConfig.postgresql.pg_hba as declared (strings of a list), in order; empty
// when there is none or it is not a list of strings (validation reports that).
std::vector<std::string> declared_pg_hba(const nlohmann::json& dynamic_config);

}  // namespace pgc::manifests

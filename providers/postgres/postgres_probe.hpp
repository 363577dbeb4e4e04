#pragma once
// Observing a PostgreSQL member over libpq (no libpq header here).

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "util/expected.hpp"

namespace pgc::providers {

struct PgConnection {
  std::string host;        // the member's address, as messages name it
  int port = 5432;
  std::string socket_dir;  // when set, libpq connects to <socket_dir>/.s.PGSQL.<port> instead of
                           // host:port (a tunnel to host:port through the host's SSH, Tunnels)
  std::string user = "postgres";
  std::string password;   // never logged
  std::string dbname = "postgres";
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds statement_timeout{5000};  // client-side: the query is cancelled
};

struct ReplicationRow {
  std::string application_name;
  std::string state;       // streaming, catchup, ...
  std::string sync_state;  // async, sync, potential, quorum
};

struct PgObservation {
  bool in_recovery = false;
  std::string server_version;              // "15.18 (Debian ...)" → server_version setting
  int server_version_num = 0;
  std::string synchronous_standby_names;
  std::vector<ReplicationRow> replication; // pg_stat_replication (primary only)
  std::vector<std::string> pending_restart;  // pg_settings names with pending_restart
  std::string system_identifier;             // pg_control_system(): the cluster's identity
};

// Errors read "postgres 10.0.0.12:5432: connect: <libpq's message on one line>",
// "...: query: ERROR: <server message>" or "...: query: timed out after 3s"; the password never
// appears. Thread-safe (each call has its own connection).

// Connects, reads everything in PgObservation, disconnects. Never hangs: the connection and
// each query are bounded by the timeouts (the query is cancelled with PQcancel).
Result<PgObservation> observe_postgres(const PgConnection& connection);

// Runs one SQL statement and returns the first column of each row. Bounded by
// statement_timeout: on expiry the query is cancelled and an error "timed out" returned.
Result<std::vector<std::string>> execute_sql(const PgConnection& connection, const std::string& sql);

}  // namespace pgc::providers

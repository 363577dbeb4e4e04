#pragma once
// The commands that touch hosts: plan, apply, status. Each returns the process exit code
// (0 ok / nothing to do, 1 error or not converged, 2 changes pending for plan).

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace pgc::cli {

struct ReconcileArgs {
  std::vector<std::string> sources;
  std::string state_dir;          // empty → default_state_dir()
  std::string ssh_identity;
  std::string known_hosts;
  bool accept_new_host_keys = false;  // --ssh-accept-new-host-keys
  int ssh_connect_timeout_s = 10;     // --ssh-connect-timeout
  std::optional<std::string> cluster;
  std::string output = "text";    // text | json
  int wait_timeout_s = 180;
  int lock_timeout_s = 60;        // apply: how long to wait for another run's lock
  int limit = 0;
  std::string ref;                // git source: branch, tag or commit
  std::string path;               // git source: manifests directory inside the repository
  bool verify_commits = false;
  std::string allowed_signers;
  std::string gpg_keyring;
  std::string git_credentials_file;  // --git-credentials-file / $PGCONVERGE_GIT_CREDENTIALS_FILE
  int git_timeout_s = 60;            // --git-timeout: hard deadline of the fetch
  std::string trigger = "manual"; // apply: what started it (history)                  // history: last N runs (0: all)
  int workers = 8;
  bool allow_write_outage = false;  // plan/apply: --allow-write-outage
  std::string progress = "auto";  // auto | live | log | quiet
};

// Adds the options shared by plan/apply/status to a subcommand.
void add_reconcile_options(CLI::App& command, ReconcileArgs& args);

int run_plan(const ReconcileArgs& args, std::ostream& out, std::ostream& err);
int run_apply(const ReconcileArgs& args, std::ostream& out, std::ostream& err);
int run_status(const ReconcileArgs& args, std::ostream& out, std::ostream& err);
int run_history(const ReconcileArgs& args, std::ostream& out, std::ostream& err);

// The passes up to diff for `secrets recover` (secrets_command.cpp): the source resolved, the
// hosts probed over SSH; the state dir into state_dir. Errors are printed to err (nullopt then).
struct PreparedRun;
std::unique_ptr<PreparedRun> prepare_for(const ReconcileArgs& args, std::ostream& err);
std::string state_dir_path(const ReconcileArgs& args);

// Registers plan, apply and status on the top-level app; the chosen command's exit code is
// written to exit_code when it runs.
void register_reconcile_commands(CLI::App& app, std::ostream& out, std::ostream& err, int& exit_code);

}  // namespace pgc::cli

#include "reconciler/cli/reconcile_commands.hpp"

#include <CLI/CLI.hpp>

#include <memory>
#include <mutex>

#include "reconciler/apply.hpp"
#include "reconciler/apply_run.hpp"
#include "reconciler/history.hpp"
#include "reconciler/passes/fetch_pass.hpp"
#include "reconciler/cli/command.hpp"
#include "reconciler/cli/stop_signals.hpp"
#include "reconciler/git_fetch.hpp"
#include "reconciler/cli/prepared_run.hpp"
#include "reconciler/plan_output.hpp"
#include "reconciler/reconcile.hpp"
#include "reconciler/source.hpp"
#include "reconciler/status.hpp"
#include "util/strings.hpp"
#include "util/terminal.hpp"

namespace pgc::cli {
namespace {

using namespace pgc::reconciler;

std::filesystem::path state_dir_of(const ReconcileArgs& args) {
  return args.state_dir.empty() ? default_state_dir() : std::filesystem::path(args.state_dir);
}

NewHostKeys new_host_keys(const ReconcileArgs& args) {
  return args.accept_new_host_keys ? NewHostKeys::accept : NewHostKeys::refuse;
}

// A warning line on err for each host key that --ssh-accept-new-host-keys recorded; whole lines
// under a lock, since hosts are connected in parallel.
HostKeyRecorder warn_on(std::ostream& err) {
  auto mutex = std::make_shared<std::mutex>();
  return [&err, mutex](const RecordedHostKey& key) {
    std::lock_guard lock(*mutex);
    err << ("warning: " + describe(key) + "\n") << std::flush;
  };
}

// The source options of the command line.
SourceOptions source_options(const ReconcileArgs& args, std::ostream& err) {
  SourceOptions source;
  source.locations = args.sources;
  source.ref = args.ref;
  source.path = args.path;
  source.state_dir = state_dir_of(args);
  source.ssh_identity = args.ssh_identity;
  source.known_hosts = args.known_hosts;
  source.new_host_keys = new_host_keys(args);
  source.on_host_key_recorded = warn_on(err);
  source.commits.verify = args.verify_commits;
  source.commits.ssh_allowed_signers = args.allowed_signers;
  source.commits.gpg_keyring = args.gpg_keyring;
  source.credentials_file = args.git_credentials_file;
  source.fetch_timeout = std::chrono::seconds(args.git_timeout_s);
  source.fetch_executable = k_self_executable;
  return source;
}

// The revision on stderr, with a warning when it is stale or rewound.
void report_revision(const Revision& revision, std::ostream& err) {
  if (revision.sha.empty()) return;
  err << "revision: " << revision.short_sha << " \"" << revision.subject << "\" (" << revision.source
      << (revision.ref.empty() ? "" : " " + revision.ref) << ")\n";
  if (revision.stale)
    err << "warning: fetch failed, using the last good revision " << revision.short_sha << ": "
        << revision.fetch_error << "\n";
  if (revision.rewound)
    err << "warning: " << revision.short_sha
        << " does not descend from the previously applied revision (force-push or rewind); applying it as the "
           "desired state\n";
}

// The run's options of the command line (what to load is the fetch pass's).
RunOptions run_options(const ReconcileArgs& args) {
  RunOptions run;
  run.state_dir = state_dir_of(args);
  run.cluster = args.cluster;
  run.workers = static_cast<std::size_t>(std::max(1, args.workers));
  run.plan.allow_write_outage = args.allow_write_outage;
  return run;
}

// The command line's side of the fetch pass: its warnings and the revision on stderr; a failure
// printed by the caller (plan, status) or here (apply: recorded, nothing applied).
FetchHooks fetch_hooks(std::ostream& err) {
  return FetchHooks{
      .warn = [&err](const std::string& warning) { err << "warning: " << warning << "\n"; },
      .fetched =
          [&err](const ResolvedSource& source, std::string&) {
            report_revision(source.revision, err);
            return true;
          },
      .failed = nullptr};
}

std::unique_ptr<World> world_for(const ReconcileArgs& args, std::ostream& err) {
  SshSettings ssh;
  ssh.identity_file = args.ssh_identity;
  ssh.known_hosts_file = args.known_hosts;
  ssh.connect_timeout_ms = args.ssh_connect_timeout_s * 1000;
  ssh.new_host_keys = new_host_keys(args);
  ssh.on_host_key_recorded = warn_on(err);
  return make_real_world(ssh);
}

Progress::Style progress_style(const ReconcileArgs& args) {
  if (args.progress == "live") return Progress::Style::live;
  if (args.progress == "log") return Progress::Style::log;
  if (args.progress == "quiet") return Progress::Style::quiet;
  if (args.progress == "json") return Progress::Style::json;
  return stderr_is_terminal() ? Progress::Style::live : Progress::Style::log;
}

// "Conditions: Ready=True (Converged), …" under a status table.
void print_conditions(const ClusterRecord& record, std::ostream& out) {
  out << "Conditions:\n";
  for (const auto& c : record.conditions) {
    out << "  " << c.type << "=" << c.status;
    if (!c.reason.empty()) out << " (" << c.reason << ")";
    if (!c.message.empty()) out << ": " << c.message;
    out << "\n";
  }
  if (!record.last_applied_revision.empty()) out << "Last applied revision: " << record.last_applied_revision << "\n";
}

}  // namespace

constexpr const char* k_allow_write_outage_help =
    "Restart or stop members even when that leaves a cluster without a writable primary or, in strict mode, "
    "without a sync standby for as long as it takes (held back otherwise, with the reason)";

void add_reconcile_options(CLI::App& command, ReconcileArgs& args) {
  add_source_option(command, args.sources, SourceKinds::paths_and_git);
  command.add_option("--state-dir", args.state_dir,
                     "Where secrets are kept (default $PGCONVERGE_STATE_DIR or ~/.local/state/pgconverge)");
  command.add_option("--ssh-identity", args.ssh_identity, "SSH private key (default: the SSH agent)");
  command.add_option("--known-hosts", args.known_hosts,
                     "known_hosts file for strict host key checking (default ~/.ssh/known_hosts)");
  command.add_option("--ssh-connect-timeout", args.ssh_connect_timeout_s,
                     "Seconds to wait for a host's SSH connection before reporting it unreachable (default 10)")
      ->check(CLI::Range(1, 600));
  command.add_flag("--ssh-accept-new-host-keys", args.accept_new_host_keys,
                   "Trust on first use: record the key of a host (or git server) not yet in --known-hosts, "
                   "like ssh -o StrictHostKeyChecking=accept-new; a changed key is still refused");
  command.add_option("--workers", args.workers, "Hosts observed in parallel")->check(CLI::Range(1, 256));
  command.add_option("--ref", args.ref, "Branch, tag or commit of a git -s (default: the remote's HEAD)");
  command.add_option("--path", args.path, "Directory inside a git -s that holds the manifests");
  command.add_flag("--verify-commits", args.verify_commits,
                   "Refuse a git revision whose commit is not signed by an allowed signer");
  command.add_option("--allowed-signers", args.allowed_signers,
                     "ssh-keygen allowed_signers file for --verify-commits (SSH signatures)");
  command.add_option("--gpg-keyring", args.gpg_keyring, "Keyring for --verify-commits (GPG signatures, gpgv)");
  command
      .add_option("--git-credentials-file", args.git_credentials_file,
                  "https credentials for a git -s without them, in git-credential-store format "
                  "(https://user:token@host per line); must be yours and mode 0600")
      ->envname("PGCONVERGE_GIT_CREDENTIALS_FILE");
  command.add_option("--git-timeout", args.git_timeout_s,
                     "Seconds the git fetch may take; it is killed then (the last good revision is used)")
      ->check(CLI::Range(1, 3600));
}

std::unique_ptr<PreparedRun> prepare_for(const ReconcileArgs& args, std::ostream& err) {
  RunOptions options = run_options(args);
  auto fetched = fetch_pass(source_options(args, err), fetch_hooks(err), options);  // fetch
  if (!fetched) {
    err << "error: " << fetched.error().message << "\n";
    return nullptr;
  }
  auto run = std::make_unique<PreparedRun>();
  run->world = world_for(args, err);
  run->revision = fetched->revision;
  Sessions sessions(*run->world);
  auto prepared = prepare(options, *run->world, sessions, err);  // load → … → plan
  if (!prepared) {
    err << "error: " << prepared.error().message << "\n";
    return nullptr;
  }
  run->prepared = std::move(*prepared);
  return run;
}

std::string state_dir_path(const ReconcileArgs& args) { return state_dir_of(args).string(); }

int run_plan(const ReconcileArgs& args, std::ostream& out, std::ostream& err) {
  auto run = prepare_for(args, err);
  if (!run) return 1;
  const auto& plan = run->prepared.plan;
  if (args.output == "json") {
    auto j = plan_to_json(plan);
    j["revision"] = to_json(run->revision);
    out << j.dump(2) << "\n";
  } else {
    print_plan(plan, out);
  }
  if (plan.has_errors()) return 1;
  return plan.has_changes() ? 2 : 0;
}

int run_apply(const ReconcileArgs& args, std::ostream& out, std::ostream& err) {
  ApplyRunOptions options;
  options.command = "apply";
  options.trigger = args.trigger;
  options.lock_wait = std::chrono::seconds(args.lock_timeout_s);
  options.source = source_options(args, err);
  options.fetch = fetch_hooks(err);
  options.fetch.failed = [&err](const Error& error) {
    err << "error: " << error.message << "; nothing was applied\n";
    return true;  // recorded
  };
  options.run = run_options(args);
  // SIGTERM/SIGINT: the fetch is killed, or apply stops between steps; recorded as "interrupted".
  const auto& stop = stop_on_signals();
  options.source.cancel = &stop;
  options.apply.stop = &stop;
  auto world = world_for(args, err);
  options.apply.wait_timeout = std::chrono::seconds(args.wait_timeout_s);
  options.apply.workers = options.run.workers;
  Progress progress(err, progress_style(args));
  return apply_run(options, *world, progress, out, err).exit_code;
}

int run_history(const ReconcileArgs& args, std::ostream& out, std::ostream& err) {
  auto records = History(state_dir_of(args)).load();
  if (!records) {
    err << "error: " << records.error().message << "\n";
    return 1;
  }
  if (args.limit > 0 && records->size() > static_cast<std::size_t>(args.limit))
    records->erase(records->begin(), records->end() - args.limit);
  if (args.output == "json") {
    nlohmann::json runs = nlohmann::json::array();
    for (const auto& r : *records) runs.push_back(to_json(r));
    out << nlohmann::json{{"runs", runs}}.dump(2) << "\n";
  } else {
    print_history(*records, out);
  }
  return 0;
}

int run_status(const ReconcileArgs& args, std::ostream& out, std::ostream& err) {
  auto run = prepare_for(args, err);
  if (!run) return 1;
  const auto& prepared = run->prepared;
  auto history = History(state_dir_of(args)).last();
  if (!history) err << "warning: " << history.error().message << "\n";
  const RunRecord* last_run = history && *history ? &**history : nullptr;
  if (last_run && !last_run->revision.source.empty())
    err << "last run: " << last_run->started_at << " " << last_run->result << " at " << last_run->revision.describe()
        << "\n";
  nlohmann::json all = nlohmann::json::array();
  bool first = true;
  for (const auto& e : prepared.plan.host_errors) err << "error: " << e << "\n";
  for (const auto& cluster : prepared.desired.clusters) {
    const auto& observed = prepared.observed.clusters.at(cluster.name);
    const ClusterPlan* cp = nullptr;
    for (const auto& p : prepared.plan.clusters)
      if (p.name == cluster.name) cp = &p;
    auto record = cluster_record(cluster, observed, cp, nullptr, Revision{}, last_run);
    if (args.output == "json") {
      auto j = status_to_json(cluster, observed, cp);
      nlohmann::json conditions = nlohmann::json::array();
      for (const auto& c : record.conditions)
        conditions.push_back({{"type", c.type}, {"status", c.status}, {"reason", c.reason}, {"message", c.message}});
      j["conditions"] = conditions;
      j["lastAppliedRevision"] = record.last_applied_revision;
      j["suspended"] = cluster.suspended;
      all.push_back(j);
      continue;
    }
    if (!first) out << "\n";
    first = false;
    print_status(cluster, observed, cp, out);
    print_conditions(record, out);
  }
  if (args.output == "json") out << nlohmann::json{{"clusters", all}}.dump(2) << "\n";
  return prepared.plan.has_errors() ? 1 : 0;
}

void register_reconcile_commands(CLI::App& app, std::ostream& out, std::ostream& err, int& exit_code) {
  static const char* exit_codes =
      "Exit codes: 0 nothing to do / success, 1 error (invalid manifests, unreachable host, not converged), "
      "2 changes pending (plan), 64 usage error.";
  auto args = std::make_shared<ReconcileArgs>();

  auto* plan = app.add_subcommand("plan", "Observe the hosts and print what apply would change, with its impact");
  add_reconcile_options(*plan, *args);
  plan->add_option("--cluster", args->cluster, "Only this SGCluster");
  plan->add_option("-o,--output", args->output, "text or json")->check(CLI::IsMember({"text", "json"}));
  plan->add_flag("--allow-write-outage", args->allow_write_outage, k_allow_write_outage_help);
  plan->footer(exit_codes);
  plan->callback([args, &out, &err, &exit_code] { exit_code = run_plan(*args, out, err); });

  auto* apply_cmd = app.add_subcommand("apply", "Converge the hosts to the manifests, then verify by observation");
  add_reconcile_options(*apply_cmd, *args);
  apply_cmd->add_option("--cluster", args->cluster, "Only this SGCluster");
  apply_cmd->add_flag("--allow-write-outage", args->allow_write_outage, k_allow_write_outage_help);
  apply_cmd->add_option("--wait-timeout", args->wait_timeout_s, "Bound in seconds on the whole apply: every wait and verification of all its passes "
                     "ends by then, and no pass starts after it")
      ->check(CLI::Range(0, 86400));
  apply_cmd->add_option("--lock-timeout", args->lock_timeout_s,
                        "Seconds to wait for another run holding the state dir's lock")
      ->check(CLI::Range(0, 86400));
  apply_cmd->add_option("--trigger", args->trigger, "Recorded in the history as what started this run")
      ->check(CLI::IsMember({"manual", "timer", "cron", "post-receive"}));
  apply_cmd->add_option("--progress", args->progress,
                        "auto, live (a line per host/step on a terminal), log (one logfmt line per step), json or quiet")
      ->check(CLI::IsMember({"auto", "live", "log", "json", "quiet"}));
  apply_cmd->footer(exit_codes);
  apply_cmd->callback([args, &out, &err, &exit_code] { exit_code = run_apply(*args, out, err); });

  auto* status = app.add_subcommand("status", "Show each cluster like `patronictl list`, declared vs observed");
  add_reconcile_options(*status, *args);
  status->add_option("cluster", args->cluster, "Only this SGCluster");
  status->add_option("-o,--output", args->output, "text or json")->check(CLI::IsMember({"text", "json"}));
  status->footer(exit_codes);
  status->callback([args, &out, &err, &exit_code] { exit_code = run_status(*args, out, err); });

  auto* history = app.add_subcommand("history", "Show the last runs: revision, result, changes and conditions");
  history->add_option("--state-dir", args->state_dir,
                      "Where runs are recorded (default $PGCONVERGE_STATE_DIR or ~/.local/state/pgconverge)");
  history->add_option("-n,--limit", args->limit, "Only the last N runs")->check(CLI::Range(1, 100000));
  history->add_option("-o,--output", args->output, "text or json")->check(CLI::IsMember({"text", "json"}));
  history->footer("Exit codes: 0 success, 1 error (unreadable history), 64 usage error.");
  history->callback([args, &out, &err, &exit_code] { exit_code = run_history(*args, out, err); });
}

}  // namespace pgc::cli

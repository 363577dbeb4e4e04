#include "reconciler/cli/reconcile_commands.hpp"

#include <CLI/CLI.hpp>

#include <memory>

#include "reconciler/apply.hpp"
#include "reconciler/cli/command.hpp"
#include "reconciler/plan_output.hpp"
#include "reconciler/reconcile.hpp"
#include "reconciler/status.hpp"
#include "util/terminal.hpp"

namespace pgc::cli {
namespace {

using namespace pgc::reconciler;

RunOptions run_options(const ReconcileArgs& args) {
  RunOptions options;
  for (const auto& s : args.sources) options.sources.emplace_back(s);
  options.state_dir = args.state_dir.empty() ? default_state_dir() : std::filesystem::path(args.state_dir);
  options.cluster = args.cluster;
  options.workers = static_cast<std::size_t>(std::max(1, args.workers));
  return options;
}

std::unique_ptr<World> world_for(const ReconcileArgs& args) {
  SshSettings ssh;
  ssh.identity_file = args.ssh_identity;
  ssh.known_hosts_file = args.known_hosts;
  return make_real_world(ssh);
}

Progress::Style progress_style(const ReconcileArgs& args) {
  if (args.progress == "live") return Progress::Style::live;
  if (args.progress == "log") return Progress::Style::log;
  if (args.progress == "quiet") return Progress::Style::quiet;
  return stderr_is_terminal() ? Progress::Style::live : Progress::Style::log;
}

}  // namespace

void add_reconcile_options(CLI::App& command, ReconcileArgs& args) {
  add_source_option(command, args.sources);
  command.add_option("--state-dir", args.state_dir,
                     "Where secrets are kept (default $PGCONVERGE_STATE_DIR or ~/.local/state/pgconverge)");
  command.add_option("--ssh-identity", args.ssh_identity, "SSH private key (default: the SSH agent)");
  command.add_option("--known-hosts", args.known_hosts,
                     "known_hosts file for strict host key checking (default ~/.ssh/known_hosts)");
  command.add_option("--workers", args.workers, "Hosts observed in parallel")->check(CLI::Range(1, 256));
}

int run_plan(const ReconcileArgs& args, std::ostream& out, std::ostream& err) {
  auto world = world_for(args);
  Sessions sessions(*world);
  auto prepared = prepare(run_options(args), *world, sessions, err);
  if (!prepared) {
    err << "error: " << prepared.error().message << "\n";
    return 1;
  }
  const auto& plan = prepared->plan;
  if (args.output == "json") out << plan_to_json(plan).dump(2) << "\n";
  else print_plan(plan, out);
  if (plan.has_errors()) return 1;
  return plan.has_changes() ? 2 : 0;
}

int run_apply(const ReconcileArgs& args, std::ostream& out, std::ostream& err) {
  auto world = world_for(args);
  Sessions sessions(*world);
  auto options = run_options(args);
  auto prepared = prepare(options, *world, sessions, err);
  if (!prepared) {
    err << "error: " << prepared.error().message << "\n";
    return 1;
  }
  const auto& plan = prepared->plan;
  print_plan(plan, out);
  if (auto saved = save_secrets(*prepared, options.state_dir); !saved) {
    err << "error: " << saved.error().message << "\n";
    return 1;
  }
  Progress progress(err, progress_style(args));
  ApplyOptions apply_options;
  apply_options.wait_timeout = std::chrono::seconds(args.wait_timeout_s);
  apply_options.workers = options.workers;
  auto report = apply(plan, prepared->loaded.manifests, prepared->desired, prepared->secrets, *world, sessions,
                      progress, apply_options);
  out << "\n";
  for (const auto& e : report.host_errors) out << "error: " << e << "\n";
  for (const auto& c : report.clusters) {
    if (c.converged && c.errors.empty()) {
      bool changed = false;
      for (const auto& cp : plan.clusters)
        if (cp.name == c.name) changed = !cp.changes.empty();
      out << "cluster " << c.name << ": converged" << (changed ? "" : " (no changes were needed)") << "\n";
      continue;
    }
    out << "cluster " << c.name << ": NOT converged\n";
    for (const auto& e : c.errors) out << "  error: " << e << "\n";
    for (const auto& d : c.differences) out << "  still different: " << d << "\n";
  }
  if (!plan.has_changes() && report.ok()) out << "Nothing to do: everything already matched the manifests.\n";
  return report.ok() ? 0 : 1;
}

int run_status(const ReconcileArgs& args, std::ostream& out, std::ostream& err) {
  auto world = world_for(args);
  Sessions sessions(*world);
  auto prepared = prepare(run_options(args), *world, sessions, err);
  if (!prepared) {
    err << "error: " << prepared.error().message << "\n";
    return 1;
  }
  nlohmann::json all = nlohmann::json::array();
  bool first = true;
  for (const auto& e : prepared->plan.host_errors) err << "error: " << e << "\n";
  for (const auto& cluster : prepared->desired.clusters) {
    const auto& observed = prepared->observed.clusters.at(cluster.name);
    const ClusterPlan* cp = nullptr;
    for (const auto& p : prepared->plan.clusters)
      if (p.name == cluster.name) cp = &p;
    if (args.output == "json") {
      all.push_back(status_to_json(cluster, observed, cp));
      continue;
    }
    if (!first) out << "\n";
    first = false;
    print_status(cluster, observed, cp, out);
  }
  if (args.output == "json") out << nlohmann::json{{"clusters", all}}.dump(2) << "\n";
  return prepared->plan.has_errors() ? 1 : 0;
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
  plan->footer(exit_codes);
  plan->callback([args, &out, &err, &exit_code] { exit_code = run_plan(*args, out, err); });

  auto* apply_cmd = app.add_subcommand("apply", "Converge the hosts to the manifests, then verify by observation");
  add_reconcile_options(*apply_cmd, *args);
  apply_cmd->add_option("--cluster", args->cluster, "Only this SGCluster");
  apply_cmd->add_option("--wait-timeout", args->wait_timeout_s, "Seconds to wait for each step and for convergence")
      ->check(CLI::Range(0, 86400));
  apply_cmd->add_option("--progress", args->progress, "auto, live, log or quiet")
      ->check(CLI::IsMember({"auto", "live", "log", "quiet"}));
  apply_cmd->footer(exit_codes);
  apply_cmd->callback([args, &out, &err, &exit_code] { exit_code = run_apply(*args, out, err); });

  auto* status = app.add_subcommand("status", "Show each cluster like `patronictl list`, declared vs observed");
  add_reconcile_options(*status, *args);
  status->add_option("cluster", args->cluster, "Only this SGCluster");
  status->add_option("-o,--output", args->output, "text or json")->check(CLI::IsMember({"text", "json"}));
  status->footer(exit_codes);
  status->callback([args, &out, &err, &exit_code] { exit_code = run_status(*args, out, err); });
}

}  // namespace pgc::cli

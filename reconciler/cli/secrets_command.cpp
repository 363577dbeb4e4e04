// `pgconverge secrets recover CLUSTER` and `pgconverge secrets rotate CLUSTER [KIND…]`: the
// deliberate ways out when a run refuses to generate secrets (reconciler/secret_source.hpp), and
// rotation as a planned change (reconciler/rotation.hpp). Neither prints a secret.

#include <CLI/CLI.hpp>

#include "reconciler/cli/command.hpp"
#include "reconciler/cli/prepared_run.hpp"
#include "reconciler/cli/reconcile_commands.hpp"
#include "reconciler/secret_source.hpp"
#include "reconciler/secrets.hpp"
#include "reconciler/sidecars.hpp"
#include "util/strings.hpp"

namespace pgc::cli {
namespace {

using namespace pgc::reconciler;

struct SecretsArgs {
  ReconcileArgs run;
  std::string cluster;
  std::string from;                 // recover: the host whose Patroni config to read
  std::vector<std::string> kinds;   // rotate: default all
};

const DesiredCluster* find_cluster_named(const DesiredState& desired, const std::string& name, Context& context) {
  const auto* c = desired.find(name);
  if (!c) context.err << "error: no SGCluster named \"" << name << "\" in the manifests\n";
  return c;
}

// Reads the cluster's secrets back from its hosts' Patroni configs (root over SSH, the probe) and
// saves them; refuses when the state dir already has them, or the configs disagree and --from
// does not pick one.
int recover(const SecretsArgs& args, Context& context) {
  auto run_args = args.run;
  run_args.cluster = args.cluster;
  auto run = prepare_for(run_args, context.err);
  if (!run) return 1;
  const auto& p = run->prepared;
  const auto* cluster = find_cluster_named(p.desired, args.cluster, context);
  if (!cluster) return 1;
  SecretStore store(state_dir_path(args.run));
  auto stored = store.load(cluster->namespace_, cluster->name);
  if (!stored) {
    context.err << "error: " << stored.error().message << "\n";
    return 1;
  }
  if (*stored) {
    context.err << "error: cluster " << cluster->name << ": " << store.file(cluster->namespace_, cluster->name).string()
                << " already holds its secrets; nothing recovered (to set new passwords: pgconverge secrets rotate)\n";
    return 1;
  }
  auto evidence = host_evidence(*cluster, p.observed.hosts);
  std::optional<ClusterSecrets> found;
  std::string why;
  if (!args.from.empty()) {
    auto it = evidence.configs.find(args.from);
    if (it == evidence.configs.end()) why = "host " + args.from + " holds no Patroni config of it with its secrets";
    else found = it->second;
  } else {
    found = agreed_secrets(evidence, &why);
    if (!found && evidence.configs.size() > 1) why += " (pick one with --from HOST)";
  }
  if (!found) {
    context.err << "error: cluster " << cluster->name << ": cannot recover its secrets: " << why;
    if (!evidence.unanswered.empty()) context.err << "; hosts that did not answer: " << join(evidence.unanswered, ", ");
    context.err << "\n";
    return 1;
  }
  recover_sidecar_secrets(*cluster, p.observed.hosts, *found);
  if (auto r = store.save(cluster->namespace_, cluster->name, *found); !r) {
    context.err << "error: " << r.error().message << "\n";
    return 1;
  }
  std::vector<std::string> kinds;
  for (const auto& [kind, value] : found->values) kinds.push_back(to_string(kind));
  context.out << "cluster " << cluster->name << ": recovered " << join(kinds, ", ") << " into "
              << store.file(cluster->namespace_, cluster->name).string() << "\n";
  return 0;
}

// Marks a rotation: new values for the kinds, beside the secrets; the next plan shows the step.
int rotate(const SecretsArgs& args, Context& context) {
  auto compiled = load_and_compile(args.run.sources, context);
  if (!compiled) return 1;
  const auto* cluster = find_cluster_named(compiled->desired, args.cluster, context);
  if (!cluster) return 1;
  std::set<SecretKind> kinds;
  for (const auto& name : args.kinds) {
    auto kind = parse_secret_kind(name);
    if (!kind) {
      std::vector<std::string> known;
      for (auto k : all_secret_kinds()) known.push_back(to_string(k));
      context.err << "error: unknown secret kind \"" << name << "\" (expected " << join(known, ", ") << ")\n";
      return 64;
    }
    kinds.insert(*kind);
  }
  if (kinds.empty()) kinds.insert(all_secret_kinds().begin(), all_secret_kinds().end());
  SecretStore store(state_dir_path(args.run));
  auto pending = store.load_rotation(cluster->namespace_, cluster->name);
  if (!pending) {
    context.err << "error: " << pending.error().message << "\n";
    return 1;
  }
  ClusterSecrets rotation = pending->value_or(ClusterSecrets{});
  auto fresh = generate_secrets();
  for (auto kind : kinds) rotation.values[kind] = fresh.get(kind);
  if (auto r = store.save_rotation(cluster->namespace_, cluster->name, rotation); !r) {
    context.err << "error: " << r.error().message << "\n";
    return 1;
  }
  std::vector<std::string> names;
  for (const auto& [kind, value] : rotation.values) names.push_back(to_string(kind));
  context.out << "cluster " << cluster->name << ": rotation of " << join(names, ", ")
              << " requested; `pgconverge plan` shows it, `pgconverge apply` sets the new passwords on the leader "
                 "first, then in the configs\n";
  return 0;
}

}  // namespace

void register_secrets(CLI::App& app, Context& context) {
  auto args = std::make_shared<SecretsArgs>();
  auto* secrets = app.add_subcommand("secrets", "Recover a cluster's secrets from its hosts, or rotate them");
  secrets->require_subcommand(1);

  auto* rec = secrets->add_subcommand(
      "recover", "Read a cluster's passwords back from its hosts' Patroni configs into the state dir (lost state dir)");
  add_reconcile_options(*rec, args->run);
  rec->add_option("cluster", args->cluster, "The SGCluster")->required();
  rec->add_option("--from", args->from, "The Host whose Patroni config to read (when the hosts' configs differ)");
  rec->callback([args, &context] { context.exit_code = recover(*args, context); });

  auto* rot = secrets->add_subcommand(
      "rotate", "Request new passwords for a cluster (all kinds, or the ones named); the next apply sets them");
  add_source_option(*rot, args->run.sources);
  rot->add_option("--state-dir", args->run.state_dir,
                  "Where secrets are kept (default $PGCONVERGE_STATE_DIR or ~/.local/state/pgconverge)");
  rot->add_option("cluster", args->cluster, "The SGCluster")->required();
  rot->add_option("kinds", args->kinds, "superuser, replication, rewind, restapi, pgbouncer (default: all)");
  rot->callback([args, &context] { context.exit_code = rotate(*args, context); });
}

}  // namespace pgc::cli

#include "reconciler/cli/cli.hpp"

#include <iostream>

#include "reconciler/cli/command.hpp"
#include "reconciler/cli/reconcile_commands.hpp"
#include "util/expected.hpp"

namespace pgc::cli {
namespace {

// The whole command line. Every command is registered here, once.
void build(CLI::App& app, Context& context) {
  app.name("pgconverge");
  app.description(
      "pgconverge converges PostgreSQL + Patroni + etcd clusters on plain hosts over SSH from StackGres "
      "manifests (SGCluster, SGPostgresConfig, SGInstanceProfile, SGPoolingConfig) plus Host and EtcdCluster.");
  app.set_version_flag("--version", std::string("pgconverge ") + k_version);
  app.require_subcommand(1);
  app.footer(k_exit_codes);  // set before the commands: each inherits it
  app.get_formatter()->column_width(28);
  register_validate(app, context);
  register_render(app, context);
  register_reconcile_commands(app, context.out, context.err, context.exit_code);  // plan, apply, status, history
  register_serve(app, context);
  register_git_sync(app, context);
  register_secrets(app, context);
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Context context{out, err};
  try {
    CLI::App app;
    build(app, context);
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 parses from the back
    try {
      app.parse(reversed);
    } catch (const CLI::ParseError& e) {
      int code = app.exit(e, out, err);  // --help and --version print to out and return 0
      return code == 0 ? exit_ok : exit_usage;
    }
    return context.exit_code;
  } catch (const FatalError& e) {
    err << "pgconverge: error: " << e.what() << "\n";
  } catch (const std::exception& e) {
    err << "pgconverge: internal error: " << e.what() << "\n";
  }
  return exit_error;
}

int run(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return run(args, std::cout, std::cerr);
}

}  // namespace pgc::cli

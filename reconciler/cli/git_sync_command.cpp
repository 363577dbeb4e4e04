// `pgconverge __git-sync --parent PID` (hidden): the child side of a git fetch with a hard
// deadline (reconciler/git_fetch.hpp). Not for people: a request in JSON on stdin, the answer on
// stdout.
#include <iostream>
#include <memory>

#include "reconciler/cli/command.hpp"
#include "reconciler/git_fetch.hpp"

namespace pgc::cli {

void register_git_sync(CLI::App& app, Context& context) {
  auto* command = app.add_subcommand(reconciler::k_git_sync_command, "");
  command->group("");  // hidden from --help
  auto parent = std::make_shared<long>(0);
  command->add_option("--parent", *parent)->required();
  command->callback([parent, &context] {
    context.exit_code = reconciler::run_git_sync_child(std::cin, context.out, *parent);
  });
}

}  // namespace pgc::cli

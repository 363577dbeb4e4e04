// `pgconverge validate`: load, validate and compile the manifests; report every finding.
#include <memory>
#include <string>

#include "reconciler/cli/command.hpp"

namespace pgc::cli {

void register_validate(CLI::App& app, Context& context) {
  auto* command = app.add_subcommand("validate", "Check manifests; every finding as file:LINE:COL: field: message");
  command->footer(
      "Checks the schema of every kind, StackGres' rules and references, and that every cluster can be placed "
      "on its Hosts. Errors and warnings go to stderr; on success \"N manifests OK\" goes to stdout.\n\n" +
      std::string(k_exit_codes));
  auto sources = std::make_shared<std::vector<std::string>>();
  add_source_option(*command, *sources);
  command->callback([sources, &context] {
    auto compiled = load_and_compile(*sources, context);
    if (!compiled) {
      context.exit_code = exit_error;
      return;
    }
    std::size_t n = manifest_count(compiled->loaded.manifests);
    context.out << n << (n == 1 ? " manifest OK" : " manifests OK") << "\n";
    context.exit_code = exit_ok;
  });
}

}  // namespace pgc::cli

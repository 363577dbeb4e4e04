// `pgconverge render`: the compiled desired state (Patroni and PostgreSQL configuration of every
// member) as YAML or JSON, secrets redacted.
#include <memory>
#include <string>

#include "reconciler/cli/command.hpp"
#include "reconciler/render.hpp"

namespace pgc::cli {

namespace {

struct RenderOptions {
  std::vector<std::string> sources;
  std::optional<std::string> cluster;
  std::string output = "yaml";
};

}  // namespace

void register_render(CLI::App& app, Context& context) {
  auto* command = app.add_subcommand("render", "Print the compiled Patroni/PostgreSQL configuration (YAML or JSON)");
  command->footer(
      "Per cluster: the Patroni dynamic configuration (DCS keys pgconverge owns) and packages; per member: its "
      "host, role, tags and local patroni.yml. Passwords appear as <redacted>: secrets live only in the state dir "
      "and on the hosts. Placement is computed from the manifests alone (plan/apply keep members where the hosts "
      "say they already are).\n\n" +
      std::string(k_exit_codes));
  auto options = std::make_shared<RenderOptions>();
  add_source_option(*command, options->sources);
  add_cluster_option(*command, options->cluster);
  command->add_option("-o,--output", options->output, "Output format")
      ->check(CLI::IsMember({"yaml", "json"}))
      ->capture_default_str()
      ->type_name("yaml|json");
  command->callback([options, &context] {
    auto compiled = load_and_compile(options->sources, context);
    if (!compiled || !select_cluster(compiled->desired, options->cluster, context)) {
      context.exit_code = exit_error;
      return;
    }
    auto format = reconciler::parse_render_format(options->output).value_or(reconciler::RenderFormat::yaml);
    context.out << reconciler::render(compiled->desired, format);
    context.exit_code = exit_ok;
  });
}

}  // namespace pgc::cli

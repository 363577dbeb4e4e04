// `pgconverge serve --config FILE`: the daemon (see reconciler/serve.hpp). SIGTERM and SIGINT
// stop it between steps (a fetch in progress is killed; a second signal aborts); a half-written
// file is impossible anyway (every write is atomic).
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>

#include "reconciler/cli/command.hpp"
#include "reconciler/cli/stop_signals.hpp"
#include "reconciler/git_fetch.hpp"
#include "reconciler/serve.hpp"

namespace pgc::cli {

void register_serve(CLI::App& app, Context& context) {
  auto* command = app.add_subcommand("serve", "Run as a daemon: poll the source, take webhooks, reconcile, serve /metrics");
  command->footer(
      "The config file (YAML) names the source (git URL, ref, path, commit verification), the state dir, SSH "
      "identity, known_hosts and whether to accept new host keys, poll and resync intervals, the HTTP listen "
      "address and the webhook receivers, whose secrets are read from files. See docs/gitops.md.\n\nExit codes: 0 "
      "stopped by SIGTERM/SIGINT, 1 "
      "invalid config or the listen address cannot be bound, 64 usage error.");
  auto config_file = std::make_shared<std::string>();
  auto log_format = std::make_shared<std::string>();
  command->add_option("--config", *config_file, "The daemon's YAML config file")->required()->check(CLI::ExistingFile);
  command->add_option("--log-format", *log_format, "text (logfmt) or json; overrides the config's logFormat")
      ->check(CLI::IsMember({"text", "json"}));
  command->callback([config_file, log_format, &context] {
    auto config = reconciler::load_serve_config(*config_file);
    if (!config) {
      context.err << "error: " << config.error().message << "\n";
      context.exit_code = exit_error;
      return;
    }
    if (*log_format == "json") config->log_format = reconciler::LogFormat::json;
    if (*log_format == "text") config->log_format = reconciler::LogFormat::text;
    const auto& stop = stop_on_signals();  // a second SIGTERM/SIGINT aborts at once
    config->source.fetch_executable = reconciler::k_self_executable;
    if (const char* file = std::getenv("PGCONVERGE_GIT_CREDENTIALS_FILE");
        config->source.credentials_file.empty() && file != nullptr)
      config->source.credentials_file = file;
    reconciler::EventLog log(context.err, config->log_format);
    config->ssh.on_host_key_recorded = reconciler::host_key_logger(log);
    config->source.on_host_key_recorded = config->ssh.on_host_key_recorded;
    auto world = reconciler::make_real_world(config->ssh);
    context.exit_code = reconciler::serve(*config, *world, log, stop);
  });
}

}  // namespace pgc::cli

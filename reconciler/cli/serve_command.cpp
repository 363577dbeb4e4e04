// `pgconverge serve --config FILE`: the daemon (see reconciler/serve.hpp). SIGTERM and SIGINT
// stop it between steps; a half-written file is impossible anyway (every write is atomic).
#include <atomic>
#include <csignal>
#include <memory>
#include <string>

#include "reconciler/cli/command.hpp"
#include "reconciler/serve.hpp"

namespace pgc::cli {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_stop_signal(int) { g_stop.store(true); }

}  // namespace

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
    std::signal(SIGTERM, on_stop_signal);
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGPIPE, SIG_IGN);
    reconciler::EventLog log(context.err, config->log_format);
    config->ssh.on_host_key_recorded = reconciler::host_key_logger(log);
    config->source.on_host_key_recorded = config->ssh.on_host_key_recorded;
    auto world = reconciler::make_real_world(config->ssh);
    context.exit_code = reconciler::serve(*config, *world, log, g_stop);
  });
}

}  // namespace pgc::cli

// What the host step runners share: lookups by name, checked commands, waits (step_support.hpp).

#include "reconciler/step_support.hpp"

#include "util/strings.hpp"

namespace pgc::reconciler {

Result<providers::CommandResult> run_checked(providers::RemoteHost& host, const std::vector<std::string>& argv,
                                             std::chrono::milliseconds timeout) {
  auto result = host.run(argv, timeout);
  PGC_TRY(result);
  if (result->exit_status != 0)
    return fail("host " + host.describe() + ": `" + join(argv, " ") + "` exited with status " +
                std::to_string(result->exit_status) + ": " + trim(result->err).substr(0, 300));
  return result;
}

Result<providers::RemoteHost*> StepSupport::session(const std::string& host_name) {
  if (const auto* h = context_.manifests.find_host(host_name)) return context_.sessions.get(*h);
  return fail("host " + host_name + " is not declared");
}

const DesiredCluster& StepSupport::cluster(const Change& change) const {
  for (const auto& c : context_.desired.clusters)
    if (c.name == change.cluster) return c;
  throw FatalError("internal: plan names unknown cluster " + change.cluster);
}

const DesiredMember& StepSupport::member(const Change& change) const {
  const auto* m = cluster(change).find_member(change.member);
  if (!m) throw FatalError("internal: plan names unknown member " + change.member);
  return *m;
}

const ClusterSecrets& StepSupport::secrets(const std::string& cluster_name) const {
  return context_.secrets.at(cluster_name);
}

Result<void> StepSupport::systemctl(const std::string& host_name, std::vector<std::string> args) {
  auto s = session(host_name);
  PGC_TRY(s);
  std::vector<std::string> argv{"systemctl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_checked(**s, argv, k_command_timeout);
  PGC_TRY(r);
  return {};
}

Result<ObservedCluster> StepSupport::wait(const DesiredCluster& c, const std::string& what,
                                          const Progress::Token& token,
                                          const std::function<bool(const ObservedCluster&)>& ready,
                                          std::optional<std::chrono::seconds> timeout, bool with_postgres) {
  WaitSpec spec{.stop = options().stop,
                .timeout = timeout.value_or(options().wait_timeout),
                .what = what,
                .with_postgres = with_postgres,
                .apply = options().deadline};
  return wait_for(c, secrets(c.name), context_.world, spec, context_.progress, token, ready);
}

Result<providers::RemoteHost*> StepSupport::leader_session(const DesiredCluster& c, const std::string& what,
                                                           const Progress::Token& token) {
  auto led = wait(c, what, token, [](const ObservedCluster& oc) {
    const auto* l = oc.leader();
    return l && l->state == "running";
  });
  PGC_TRY(led);
  const auto* m = c.find_member(led->leader()->name);
  if (!m) return fail("cluster " + c.name + ": leader " + led->leader()->name + " is not a declared member");
  return session(m->host);
}

}  // namespace pgc::reconciler

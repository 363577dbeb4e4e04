// The runner that acts on the hosts (step_runner.hpp): a visit that routes each step to the
// concern that carries it out. A step kind no concern runs does not compile.

#include <type_traits>

#include "reconciler/certificate_steps.hpp"
#include "reconciler/etcd_apply.hpp"
#include "reconciler/host_prep_steps.hpp"
#include "reconciler/member_steps.hpp"
#include "reconciler/sidecar_steps.hpp"
#include "reconciler/step_runner.hpp"

namespace pgc::reconciler {
namespace {

template <typename>
inline constexpr bool k_unrouted = false;

class HostStepRunner final : public StepRunner {
 public:
  explicit HostStepRunner(const StepContext& context)
      : host_prep_(context), members_(context), certificates_(context), etcd_(context), sidecars_(context) {}

  Result<void> check(const Change& change, const Progress::Token&) override {
    const auto* install = std::get_if<steps::InstallPackages>(&change.step);
    if (!install) return fail("internal: " + to_string(change.step) + " has no dry run");
    return host_prep_.check(*install, change);
  }

  Result<void> run(const Change& change, const Progress::Token& token) override {
    return std::visit(
        [&](const auto& step) -> Result<void> {
          if constexpr (requires { host_prep_.run(step, change, token); }) return host_prep_.run(step, change, token);
          else if constexpr (requires { members_.run(step, change, token); }) return members_.run(step, change, token);
          else if constexpr (requires { certificates_.run(step, change, token); })
            return certificates_.run(step, change, token);
          else if constexpr (requires { etcd_.run(step, change, token); }) return etcd_.run(step, change, token);
          else if constexpr (requires { sidecars_.run(step, change, token); }) return sidecars_.run(step, change, token);
          else static_assert(k_unrouted<std::decay_t<decltype(step)>>, "a step kind no concern runs");
        },
        change.step);
  }

 private:
  HostPrepSteps host_prep_;
  MemberSteps members_;
  CertificateSteps certificates_;
  EtcdSteps etcd_;
  SidecarSteps sidecars_;
};

}  // namespace

std::unique_ptr<StepRunner> make_host_step_runner(const StepContext& context) {
  return std::make_unique<HostStepRunner>(context);
}

}  // namespace pgc::reconciler

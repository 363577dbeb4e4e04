#pragma once
// Carrying out the member steps of a cluster's plan (planned by plan.cpp): its patroni.yml,
// reload, start (and the wait its start asks for), the DCS patch (verified by reading it back),
// restarts, switchovers, stops. A strict cluster's restart or stop that counts on another replica
// streaming waits for one first.

#include "reconciler/plan.hpp"
#include "reconciler/step_support.hpp"

namespace pgc::reconciler {

class MemberSteps {
 public:
  explicit MemberSteps(const StepContext& context) : support_(context) {}

  Result<void> run(const steps::WriteConfig& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::ReloadMember& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::StartMember& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::PatchDcs& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::RestartMember& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::Switchover& step, const Change& change, const Progress::Token& token);
  Result<void> run(const steps::StopMember& step, const Change& change, const Progress::Token& token);

 private:
  Result<void> await_streaming(const steps::AwaitStreamingExcept& except, const Change& change,
                               const Progress::Token& token);
  Result<void> release_standby_names(const DesiredCluster& c, const steps::PatchDcs& step, const Progress::Token& token);
  Result<void> verify_stored(const DesiredCluster& c, const nlohmann::json& patch, const Progress::Token& token);
  Result<std::string> sync_candidate(const DesiredCluster& c, const steps::Switchover& step, const Progress::Token& token);

  StepSupport support_;
};

}  // namespace pgc::reconciler

// The steps' names (plan text and `plan -o json` print them: they must not change) and which
// steps belong to an etcd.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "reconciler/etcd.hpp"
#include "reconciler/steps.hpp"

using namespace pgc::reconciler;

TEST_CASE("steps: every kind prints the name plan output has always shown") {
  const std::vector<std::pair<Step, std::string>> names = {
      {steps::ConfigureRepository{}, "configure-repository"},
      {steps::InstallPackages{}, "install-packages"},
      {steps::StopDebianCluster{}, "stop-debian-cluster"},
      {steps::WriteCertificate{}, "write-certificate"},
      {steps::WriteConfig{}, "write-config"},
      {steps::ReloadMember{}, "reload"},
      {steps::StartMember{}, "start"},
      {steps::PatchDcs{}, "patch-dcs"},
      {steps::RestartMember{}, "restart"},
      {steps::Switchover{}, "switchover"},
      {steps::StopMember{}, "stop"},
      {steps::WriteFile{}, "write-file"},
      {steps::Service{}, "service"},
      {steps::EnsureRoles{}, "ensure-roles"},
      {steps::RotateSecrets{}, "rotate-secrets"},
      {steps::EtcdWriteConfig{}, "etcd-write-config"},
      {steps::EtcdStart{}, "etcd-start"},
      {steps::EtcdRestart{}, "etcd-restart"},
      {steps::EtcdMemberAdd{}, "etcd-member-add"},
      {steps::EtcdMemberRemove{}, "etcd-member-remove"},
      {steps::EtcdStop{}, "etcd-stop"},
      {steps::EtcdWriteCertificate{}, "etcd-write-certificate"},
  };
  REQUIRE(names.size() == std::variant_size_v<Step>);
  for (const auto& [step, name] : names) CHECK(to_string(step) == name);
}

TEST_CASE("steps: the enumerated fields print as the progress lines and systemctl take them") {
  CHECK(to_string(steps::StartWait::running) == "running");
  CHECK(to_string(steps::StartWait::leader) == "leader");
  CHECK(to_string(steps::StartWait::streaming) == "streaming");
  CHECK(to_string(steps::StartWait::none) == "none");
  CHECK(to_string(steps::ServiceAction::start) == "start");
  CHECK(to_string(steps::ServiceAction::restart) == "restart");
  CHECK(to_string(steps::ServiceAction::reload) == "reload");
  CHECK(to_string(steps::ServiceAction::enable) == "enable");
  CHECK(to_string(steps::ServiceAction::stop) == "stop");
}

TEST_CASE("steps: only etcd steps name an etcd") {
  CHECK(etcd_name(steps::EtcdStart{.etcd = "e"}) == "e");
  CHECK(etcd_name(steps::EtcdStop{.etcd = "e"}) == "e");
  CHECK(etcd_name(steps::InstallPackages{}).empty());
  CHECK(etcd_name(steps::StopMember{}).empty());
  CHECK(is_etcd_step(steps::EtcdMemberAdd{}));
  CHECK_FALSE(is_etcd_step(steps::WriteConfig{}));
}

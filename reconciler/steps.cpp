// The names of the steps and of their enumerated fields, as plan output and progress print them.

#include "reconciler/steps.hpp"

namespace pgc::reconciler {

namespace steps {

std::string to_string(StartWait wait) {
  switch (wait) {
    case StartWait::running: return "running";
    case StartWait::leader: return "leader";
    case StartWait::streaming: return "streaming";
    case StartWait::none: return "none";
  }
  return "?";
}

std::string to_string(ServiceAction action) {
  switch (action) {
    case ServiceAction::start: return "start";
    case ServiceAction::restart: return "restart";
    case ServiceAction::reload: return "reload";
    case ServiceAction::enable: return "enable";
    case ServiceAction::stop: return "stop";
  }
  return "?";
}

}  // namespace steps

std::string to_string(const Step& step) {
  return std::visit([](const auto& s) { return std::string(s.k_name); }, step);
}

std::string etcd_name(const Step& step) {
  return std::visit(
      [](const auto& s) -> std::string {
        if constexpr (requires { s.etcd; }) return s.etcd;
        else return "";
      },
      step);
}

}  // namespace pgc::reconciler

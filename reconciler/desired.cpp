#include "reconciler/desired.hpp"

namespace pgc::reconciler {

std::string secret_reference(SecretKind kind) { return k_secret_prefix + to_string(kind); }

const DesiredCluster* DesiredState::find(const std::string& name) const {
  for (const auto& c : clusters)
    if (c.name == name) return &c;
  return nullptr;
}

const DesiredMember* DesiredCluster::find_member(const std::string& member_name) const {
  for (const auto& m : members)
    if (m.name == member_name) return &m;
  return nullptr;
}

}  // namespace pgc::reconciler

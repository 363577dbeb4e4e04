#include "reconciler/observed.hpp"

namespace pgc::reconciler {

const ObservedMember* ObservedCluster::leader() const {
  for (const auto& m : members)
    if (m.role == "leader" || m.role == "master" || m.role == "standby_leader") return &m;
  return nullptr;
}

const ObservedMember* ObservedCluster::member(const std::string& member_name) const {
  for (const auto& m : members)
    if (m.name == member_name) return &m;
  return nullptr;
}

std::vector<std::string> ObservedCluster::sync_standbys() const {
  std::vector<std::string> out;
  for (const auto& m : members)
    if (m.role == "sync_standby") out.push_back(m.name);
  return out;
}

std::vector<std::string> ObservedCluster::streaming_replicas() const {
  std::vector<std::string> out;
  for (const auto& m : members) {
    bool replica = m.role == "replica" || m.role == "sync_standby";
    if (replica && (m.state == "running" || m.state == "streaming")) out.push_back(m.name);
  }
  return out;
}

}  // namespace pgc::reconciler

// reconciler/desired: looking clusters and members up by name.

#include <catch2/catch.hpp>

#include "reconciler/desired.hpp"

using pgc::reconciler::DesiredCluster;
using pgc::reconciler::DesiredMember;
using pgc::reconciler::DesiredState;

TEST_CASE("desired: find and find_member look up by exact name", "[desired]") {
  DesiredState state;
  state.clusters.resize(2);
  state.clusters[0].name = "alpha";
  state.clusters[1].name = "beta";
  state.clusters[1].members.resize(2);
  state.clusters[1].members[0].name = "beta-0";
  state.clusters[1].members[1].name = "beta-1";

  CHECK(state.find("beta") == &state.clusters[1]);
  CHECK(state.find("Beta") == nullptr);
  CHECK(state.find("") == nullptr);
  const DesiredCluster& beta = state.clusters[1];
  CHECK(beta.find_member("beta-1") == &beta.members[1]);
  CHECK(beta.find_member("beta-0") == &beta.members[0]);
  CHECK(beta.find_member("beta") == nullptr);
  CHECK(state.clusters[0].find_member("beta-0") == nullptr);
}

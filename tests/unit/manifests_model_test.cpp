// manifests/model: the ManifestSet's lookups.

#include <catch2/catch.hpp>

#include "manifests/model.hpp"

using pgc::manifests::ManifestSet;

TEST_CASE("model: find_host looks a Host up by its exact metadata.name", "[manifests][model]") {
  ManifestSet set;
  set.hosts.resize(3);
  set.hosts[0].metadata.name = "db1";
  set.hosts[1].metadata.name = "db2";
  set.hosts[2].metadata.name = "db2";  // a duplicate (validation reports it): the first wins
  CHECK(set.find_host("db1") == &set.hosts[0]);
  CHECK(set.find_host("db2") == &set.hosts[1]);
  CHECK(set.find_host("DB1") == nullptr);
  CHECK(set.find_host("db3") == nullptr);
}

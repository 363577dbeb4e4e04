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

TEST_CASE("model: parse_iso8601_duration reads StackGres's PnDTnHnMn.nS", "[manifests][model]") {
  using pgc::manifests::parse_iso8601_duration;
  constexpr long long day = 24 * 3600;
  CHECK(parse_iso8601_duration("P395D") == 395 * day);
  CHECK(parse_iso8601_duration("PT720H") == 720 * 3600);
  CHECK(parse_iso8601_duration("P1DT2H3M4S") == day + 2 * 3600 + 3 * 60 + 4);
  CHECK(parse_iso8601_duration("PT1.5S") == 1);
  CHECK(parse_iso8601_duration("P2W") == 14 * day);
  CHECK(parse_iso8601_duration("P1Y1M") == 365 * day + 30 * day);
  CHECK(parse_iso8601_duration("PT1M") == 60);  // M after T is minutes, before T months
  for (const char* bad : {"", "P", "PT", "P1DT", "13 months", "395D", "P-1D", "P1.5D", "PT1H1H", "P1D1Y", "PT0S",
                          "P1DT1D", "P101Y", "P1234567890D", "p1d", "P1D "})
    CHECK_FALSE(parse_iso8601_duration(bad).has_value());
}

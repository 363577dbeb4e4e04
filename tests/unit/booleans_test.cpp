// util/booleans: the three rules for what counts as "on", and the words each one leaves alone.

#include <catch2/catch.hpp>

#include "util/booleans.hpp"

using pgc::patroni_boolean;
using pgc::postgres_on;
using pgc::yaml_boolean;

TEST_CASE("booleans: YAML's core schema takes three spellings of true and of false", "[booleans]") {
  for (const char* t : {"true", "True", "TRUE"}) CHECK(yaml_boolean(t) == true);
  for (const char* f : {"false", "False", "FALSE"}) CHECK(yaml_boolean(f) == false);
  // YAML 1.1's words and mixed case are strings.
  for (const char* s : {"yes", "no", "on", "off", "y", "n", "1", "0", "tRUE", "FaLsE", " true", ""}) {
    INFO(s);
    CHECK_FALSE(yaml_boolean(s));
  }
}

TEST_CASE("booleans: PostgreSQL's on is on, true, yes or 1 in any case", "[booleans]") {
  for (const char* on : {"on", "ON", "On", "true", "TRUE", "yes", "Yes", "1", "  on ", "\ttrue\n"}) {
    INFO(on);
    CHECK(postgres_on(on));
  }
  for (const char* off : {"off", "false", "no", "0", "", "onn", "2", "o n", "enabled"}) {
    INFO(off);
    CHECK_FALSE(postgres_on(off));
  }
}

TEST_CASE("booleans: Patroni's compared settings read on/true/yes and off/false/no, not 1 or 0", "[booleans]") {
  for (const char* on : {"on", "ON", "true", "True", "yes", "YES"}) CHECK(patroni_boolean(on) == true);
  for (const char* off : {"off", "Off", "false", "FALSE", "no", "No"}) CHECK(patroni_boolean(off) == false);
  for (const char* other : {"1", "0", " on", "on ", "", "y", "n", "enabled"}) {
    INFO(other);
    CHECK_FALSE(patroni_boolean(other));
  }
}

// util/duration: the message format (the same text the Patroni, PostgreSQL and SSH errors
// always printed) and the configuration syntax, with what it refuses.

#include <catch2/catch.hpp>

#include <chrono>

#include "util/duration.hpp"

using namespace std::chrono_literals;
using pgc::format_duration;
using pgc::parse_duration;

TEST_CASE("duration: format prints whole seconds, fractions and milliseconds", "[duration]") {
  CHECK(format_duration(1s) == "1s");
  CHECK(format_duration(60s) == "60s");
  CHECK(format_duration(90s) == "90s");  // never "1m30s": messages and timeout(1) read seconds
  CHECK(format_duration(1500ms) == "1.5s");
  CHECK(format_duration(1250ms) == "1.25s");
  CHECK(format_duration(1001ms) == "1.001s");
  CHECK(format_duration(1010ms) == "1.01s");
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(999ms) == "999ms");
  CHECK(format_duration(0ms) == "0ms");
}

TEST_CASE("duration: parse reads a sequence of numbers with units", "[duration]") {
  CHECK(parse_duration("0s") == 0ms);
  CHECK(parse_duration("90s") == 90s);
  CHECK(parse_duration("1m30s") == 90s);
  CHECK(parse_duration("1h30m") == 90min);
  CHECK(parse_duration("500ms") == 500ms);
  CHECK(parse_duration("1s500ms") == 1500ms);
  CHECK(parse_duration("999999999h") == std::chrono::hours(999999999));
  // What format_duration prints in whole units reads back.
  CHECK(parse_duration(format_duration(250ms)) == 250ms);
  CHECK(parse_duration(format_duration(42s)) == 42s);
}

TEST_CASE("duration: parse refuses garbage and overflow", "[duration]") {
  for (const char* text : {"", "s", "10", "10x", "1.5s", "-1s", "+1s", " 1s", "1s ", "1 s", "1S", "1sec",
                           "1d", "1000000000s", "1m30", "ms"}) {
    INFO(text);
    CHECK_FALSE(parse_duration(text));
  }
  // Every number fits, but the sum no longer does in milliseconds.
  std::string many;
  for (int i = 0; i < 3000; ++i) many += "999999999h";
  CHECK_FALSE(parse_duration(many));
}

#include <catch2/catch.hpp>

#include "reconciler/yaml_json.hpp"

using namespace pgc::reconciler;

TEST_CASE("yaml_json: booleans stay booleans and strings that look like other types are quoted") {
  nlohmann::json doc = {{"tags", {{"nofailover", false}, {"noloadbalance", true}}},
                        {"s", {{"on", "on"}, {"n", "10"}, {"plain", "md5"}, {"space", "a b"}}},
                        {"list", {"host all all 0.0.0.0/0 scram-sha-256"}},
                        {"n", 5}};
  std::string text = to_yaml(doc);
  CHECK(text.find("nofailover: false") != std::string::npos);
  CHECK(text.find("\"10\"") != std::string::npos);
  auto back = yaml_to_json(text);
  REQUIRE(back);
  CHECK(*back == doc);
}

TEST_CASE("yaml_json: invalid YAML is an error") { CHECK_FALSE(yaml_to_json("a: [1, 2")); }

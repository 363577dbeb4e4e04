#include <catch2/catch.hpp>

#include <string>
#include <vector>

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

TEST_CASE("yaml_json: hostile manifest values come back from patroni.yml text verbatim") {
  // What SGPostgresConfig values and dynamicConfig strings may hold (validation only refuses
  // control characters): every YAML indicator, shell metacharacters, quotes and non-ASCII. Each
  // must be written as one string scalar that reads back unchanged, as key and as value.
  const std::vector<std::string> values{
      "$(touch /tmp/pwned)", "`id`", "'single'", "\"double\"", "it's", "a\"b'c", "; reboot", "a && b", "a || b",
      "a | b", "*", "?", "[a]", "{a: b}", "- item", "-", "key: value", "a #comment", "#", "&anchor", "*alias",
      "!tag", "%directive", "@at", "`", ">", "|", "~", "null", "true", "0x1F", "1e3", ".inf", "", " leading",
      "trailing ", "é 日本 🐘", "\\", "a\\nb", "---", "...", "<<", "=", ",", "$HOME", "${PGDATA}"};
  nlohmann::json doc = nlohmann::json::object();
  nlohmann::json parameters = nlohmann::json::object();
  for (std::size_t i = 0; i < values.size(); ++i) parameters["p" + std::to_string(i)] = values[i];
  doc["postgresql"]["parameters"] = parameters;
  doc["list"] = values;
  for (const auto& v : values)
    if (!v.empty()) doc["keys"][v] = v;
  auto back = yaml_to_json(to_yaml(doc));
  REQUIRE(back);
  CHECK(*back == doc);
}

TEST_CASE("regression: patroni.yml never holds a raw Unicode line break, in a key or a value", "[yaml_json]") {
  // PyYAML (Patroni) reads U+0085, U+2028 and U+2029 as line breaks (YAML 1.1): written raw they
  // would end a scalar early, or a plain key, and start another setting.
  const std::vector<std::string> breaks{"\xc2\x85", "\xe2\x80\xa8", "\xe2\x80\xa9", "\n", "\r", "\v", "\f",
                                        std::string(1, '\0'), "\t", "\x1b"};
  for (const auto& b : breaks) {
    for (const std::string& text : {b, "a" + b + "b", "8MB" + b + "listen_addresses: '*'", b + "x: 1"}) {
      nlohmann::json doc{{"postgresql", {{"parameters", {{"work_mem", text}, {"k" + text, "v"}}}}}, {text, 1}};
      const std::string yaml = to_yaml(doc);
      INFO(yaml);
      for (const char* raw : {"\xc2\x85", "\xe2\x80\xa8", "\xe2\x80\xa9", "\r", "\v", "\f", "\x1b"})
        CHECK(yaml.find(raw) == std::string::npos);
      CHECK(yaml.find('\0') == std::string::npos);
      auto back = yaml_to_json(yaml);
      REQUIRE(back);
      CHECK(*back == doc);
    }
  }
}

TEST_CASE("yaml_json: keys YAML would read otherwise are quoted and read back as written", "[yaml_json]") {
  nlohmann::json doc{{"a: b", 1}, {"#c", 2}, {"- d", 3}, {"true", 4}, {"10", 5}, {"caf\xc3\xa9", 6}, {"[x]", 7}};
  auto back = yaml_to_json(to_yaml(doc));
  REQUIRE(back);
  CHECK(*back == doc);
}

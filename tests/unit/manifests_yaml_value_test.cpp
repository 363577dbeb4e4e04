#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "manifests/yaml_value.hpp"

using namespace pgc::manifests;

namespace {

YamlValue parse_one(const std::string& text) {
  auto documents = parse_yaml(text, "t.yaml");
  REQUIRE(documents.has_value());
  REQUIRE(documents->size() == 1);
  return documents->front();
}

}  // namespace

TEST_CASE("parse_yaml records 1-based positions of keys and values", "[manifests][yaml]") {
  auto doc = parse_one("a: 1\nb:\n  c: x\nlist:\n  - one\n  - two\n");
  REQUIRE(doc.kind == YamlValue::Kind::map);
  REQUIRE(doc.entries.size() == 3);
  CHECK(doc.where.str() == "t.yaml:1:1");
  CHECK(doc.entries[0].key == "a");
  CHECK(doc.entries[0].key_where.str() == "t.yaml:1:1");
  CHECK(doc.entries[0].value.where.str() == "t.yaml:1:4");
  const YamlEntry& b = doc.entries[1];
  REQUIRE(b.value.kind == YamlValue::Kind::map);
  CHECK(b.value.entries[0].key_where.str() == "t.yaml:3:3");
  const YamlValue* list = doc.find("list");
  REQUIRE(list);
  REQUIRE(list->kind == YamlValue::Kind::list);
  REQUIRE(list->items.size() == 2);
  CHECK(list->items[1].text == "two");
  CHECK(list->items[1].where.str() == "t.yaml:6:5");
}

TEST_CASE("parse_yaml splits documents and drops empty ones", "[manifests][yaml]") {
  auto documents = parse_yaml("---\n# only a comment\n---\na: 1\n---\n---\nb: 2\n...\n", "t.yaml");
  REQUIRE(documents.has_value());
  REQUIRE(documents->size() == 2);
  CHECK((*documents)[0].entries[0].key == "a");
  CHECK((*documents)[1].entries[0].key == "b");
  CHECK((*documents)[1].entries[0].key_where.str() == "t.yaml:7:1");
  CHECK(parse_yaml("", "t.yaml")->empty());
}

TEST_CASE("parse_yaml reports syntax errors with 1-based line and column", "[manifests][yaml]") {
  auto flow = parse_yaml("a: [1\nb: 2\n", "t.yaml");
  REQUIRE_FALSE(flow.has_value());
  CHECK(flow.error().where.str() == "t.yaml:2:2");
  CHECK(flow.error().message == "end of sequence flow not found");

  auto value = parse_yaml("spec:\n  mode: a: b\n", "t.yaml");
  REQUIRE_FALSE(value.has_value());
  CHECK(value.error().where.str() == "t.yaml:2:10");  // at the second colon
  CHECK(value.error().message == "illegal map value");
}

TEST_CASE("regression: a stray ',' is a syntax error, not an endless loop that eats all memory (fuzz OOM)",
          "[manifests][yaml]") {
  // yaml-cpp 0.7's LoadAll returns a null document for a ',' outside [] or {} without consuming
  // it, forever (jbeder/yaml-cpp#1040); the fuzzer found it as an out-of-memory.
  const std::string hint = " (a flow indicator outside [...] or {...}; quote the value)";
  for (const auto& [text, where] : std::vector<std::pair<std::string, std::string>>{
           {",", "t.yaml:1:1"},
           {", members on the lab's Hosts\n", "t.yaml:1:1"},
           {"# comment\n,n# x\napiVersion: v1\n", "t.yaml:2:1"},
           {"a: 1\n---\n,\n", "t.yaml:3:1"},
           {"[a, b]\n,", "t.yaml:2:1"}}) {
    INFO(text);
    auto r = parse_yaml(text, "t.yaml");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().where.str() == where);
    CHECK(r.error().message == "unexpected ','" + hint);
  }
  // Commas where YAML allows them are untouched.
  auto doc = parse_one("a: [1, 2]\nb: x, y\nc: {d: 1, e: 2}\n");
  CHECK(doc.find("b")->text == "x, y");
  CHECK(doc.find("a")->items.size() == 2);
}

TEST_CASE("quoted scalars are strings, plain ones resolve as YAML 1.2 core types", "[manifests][yaml]") {
  auto doc = parse_one(
      "i: 15\nq: '15'\nt: !!str 15\nf: 16.1\nb: true\nB: False\ny: yes\nn: ~\ne:\ns: hello\nneg: -3\n");
  auto type = [&](const char* key) { return scalar_type(*doc.find(key)); };
  CHECK(type("i") == ScalarType::integer);
  CHECK(type("q") == ScalarType::string);
  CHECK(doc.find("q")->quoted);
  CHECK(type("t") == ScalarType::string);
  CHECK(type("f") == ScalarType::floating);
  CHECK(doc.find("f")->text == "16.1");  // the text as written, never re-formatted
  CHECK(type("b") == ScalarType::boolean);
  CHECK(type("B") == ScalarType::boolean);
  CHECK(type("y") == ScalarType::string);  // YAML 1.1 "yes" is not a boolean
  CHECK(type("n") == ScalarType::null);
  CHECK(type("e") == ScalarType::null);
  CHECK(type("s") == ScalarType::string);
  CHECK(scalar_integer(*doc.find("neg")) == -3);
  CHECK_FALSE(scalar_integer(*doc.find("q")).has_value());
}

TEST_CASE("to_json keeps YAML types and the first of duplicate keys", "[manifests][yaml]") {
  auto doc = parse_one(
      "ttl: 30\nname: \"30\"\nstrict: false\nratio: 0.5\nnothing: ~\nlist: [a, 1]\nmap: {k: v}\nttl: 99\n");
  auto json = to_json(doc);
  CHECK(json == nlohmann::json{{"ttl", 30},        {"name", "30"},          {"strict", false},
                               {"ratio", 0.5},     {"nothing", nullptr},    {"list", {"a", 1}},
                               {"map", {{"k", "v"}}}});
}

TEST_CASE("describe() names a value the way messages quote it", "[manifests][yaml]") {
  auto doc = parse_one("s: two\nm: {a: 1}\nl: [1]\nn:\n");
  CHECK(doc.find("s")->describe() == "\"two\"");
  CHECK(doc.find("m")->describe() == "a mapping");
  CHECK(doc.find("l")->describe() == "a list");
  CHECK(doc.find("n")->describe() == "null");
}

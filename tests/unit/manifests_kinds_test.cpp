// manifests/kinds: the kinds table, and that the loader, validation and counts follow its rows.

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "manifests/kinds.hpp"
#include "manifests/loader.hpp"
#include "manifests/schema.hpp"

using namespace pgc::manifests;

namespace {

// A minimal document of kind (its own rules may still report missing fields).
std::string kind_document(const KindRow& row, const std::string& name, const std::string& namespace_ = "") {
  std::string text = "apiVersion: " + row.api_version + "\nkind: " + row.kind + "\nmetadata:\n  name: " + name + "\n";
  if (!namespace_.empty()) text += "  namespace: " + namespace_ + "\n";
  return text;
}

std::vector<std::string> printed_lines(const pgc::Diagnostics& diagnostics) {
  std::vector<std::string> out;
  for (const auto& d : diagnostics) out.push_back(d.str());
  return out;
}

bool any_message_has(const pgc::Diagnostics& diagnostics, const std::string& text) {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [&](const pgc::Diagnostic& d) { return d.message.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("kinds: the table lists the managed kinds in documentation order, then StackGres' others", "[manifests][kinds]") {
  std::vector<std::string> managed;
  for (const auto& row : kind_table()) {
    INFO(row.kind);
    if (!row.managed) {
      CHECK(row.api_version == "stackgres.io/v1");
      CHECK_FALSE(row.spec);
      CHECK_FALSE(row.read);
      CHECK_FALSE(row.count);
      continue;
    }
    CHECK(managed.size() == static_cast<std::size_t>(&row - kind_table().data()));  // managed rows first
    managed.push_back(row.kind);
    CHECK(row.spec);
    CHECK(row.read);
    CHECK(row.count);
    CHECK(row.check_identities);
    CHECK(row.check);
  }
  CHECK(managed == std::vector<std::string>{"SGCluster", "SGPostgresConfig", "SGInstanceProfile", "SGPoolingConfig",
                                            "Host", "EtcdCluster"});
  CHECK(find_kind("Host")->api_version == "pgconverge.io/v1");
  CHECK(find_kind("SGPoolingConfig")->api_version == "stackgres.io/v1");
  CHECK_FALSE(find_kind("Host")->namespaced);
  CHECK_FALSE(find_kind("EtcdCluster")->namespaced);
  CHECK(find_kind("SGCluster")->namespaced);
  CHECK(find_kind("SGCluster")->cluster_name);
  CHECK_FALSE(find_kind("SGPostgresConfig")->cluster_name);
  CHECK_FALSE(find_kind("SGBackup")->managed);
  CHECK(find_kind("sgcluster") == nullptr);
  CHECK(find_kind("") == nullptr);
}

TEST_CASE("kinds: the schema lists are views of the table", "[manifests][kinds]") {
  std::vector<std::string> supported, unsupported;
  for (const auto& k : supported_kinds()) supported.push_back(k.kind);
  for (const auto& row : kind_table()) {
    if (row.managed) CHECK(document_schema(row.kind) != nullptr);
    else CHECK(document_schema(row.kind) == nullptr);
  }
  CHECK(supported.size() == 6);
  CHECK(unsupported_stackgres_kinds().size() + supported.size() == kind_table().size());
  CHECK(std::find(unsupported_stackgres_kinds().begin(), unsupported_stackgres_kinds().end(), "SGObjectStorage") !=
        unsupported_stackgres_kinds().end());
}

TEST_CASE("kinds: a document of each managed kind lands in its row's list and counts once", "[manifests][kinds]") {
  for (const auto& row : kind_table()) {
    if (!row.managed) continue;
    INFO(row.kind);
    auto result = parse_text(kind_document(row, "one"), "k.yaml");
    CHECK(row.count(result.manifests) == 1);
    CHECK(count_manifests(result.manifests) == 1);
    for (const auto& other : kind_table())
      if (other.managed && &other != &row) CHECK(other.count(result.manifests) == 0);
  }
}

TEST_CASE("kinds: a StackGres kind pgconverge does not manage is skipped with a warning", "[manifests][kinds]") {
  auto result = parse_text(kind_document(*find_kind("SGBackup"), "b"), "b.yaml");
  CHECK(count_manifests(result.manifests) == 0);
  CHECK(printed_lines(result.diagnostics) ==
        std::vector<std::string>{"b.yaml:2:1: warning: kind: SGBackup is not managed by pgconverge; document ignored"});
}

TEST_CASE("kinds: a kind's scope decides what counts as a duplicate name", "[manifests][kinds]") {
  for (const char* kind : {"SGPostgresConfig", "Host"}) {
    const KindRow& row = *find_kind(kind);
    INFO(kind);
    auto result = parse_text(kind_document(row, "same", "a") + "---\n" + kind_document(row, "same", "b"), "d.yaml");
    REQUIRE(row.count(result.manifests) == 2);
    pgc::Diagnostics diagnostics;
    validate(result.manifests, diagnostics);
    // Namespaced kinds may reuse a name in another namespace; Host and EtcdCluster may not.
    CHECK(any_message_has(diagnostics, "duplicate " + row.kind + " \"same\"") == !row.namespaced);
    CHECK(any_message_has(result.diagnostics, "is not namespaced") == !row.namespaced);
  }
}

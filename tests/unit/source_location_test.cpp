#include <catch2/catch.hpp>

#include "util/source_location.hpp"

using pgc::Diagnostic;
using pgc::Severity;
using pgc::SourceLocation;

TEST_CASE("Diagnostic::str() is file:LINE:COL: field: message", "[util][diagnostic]") {
  CHECK(Diagnostic{Severity::error, SourceLocation{"c.yaml", 3, 5}, "spec.instances", "must be at least 0, got -1"}
            .str() == "c.yaml:3:5: spec.instances: must be at least 0, got -1");
  CHECK(Diagnostic{Severity::warning, SourceLocation{"c.yaml", 0, 0}, "", "x"}.str() == "c.yaml: warning: x");
}

TEST_CASE("regression: a newline or escape in a manifest value cannot split or color a diagnostic",
          "[util][diagnostic]") {
  Diagnostic d{Severity::error, SourceLocation{"c.yaml", 8, 5}, "spec.address",
               "must be an IPv4 address (got \"10.0.0.1\n  listen: x\t\x1b[31m\r\x7f\")"};
  CHECK(d.str() == "c.yaml:8:5: spec.address: must be an IPv4 address (got \"10.0.0.1\\n  listen: x\\t\\x1b[31m\\r\\x7f\")");
  CHECK(Diagnostic{Severity::error, SourceLocation{"a\nb.yaml", 1, 1}, "", "m"}.str() == "a\\nb.yaml:1:1: m");
}

#pragma once
// Runs a command line with popen (that is, `/bin/sh -c line`) and returns its stdout: how the
// unit tests see what a shell makes of quoted words. Needs Catch2 (REQUIRE).

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

namespace pgc::test {

inline std::string shell_output(const std::string& line) {
  FILE* pipe = popen(line.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  return out;
}

}  // namespace pgc::test

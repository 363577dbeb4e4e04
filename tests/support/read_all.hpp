#pragma once
// The whole rest of a stream, binary-safe: how tests compare a file with what they expect.

#include <cstddef>
#include <istream>
#include <string>

namespace pgc::test {

inline std::string read_all(std::istream& in) {
  std::string text;
  char chunk[4096];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) text.append(chunk, static_cast<std::size_t>(in.gcount()));
  return text;
}

}  // namespace pgc::test

#pragma once
// Expected failures are values: Result<T> carries either T or an Error with a message.
// Programming errors and fatal conditions are exceptions, caught once in main().

#include <expected>
#include <stdexcept>
#include <string>
#include <utility>

namespace pgc {

// An expected failure with a human-readable message; context is prepended as it crosses layers.
struct Error {
  std::string message;

  // Returns a copy whose message is "<context>: <message>".
  [[nodiscard]] Error with_context(const std::string& context) const {
    return Error{context + ": " + message};
  }
};

template <typename T>
using Result = std::expected<T, Error>;

// Shorthand for returning a failure: `return fail("ssh: host key mismatch");`
inline std::unexpected<Error> fail(std::string message) {
  return std::unexpected<Error>(Error{std::move(message)});
}

// Returns from the enclosing function with the error of a failed Result (evaluated once):
//   auto s = session(host);  PGC_TRY(s);        PGC_TRY(write(path, text));
#define PGC_TRY(result)                                                          \
  do {                                                                           \
    if (auto&& pgc_try_result_ = (result); !pgc_try_result_)                     \
      return std::unexpected(std::move(pgc_try_result_).error());                \
  } while (false)

// Thrown for fatal conditions; caught once in main().
struct FatalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace pgc

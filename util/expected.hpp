#pragma once
// Expected failures are values: Result<T> carries either T or an Error with a message.
// Programming errors and fatal conditions are exceptions, caught once in main().

#include <expected>
#include <stdexcept>
#include <string>
#include <utility>

namespace pgc {

// An expected failure with a human-readable message; context is prepended as it crosses layers.
// Its kind says whether waiting can fix it: most failures (a refused connection, a timeout, a
// member not up yet) may pass, and the waits retry them; a permanent one (a wrong password, no
// pg_hba.conf entry, a refused SSH authentication, HTTP 401/403, a host key mismatch) does not,
// and every wait and pass ends at it. Providers set it where their library tells them.
struct Error {
  std::string message;
  // Why waiting cannot fix it, e.g. "a wrong password does not fix itself"; empty: transient.
  std::string permanent{};

  [[nodiscard]] bool is_permanent() const { return !permanent.empty(); }

  // Returns a copy whose message is "<context>: <message>", of the same kind.
  [[nodiscard]] Error with_context(const std::string& context) const {
    return Error{context + ": " + message, permanent};
  }

  // The message and, for a permanent error, why it was not retried:
  // "<message>: not retried: a wrong password does not fix itself".
  [[nodiscard]] std::string describe() const {
    return is_permanent() ? message + ": not retried: " + permanent : message;
  }
};

template <typename T>
using Result = std::expected<T, Error>;

// Shorthand for returning a failure: `return fail("ssh: host key mismatch");`
inline std::unexpected<Error> fail(std::string message) {
  return std::unexpected<Error>(Error{std::move(message)});
}

// A failure waiting cannot fix; why says so: `return fail_permanent(msg, k_wrong_password);`
inline std::unexpected<Error> fail_permanent(std::string message, std::string why) {
  return std::unexpected<Error>(Error{std::move(message), std::move(why)});
}

// The reasons the providers give, shared so that a message reads the same wherever it starts.
inline constexpr const char* k_wrong_password = "a wrong password does not fix itself";
inline constexpr const char* k_no_hba_entry = "a missing pg_hba.conf entry does not appear by waiting";
inline constexpr const char* k_auth_refused = "a refused authentication does not fix itself";
inline constexpr const char* k_host_key_mismatch = "a host key mismatch does not fix itself";
inline constexpr const char* k_http_forbidden = "the REST API refuses these credentials; waiting does not change them";
inline constexpr const char* k_tls_verify = "a certificate that fails verification does not fix itself";
inline constexpr const char* k_tls_handshake = "a TLS handshake the two sides cannot agree on does not fix itself";

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

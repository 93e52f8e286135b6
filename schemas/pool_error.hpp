// pool_error: the one error type of poolbus. Its kind tells the caller what to do
// (give up, retry elsewhere, back off); it travels unchanged from worker to broker
// to client, so a kind set by the pool is the kind the client sees.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace poolbus {

enum class error_kind : uint8_t {
  invalid = 1,   // malformed request: fix the request, do not retry
  not_exist,     // no such pool/offer/alloc, or the offer shrank: retry elsewhere
  precondition,  // request is well-formed but cannot apply (empty want, ...): give up
  unavailable,   // nothing fits now, or the pool stopped answering: retry elsewhere/later
  timeout,       // the owner did not answer in time: back off and retry
  unauthorized,  // the caller may not do this: give up
  internal,      // a bug or an unexpected failure: back off and retry
  fatal,         // unrecoverable (e.g. the alloc is gone for good): give up
};

// What a caller should do about an error of a kind.
enum class caller_action : uint8_t { give_up, retry_elsewhere, back_off };

caller_action action_for(error_kind kind);

// Wire names, exactly as protocol.md spells them.
std::string_view to_string(error_kind kind);
std::optional<error_kind> error_kind_from_string(std::string_view name);

struct pool_error {
  error_kind kind = error_kind::internal;
  std::string message;

  std::string to_string() const;  // "<kind>: <message>"
  friend bool operator==(const pool_error& a, const pool_error& b) {
    return a.kind == b.kind && a.message == b.message;
  }
};

inline pool_error make_pool_error(error_kind kind, std::string message) { return pool_error{kind, std::move(message)}; }

// The one `timeout` message: "<who> did not answer within <ms> ms", naming
// what did not answer (a pool, the broker, the mux).
inline pool_error timeout_error(const std::string& who, int64_t waited_ms) {
  return pool_error{error_kind::timeout, who + " did not answer within " + std::to_string(waited_ms) + " ms"};
}

// CAF inspection without including CAF: the inspector is a template parameter.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pool_error& x) {
  return f(x.kind, x.message);
}

}  // namespace poolbus

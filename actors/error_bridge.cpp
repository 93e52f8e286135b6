#include "actors/error_bridge.hpp"

#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace poolbus {
namespace {
constexpr auto pool_category = caf::atom("pool");
}

caf::error make_error(const pool_error& e) {
  return caf::error{static_cast<uint8_t>(e.kind), pool_category, caf::make_message(e.message)};
}

caf::error make_error(error_kind kind, std::string message) { return make_error(pool_error{kind, std::move(message)}); }

pool_error to_pool_error(const caf::error& e) {
  if (!e) return {error_kind::internal, "no error"};
  if (e.category() == pool_category) {
    std::string message;
    if (e.context().match_elements<std::string>()) message = e.context().get_as<std::string>(0);
    auto code = e.code();
    if (code >= static_cast<uint8_t>(error_kind::invalid) && code <= static_cast<uint8_t>(error_kind::fatal))
      return {static_cast<error_kind>(code), std::move(message)};
    return {error_kind::internal, std::move(message)};
  }
  if (e.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(e.code())) {
      case caf::sec::request_timeout: return {error_kind::timeout, "request timed out"};
      case caf::sec::request_receiver_down: return {error_kind::unavailable, "the pool stopped answering"};
      default: return {error_kind::internal, "actor system error " + caf::to_string(static_cast<caf::sec>(e.code()))};
    }
  }
  return {error_kind::internal, "unexpected error category"};
}

}  // namespace poolbus

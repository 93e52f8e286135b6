#include "schemas/pool_error.hpp"

#include <array>
#include <utility>

namespace poolbus {
namespace {
constexpr std::array<std::pair<error_kind, std::string_view>, 8> kind_names{{
    {error_kind::invalid, "invalid"},
    {error_kind::not_exist, "not_exist"},
    {error_kind::precondition, "precondition"},
    {error_kind::unavailable, "unavailable"},
    {error_kind::timeout, "timeout"},
    {error_kind::unauthorized, "unauthorized"},
    {error_kind::internal, "internal"},
    {error_kind::fatal, "fatal"},
}};
}  // namespace

caller_action action_for(error_kind kind) {
  switch (kind) {
    case error_kind::not_exist:
    case error_kind::unavailable: return caller_action::retry_elsewhere;
    case error_kind::timeout:
    case error_kind::internal: return caller_action::back_off;
    default: return caller_action::give_up;
  }
}

std::string_view to_string(error_kind kind) {
  for (const auto& [k, name] : kind_names)
    if (k == kind) return name;
  return "internal";
}

std::optional<error_kind> error_kind_from_string(std::string_view name) {
  for (const auto& [k, n] : kind_names)
    if (n == name) return k;
  return std::nullopt;
}

std::string pool_error::to_string() const {
  std::string out(poolbus::to_string(kind));
  if (!message.empty()) out += ": " + message;
  return out;
}

}  // namespace poolbus

#include "policy/alloc_ownership.hpp"

namespace poolbus {

std::string_view role_of_identity(std::string_view identity) {
  auto colon = identity.find(':');
  return colon == std::string_view::npos ? std::string_view{} : identity.substr(0, colon);
}

bool may_act_on_alloc(std::string_view owner, std::string_view caller) {
  if (caller.empty()) return true;  // security off: owner is only a label
  if (role_of_identity(caller) == "admin") return true;
  return owner == caller;
}

}  // namespace poolbus

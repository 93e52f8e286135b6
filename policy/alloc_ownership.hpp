// alloc_ownership: who may keep alive or free an alloc on an authenticating
// broker. A caller's identity is "<role>:<name>" (the ZAP handler's User-Id);
// an alloc belongs to the identity that took it (its meta.owner).
// Invariant: with authentication on, only the owner or an admin may act;
// without it (empty caller) everyone may, as before.
#pragma once

#include <string_view>

namespace poolbus {

// The role part of an identity ("" when it has none).
std::string_view role_of_identity(std::string_view identity);

bool may_act_on_alloc(std::string_view owner, std::string_view caller);

}  // namespace poolbus

#include "actors/remote_alloc_actor.hpp"

#include <caf/all.hpp>

#include "actors/error_bridge.hpp"

namespace poolbus {
namespace {

template <class T>
caf::result<T> to_result(outcome<T> r) {
  if (!r) return make_error(r.error());
  return std::move(*r);
}

alloc_actor::behavior_type remote_alloc(alloc_actor::pointer, std::string uri,
                                        std::shared_ptr<alloc_transport> transport) {
  return {
      [=](keepalive_atom, int64_t interval_ms) -> caf::result<int64_t> {
        return to_result(transport->keepalive(uri, interval_ms));
      },
      [=](inspect_atom) -> caf::result<AllocInspect> { return to_result(transport->inspect(uri)); },
      [=](free_atom) -> caf::result<caf::ok_atom> {
        auto freed = transport->free(uri);
        if (!freed) return make_error(freed.error());
        return caf::ok_atom::value;
      },
  };
}

}  // namespace

alloc_actor spawn_remote_alloc_actor(caf::actor_system& sys, std::string alloc_uri,
                                     std::shared_ptr<alloc_transport> transport) {
  return sys.spawn<caf::detached>(remote_alloc, std::move(alloc_uri), std::move(transport));
}

}  // namespace poolbus

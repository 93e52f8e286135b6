#include "apps/poolctl/hold.hpp"

#include <caf/all.hpp>

#include <iostream>

#include "actors/error_bridge.hpp"
#include "actors/keepalive_actor.hpp"
#include "actors/remote_alloc_actor.hpp"
#include "apps/poolctl/client_transport.hpp"
#include "bus/pool_client.hpp"
#include "schemas/units.hpp"

namespace poolbus {
namespace {

outcome<AllocInspect> take_alloc(pool_client& client, const hold_request& request) {
  if (request.offer_uri.empty()) return client.allocate(request.min, request.width, request.owner);
  auto want = request.want;
  if (want.empty()) {
    auto offer = client.offer(request.offer_uri);
    if (!offer) return offer.error();
    want = offer->available;
  }
  return client.accept(request.offer_uri, AllocMeta{want, request.owner, {}});
}

}  // namespace

int run_hold(const hold_request& request, shutdown_latch& latch) {
  auto client = pool_client::connect(request.api, request.timeout_ms, request.curve);
  if (!client) {
    std::cerr << "poolctl: " << client.error().to_string() << "\n";
    return 1;
  }
  auto alloc = take_alloc(**client, request);
  if (!alloc) {
    std::cerr << "poolctl: " << alloc.error().to_string() << "\n";
    return 1;
  }
  std::cout << "holding " << alloc->id << " (" << format_resources(alloc->resources) << "); Ctrl-C frees it"
            << std::endl;

  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("sharing"));
  int exit_code = 0;
  {
    caf::actor_system sys{cfg};
    auto keepalive_client = pool_client::connect(request.api, request.timeout_ms, request.curve);
    if (!keepalive_client) {
      std::cerr << "poolctl: " << keepalive_client.error().to_string() << "\n";
      return 1;
    }
    auto remote =
        spawn_remote_alloc_actor(sys, alloc->id, std::make_shared<client_transport>(std::move(*keepalive_client)));
    bool lost = false;
    {
      caf::scoped_actor owner{sys};
      keepalive_config config;
      config.alloc_name = alloc->id;
      auto keeper = spawn_keepalive_actor(sys, remote, owner, config);
      while (!lost && !latch.wait_for(std::chrono::milliseconds(100))) {
        owner->receive(
            [&](lost_atom, const pool_error& e) {
              std::cerr << "poolctl: lost " << alloc->id << ": " << e.to_string() << "\n";
              lost = true;
            },
            caf::after(std::chrono::milliseconds(0)) >> [] {});
      }
      if (!lost) {
        owner->send(keeper, stop_atom::value);
        owner->receive([](stop_atom) {}, [&](lost_atom, const pool_error&) {},
                       caf::after(std::chrono::seconds(1)) >> [] {});
      }
      caf::anon_send_exit(keeper, caf::exit_reason::user_shutdown);
    }
    caf::anon_send_exit(remote, caf::exit_reason::user_shutdown);
    if (lost) exit_code = 1;
  }
  if (exit_code == 0) {
    auto freed = (*client)->free(alloc->id);
    if (!freed) {
      std::cerr << "poolctl: free " << alloc->id << ": " << freed.error().to_string() << "\n";
      return 1;
    }
    std::cout << "freed " << alloc->id << std::endl;
  }
  return exit_code;
}

}  // namespace poolbus

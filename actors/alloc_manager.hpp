// alloc_manager: reflow's AllocManager, the C++ interface a pool uses to create
// and destroy what backs an alloc (a directory, later its execs). Plain class,
// no actor: the pool actor calls it from its own handlers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "schemas/alloc.hpp"

namespace poolbus {

class alloc_manager {
 public:
  virtual ~alloc_manager() = default;
  virtual std::string name() const = 0;
  // Create the backing of alloc `id` (the inspect already carries meta and lease).
  // `existing` lists the pool's other allocs, as reflow passes them.
  virtual outcome<void> create(const AllocInspect& alloc, int64_t keepalive_ms,
                               const std::vector<AllocInspect>& existing) = 0;
  // Whether create reads `existing`. Listing the pool's allocs costs O(allocs)
  // per create, so a manager that ignores them says false and gets an empty list.
  virtual bool needs_existing() const { return true; }
  // Execs may write into the backing of `alloc` from now on (the pool is
  // about to spawn its actor): a manager that skips untouched backings on
  // kill hears it before anything is written.
  virtual void opened(const AllocInspect& /*alloc*/) {}
  // Destroy the backing of an alloc that was freed or collected.
  virtual outcome<void> kill(const AllocInspect& alloc) = 0;
};

// The local manager: an alloc's directory <state_dir>/allocs/<id> is made by
// its first exec (most allocs run none: no mkdir/rmdir per accept and free),
// and removed on kill, when its exec uid (if any) goes back to `users`. Kill
// looks only where a directory can be: an opened alloc's, or one an earlier
// run left.
class alloc_users;
std::shared_ptr<alloc_manager> make_local_alloc_manager(std::string state_dir,
                                                        std::shared_ptr<alloc_users> users = nullptr);

}  // namespace poolbus

// sim_workers: many simulated pools in one process, each speaking the real
// worker protocol over real sockets (schemas/PROTOCOL.md "Workers <-> broker"):
// one DEALER per pool (routing id = pool id; hello on connect and every
// heartbeat), one shared PUB for every pool's offers.<pool> announcements, and
// real answers to accept/free/keepalive/inspect/allocs/offers, and the
// broker's `pace` (one for the whole process: one broker paces all alike).
//
// Invariant: a pool's available = total - its allocs, and every change is
// announced with seq + 1, so the broker sees exactly what a real worker shows.
#pragma once

#include <cstdint>
#include <string>

namespace poolbus::bench {

struct sim_workers_config {
  std::string prefix = "sim";  // pools are <prefix>0 .. <prefix>N-1
  int count = 100;
  std::string workers_endpoint;   // the broker's workers ROUTER
  std::string announce_endpoint;  // the broker's announce SUB
  int64_t heartbeat_ms = 1000;   // the broker's `pace` may slow it
  std::string source_address;    // connect from this local address ("": any)
};

// Runs until SIGTERM/SIGINT; the process's main in `pool-bench --sim-workers`.
int run_sim_workers(const sim_workers_config& config);

}  // namespace poolbus::bench

// redis_peer: poolbus's performance peer, the lease table teams build in
// Redis: a redis-server child (AOF, appendfsync always: every write is
// fsync'ed before its reply, the same promise as a worker's `--sync full`)
// and a lease table in it, one Lua accept and one Lua free with one pool's
// semantics. Invariant: a pool's available amount plus the amounts of its
// recorded allocs is always its capacity. Amounts are integers (milli-cpu,
// bytes), below 2^53 so the script's comparisons are exact, so nothing drifts.
// Also the durable floor's disk part: one 4 KiB append + fdatasync.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/child_process.hpp"

struct redisContext;

namespace poolbus::bench {

// An amount of a pool, or of an alloc, in fixed point.
struct lease_amounts {
  int64_t cpu_milli = 0;
  int64_t mem_bytes = 0;
};

// A redis-server on a free loopback port; the destructor stops it.
class redis_server {
 public:
  // Starts it with `dir` (emptied first) for its AOF, `log_path` for its
  // output; returns once it answers PING. Throws when redis-server is missing.
  redis_server(const std::string& dir, const std::string& log_path);
  int port() const { return port_; }
  pid_t pid() const { return process_->pid(); }

 private:
  int port_ = 0;
  std::unique_ptr<child_process> process_;
};

struct redis_free {
  void operator()(redisContext* c) const;
};
using redis_connection = std::unique_ptr<redisContext, redis_free>;

// The lease table: pool hashes "pool:<i>" (fields cpu_milli, mem_bytes: what
// is available) and one allocs hash "allocs" (alloc id -> "<cpu> <mem>").
class redis_lease_table {
 public:
  // Connects, loads the two scripts, and sets `pools` pools to `capacity`.
  redis_lease_table(int port, int pools, lease_amounts capacity);

  // Checks the semantics once: too big fails, a duplicate id fails, free
  // returns what accept took, freeing twice fails. Throws on a difference.
  void check_semantics();
  // Throws unless every pool is back at its capacity and no alloc is left.
  void check_drained();
  // One client, one call in flight: `pairs` accept+free pairs on pool 0 (and
  // pairs/10 of warm-up); each call's latency in us, accepts at even indexes.
  std::vector<double> accept_free_calls_us(int pairs, lease_amounts want);
  // `in_flight` calls outstanding, pipelined over `connections` connections
  // (connection i on pool i % pools), each completed accept followed by its
  // free, for `seconds`: calls (accepts + frees) per second.
  double calls_per_second(int in_flight, int connections, lease_amounts want, double seconds, uint64_t* errors);

 private:
  int port_, pools_;
  lease_amounts capacity_;
  redis_connection control_;
  std::string accept_sha_, free_sha_;
  uint64_t next_id_ = 0;
};

// `count` appends of `bytes` to a fresh file at `path`, each write +
// fdatasync timed: microseconds each. Removes the file afterwards.
std::vector<double> append_fdatasync_us(const std::string& path, int count, size_t bytes = 4096);

}  // namespace poolbus::bench

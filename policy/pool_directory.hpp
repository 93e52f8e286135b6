// pool_directory: the broker's one record of every pool it hears from. Per
// pool it holds membership (announced, routable, joined), the newest
// announcement, when the pool was last heard (on the intake's clock), and
// the pool's pre-encoded entries of the `offers` and `pools` replies. The
// mux actor owns it and is its only user; nothing else keeps a copy.
//
// Invariants: a pool is joined, and listed in every answer, only once it has
// both announced and said hello (so the broker can route to it); a pool's
// announcement never goes backwards (schemas' `supersedes` rule); a pool
// leaves when it is silent for the worker timeout by the intake's clock, not
// judged at a flush that follows a stall of the I/O thread (or for three of
// its heartbeats when it or the broker's pace makes them slower), or when it says
// `stopped`; a draining pool extends no offer (not in `offers`, not to
// allocate), whatever it announced; the spliced arrays are byte for byte
// what encoding the joined pools' values would give.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/announcements.hpp"
#include "schemas/encoded_entries.hpp"
#include "schemas/placement.hpp"

namespace poolbus {

struct pool_record {
  bool announced = false;  // an offers.<pool> announcement arrived
  bool routable = false;   // a hello arrived on the workers ROUTER
  bool joined = false;     // both: listed in answers, requests routed to it
  int64_t heard_ms = 0;    // the intake's clock when last heard from
  offer_announcement latest;
  // latest's entries, encoded on first use after latest last changed. A seen
  // batch only moves latest.ts_ms (the status entry's last field, kept apart),
  // so these stay valid.
  std::optional<std::string> offer_entries;
  std::optional<std::string> status_head;
  last_seen_slot seen_slot;  // its last_seen_ms in the spliced pools array
};

// A pool that left the directory, and whether it had joined (then its proxy
// goes and, if it fell silent, `left` is published).
struct pool_departure {
  std::string pool;
  bool was_joined = false;
};

class pool_directory {
 public:
  explicit pool_directory(int64_t worker_timeout_ms) : worker_timeout_ms_(worker_timeout_ms) {}

  // ---- lifecycle events (one method each); the bool is "the pool joined now"
  // A validated announcement that is not a heartbeat repeat: whether it
  // replaced the pool's newest (its offer may have changed), the pool joined
  // with it, or its drain flipped (or a first announcement came draining).
  struct announcement_effect {
    bool superseded = false;
    bool joined = false;
    bool drain_changed = false;
  };
  announcement_effect on_announcement(offer_announcement&& a);
  // A hello on the workers ROUTER from `pool` (its routing id).
  bool on_hello(const std::string& pool);
  // A reply came from `pool`: hearing from it. False when it is not joined.
  bool on_reply(const std::string& pool);
  // Heartbeats that repeated the last announcement or hello (each pool once,
  // with its newest time). Returns the pools that repeated something the
  // directory does not hold: they must be heard in full (worker_intake::forget).
  std::vector<std::string> on_seen(const std::vector<pool_seen>& announced, const std::vector<pool_seen>& hellos);
  // The worker acknowledged a drain (or its undoing) of a joined pool: held
  // at once, before the announcement that says so arrives. False when
  // nothing changed (or the pool is not joined).
  bool on_drained(const std::string& pool, bool on);
  // The worker said `stopped`.
  std::optional<pool_departure> on_stopped(const std::string& pool);
  // The intake flushed at io_now_ms: everything it heard was before it.
  // Returns the pools silent for the worker timeout, now removed.
  struct flush_result {
    std::vector<pool_departure> silent;
    int64_t stalled_ms = 0;  // > 0: the I/O thread was busy this long, nothing judged
  };
  flush_result on_flushed(int64_t io_now_ms);
  // The broker now asks every pool to heartbeat at most this often (0: no
  // ask; heartbeat_pace). A pool is silent after three of the slower of
  // this and its own announced heartbeat, or the worker timeout if longer.
  void on_paced(int64_t heartbeat_ms);

  // ---- reads, over joined pools only
  const pool_record* joined(const std::string& pool) const;
  std::size_t joined_count() const { return joined_count_; }
  // Every joined pool's offers with local id "1" and `pool` set (allocate's
  // input), of the pools whose labels satisfy `constraints`; none of a
  // draining pool.
  std::vector<OfferInfo> local_offers(const Constraints& constraints = {}) const;
  // The one pool's offer, under the same rules.
  std::optional<OfferInfo> local_offer(const std::string& pool, const Constraints& constraints) const;
  // A joined pool's `pools` entry.
  std::optional<PoolStatus> status(const std::string& pool) const;
  // The live allocs the joined pools announced ("" = all, else that pool's).
  int64_t announced_allocs(const std::string& pool) const;
  // The entries of the `offers` and `pools` replies, spliced from each
  // pool's encoded entries and kept until something changes.
  const encoded_array& offer_entries();
  const encoded_array& status_entries();

 private:
  pool_record& heard(const std::string& pool);
  int64_t silent_after_ms(const pool_record& r) const;
  bool maybe_join(pool_record& r);
  std::optional<pool_departure> remove(const std::string& pool);
  void changed() {
    spliced_offers_.reset();
    spliced_pools_.reset();
  }

  int64_t worker_timeout_ms_;
  int64_t paced_ms_ = 0;
  // No pool can be silent before this (intake clock): on_flushed walks the
  // records only past it. 0: unknown, walk at the next flush.
  int64_t next_silence_ms_ = 0;
  std::map<std::string, pool_record> records_;  // by pool id, joined or not
  std::size_t joined_count_ = 0;
  // The intake's clock: the now_ms of its latest flush (0: none yet).
  // Everything heard since was received by the I/O thread before the next one.
  int64_t intake_now_ms_ = 0;
  // The whole arrays, kept between answers: walking 10,000 map nodes costs
  // far more than copying ~1 MB. A seen batch patches last_seen_ms in
  // spliced_pools_ in place while its width stays the same.
  std::optional<encoded_array> spliced_offers_;
  std::optional<encoded_array> spliced_pools_;
};

}  // namespace poolbus

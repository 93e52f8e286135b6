// Pre-encoded entries of the `offers`, `pools` and `allocs` reply arrays
// (protocol.md, "Client API"), spliced into a reply instead of encoding every
// value again (allocs: the worker's own bytes, relayed by the broker).
// Invariant: spliced bytes are exactly what encode_offers_reply /
// encode_pools_reply write for the same values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/outcome.hpp"

namespace poolbus {

// `count` MessagePack values back to back: the body of an array without its
// header (which depends on the count, known only once every entry is in).
struct encoded_array {
  int64_t count = 0;
  std::string bytes;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, encoded_array& x) {
    return f(x.count, x.bytes);
  }
};

// One entry as codec::pack_offer_info writes it, appended to `out`.
void append_offer_entry(std::string& out, const OfferInfo& offer);

// A pool status entry's bytes up to its last_seen_ms value: last_seen_ms is
// the entry's last field and the one part that changes with every
// heartbeat, so the head stays valid while only the time moves.
// (`status.last_seen_ms` is ignored.)
std::string pool_status_head(const PoolStatus& status);
// Where an entry's last_seen_ms value sits in the bytes it was appended to.
struct last_seen_slot {
  size_t offset = 0;
  size_t width = 0;  // msgpack ints take 1 to 9 bytes, by value
};
// head + last_seen_ms: the whole entry, as codec::pack_pool_status writes it.
last_seen_slot append_pool_status_entry(std::string& out, std::string_view head, int64_t last_seen_ms);
// Rewrites the last_seen_ms at `slot` in place when the new value's encoding
// is as wide as the old one (the bytes are then those of a fresh encoding)
// and returns true; returns false, leaving `bytes` alone, when it is not.
bool patch_last_seen(std::string& bytes, const last_seen_slot& slot, int64_t last_seen_ms);

// Whole arrays of values (the mux's fallback when some pool is not pushed).
encoded_array encode_offer_entries(const std::vector<OfferInfo>& offers);
encoded_array encode_pool_status_entries(const std::vector<PoolStatus>& pools);
encoded_array encode_alloc_entries(const std::vector<AllocInspect>& allocs);
// The values of entries that encode_alloc_entries (or a worker) wrote;
// invalid when they are not `count` well-formed Inspect values.
outcome<std::vector<AllocInspect>> decode_alloc_entries(const encoded_array& entries);
// Appends `part`'s entries to `into` (moved whole when `into` is empty).
void append_entries(encoded_array& into, encoded_array&& part);

}  // namespace poolbus

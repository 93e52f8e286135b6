// fuzz_invariants: what every fuzz target asserts about a decoder, whatever the
// input bytes. A broken invariant aborts (so libFuzzer records a crash and the
// corpus replay test fails), in every build type: these checks never compile out.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "schemas/alloc.hpp"
#include "schemas/api_messages.hpp"
#include "schemas/worker_messages.hpp"

#define FUZZ_CHECK(condition, what)                                                                     \
  do {                                                                                                  \
    if (!(condition)) {                                                                                 \
      std::fprintf(stderr, "fuzz invariant broken at %s:%d: %s (%s)\n", __FILE__, __LINE__, #condition, \
                   std::string(what).c_str());                                                          \
      std::abort();                                                                                     \
    }                                                                                                   \
  } while (0)

namespace poolbus::fuzz {

inline std::string_view bytes_of(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// A failed decode of anything that came from outside must be `invalid`: any
// other kind would tell a client to retry a request that can never succeed.
inline void check_invalid(const pool_error& error) {
  FUZZ_CHECK(error.kind == error_kind::invalid, error.to_string());
  FUZZ_CHECK(!error.message.empty(), "an error names what was wrong");
}

// Equality: operator== where the type has one, field by field otherwise.
template <class T>
bool same(const T& a, const T& b) {
  return a == b;
}

inline bool same(const PoolStatus& a, const PoolStatus& b) {
  return a.id == b.id && a.resources == b.resources && a.available == b.available && a.allocs == b.allocs &&
         a.last_seen_ms == b.last_seen_ms && a.labels == b.labels && a.draining == b.draining;
}

inline bool same(const api_request& a, const api_request& b) {
  return a.op == b.op && a.id_raw == b.id_raw && a.uri == b.uri && a.pool == b.pool && a.meta == b.meta &&
         a.place.min == b.place.min && a.place.width == b.place.width && a.place.count == b.place.count &&
         a.place.wait_ms == b.place.wait_ms && a.place.constraints == b.place.constraints && a.drain == b.drain &&
         a.interval_ms == b.interval_ms;
}

inline bool same(const worker_request& a, const worker_request& b) {
  return a.rid == b.rid && a.op == b.op && a.offer_id == b.offer_id && a.alloc_id == b.alloc_id && a.meta == b.meta &&
         a.interval_ms == b.interval_ms;
}

inline bool same(const worker_reply& a, const worker_reply& b) {
  if (a.rid != b.rid || a.ok != b.ok) return false;
  if (!a.ok) return a.error == b.error;
  return a.alloc == b.alloc && a.allocs == b.allocs && a.offers == b.offers && a.interval_ms == b.interval_ms;
}

inline bool same(const worker_hello& a, const worker_hello& b) {
  return a.pool == b.pool && a.run == b.run && a.ts_ms == b.ts_ms;
}

inline bool same(const offer_announcement& a, const offer_announcement& b) {
  return a.pool == b.pool && a.run == b.run && a.seq == b.seq && a.resources == b.resources &&
         a.available == b.available && a.offers == b.offers && a.allocs == b.allocs && a.ts_ms == b.ts_ms &&
         a.heartbeat_ms == b.heartbeat_ms;
}

inline bool same(const alloc_event& a, const alloc_event& b) {
  return a.pool == b.pool && a.event == b.event && a.alloc == b.alloc && a.ts_ms == b.ts_ms;
}

inline bool same(const pool_event& a, const pool_event& b) {
  return a.pool == b.pool && a.event == b.event && a.ts_ms == b.ts_ms;
}

// The round trip every decoder with an encoder keeps: a decoded value encodes
// to bytes that decode to an equal value, and those bytes are a fixed point
// (encoding the second value gives the same bytes again).
template <class T, class Encode, class Decode>
void check_round_trip(const T& decoded, Encode encode, Decode decode, const char* what) {
  std::string bytes = encode(decoded);
  auto again = decode(bytes);
  FUZZ_CHECK(again.ok(), std::string(what) + ": re-encoded value does not decode: " + again.error().to_string());
  FUZZ_CHECK(same(decoded, *again), std::string(what) + ": round trip changed the value");
  FUZZ_CHECK(encode(*again) == bytes, std::string(what) + ": encoding is not stable");
}

}  // namespace poolbus::fuzz

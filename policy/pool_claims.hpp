// pool_claims: which worker identity holds each pool id on an authenticating
// broker, so no other worker can take over a live pool by using its name.
// Invariant: a pool id is held by one identity at a time; another identity's
// claim is refused until the holder has been silent for `expiry_ms` (the
// broker's worker timeout, or three paced heartbeats: the pool has left) or
// has released it (stopped).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace poolbus {

class pool_claims {
 public:
  explicit pool_claims(int64_t expiry_ms) : expiry_ms_(expiry_ms) {}

  // A message from `identity` speaks for `pool`: true (and the claim is
  // refreshed) when the pool is free or already held by `identity`.
  bool claim(const std::string& pool, const std::string& identity, int64_t now_ms);

  // The holder said the pool stopped: the id is free at once. Ignored from
  // anyone but the holder.
  void release(const std::string& pool, const std::string& identity);

  // Who holds `pool` now, if anyone.
  std::optional<std::string> holder(const std::string& pool, int64_t now_ms) const;

  size_t size() const { return held_.size(); }

  // The broker paced its pools' heartbeats: a holder is silent after this now.
  void set_expiry_ms(int64_t expiry_ms) { expiry_ms_ = expiry_ms; }

 private:
  struct hold {
    std::string identity;
    int64_t last_ms = 0;
  };
  bool expired(const hold& h, int64_t now_ms) const { return now_ms - h.last_ms > expiry_ms_; }
  void forget_expired(int64_t now_ms);

  int64_t expiry_ms_;
  std::map<std::string, hold> held_;
  int64_t last_sweep_ms_ = 0;
};

}  // namespace poolbus

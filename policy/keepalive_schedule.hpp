// keepalive_schedule: the decisions of reflow's pool.Keepalive loop, without
// clocks or actors: what interval to ask for, when to renew after a grant, and
// whether/when to retry a failed keepalive. Invariant: every delay it returns
// is >= min_renew_gap_ms (so the loop never spins) and a renewal is never
// scheduled more than max_renew_gap_ms after the last successful keepalive.
#pragma once

#include <cstdint>
#include <optional>

#include "policy/retry_policy.hpp"
#include "schemas/alloc.hpp"
#include "schemas/pool_error.hpp"

namespace poolbus {

struct keepalive_schedule {
  // reflow asks for MaxKeepaliveInterval; the alloc may grant less.
  int64_t request_interval_ms = max_keepalive_interval_ms;
  // ivOffset: renew this long before the lease runs out.
  int64_t renew_before_expiry_ms = 30'000;
  // MaxKeepaliveInterval: never wait longer than this between renewals.
  int64_t max_renew_gap_ms = max_keepalive_interval_ms;
  // Floor for tiny grants: reflow renews a grant <= ivOffset at once, in a
  // hot loop; we renew it halfway through, but never sooner than this.
  int64_t min_renew_gap_ms = 1'000;
  // KeepaliveTimeout: each keepalive call gets this long to answer.
  int64_t call_timeout_ms = 10'000;
  // KeepaliveRetryPolicy: 2 s by 1.5, jitter 0.2, 5 retries.
  retry_policy retry = keepalive_retry_policy();

  // The interval to request on every keepalive.
  int64_t interval_to_request_ms() const { return request_interval_ms; }

  // Delay from a successful keepalive until the next one, given the granted
  // interval: granted - ivOffset, capped at max_renew_gap_ms; a grant no
  // longer than the offset is renewed halfway (floored at min_renew_gap_ms).
  int64_t renew_delay_ms(int64_t granted_ms) const;

  // The same decision from an absolute expiry: the time at which to renew.
  int64_t renew_at_ms(int64_t now_ms, int64_t expires_ms) const { return now_ms + renew_delay_ms(expires_ms - now_ms); }

  // Whether a failed keepalive of this kind is worth retrying. Transient
  // kinds (timeout, unavailable, internal) are; a gone alloc (not_exist,
  // fatal) or a refused/invalid request (unauthorized, invalid,
  // precondition) is not: retrying cannot change the answer.
  static bool retryable(error_kind kind);

  // After the `failures`-th consecutive failure (1-based) of kind `kind`:
  // how long to wait before trying again, or nullopt to give up (the kind is
  // not retryable, or the policy's retries are spent). As in reflow, the
  // first call is followed by up to retry.max_retries retries, so the loop
  // gives up on failure number max_retries + 1. uniform01 in [0, 1) is the
  // jitter sample.
  std::optional<int64_t> retry_delay_ms(error_kind kind, int failures, double uniform01) const;
};

}  // namespace poolbus

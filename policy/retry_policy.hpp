// retry_policy: reflow's retry.Jitter(retry.MaxRetries(retry.Backoff(initial,
// max, factor), tries), jitter) as a plain value. wait(n) is the pause before
// retry n (0-based); it has no clock and no randomness of its own: the caller
// passes a uniform sample in [0, 1) so schedules are reproducible in tests.
#pragma once

#include <cstdint>
#include <optional>

namespace poolbus {

struct retry_policy {
  int64_t initial_ms = 2000;  // KeepaliveRetryInitialWaitInterval
  int64_t max_ms = 30000;     // ivOffset: no single wait exceeds it
  double factor = 1.5;        // backoffFactor
  int max_retries = 5;        // keepaliveTries
  double jitter = 0.2;        // fraction of the wait randomised

  // Pause before retry `retry` (0-based), or nullopt once retries are spent.
  // uniform01 in [0, 1): the wait is scaled into [1 - jitter, 1 + jitter).
  std::optional<int64_t> wait_ms(int retry, double uniform01) const;
  // The wait without jitter (the middle of the jittered range).
  std::optional<int64_t> nominal_wait_ms(int retry) const;
};

// The policy of reflow's pool.Keepalive: 2 s by 1.5, at most 5 tries, 20% jitter.
retry_policy keepalive_retry_policy();

}  // namespace poolbus

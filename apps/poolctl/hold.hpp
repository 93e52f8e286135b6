// poolctl hold: take an alloc and keep it alive with the keepalive actor
// until Ctrl-C (then free it) or until the alloc is lost.
#pragma once

#include <cstdint>
#include <string>

#include "apps/common/shutdown_latch.hpp"
#include "bus/security.hpp"
#include "schemas/alloc.hpp"

namespace poolbus {

struct hold_request {
  std::string api;
  std::string offer_uri;  // accept this offer (with want, or all it offers when want is empty)...
  Resources want;
  Resources min;  // ...or allocate with min/width when offer_uri is empty
  int64_t width = 0;
  std::string owner;
  int64_t timeout_ms = 10000;
  bool json = false;
  std::optional<curve_client_keys> curve;  // CURVE keys, when the broker wants them
};

// Returns the process exit code.
int run_hold(const hold_request& request, shutdown_latch& latch);

}  // namespace poolbus

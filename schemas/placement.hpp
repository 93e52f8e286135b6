// Placement: what an `allocate` asks of the broker beyond reflow's min and
// width (protocol.md, "Additions of the second wave"): constraints on pool
// labels, a wait in the broker's queue with a priority, and gangs. Also the
// values the queue, the `demand` stream and the quotas are listed as.
// Plain data: no CAF, no sockets.
//
// Invariant: a placement that passed `placement_refusal` asks for something
// (min not zero), at least one alloc, and never waits a negative time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/pool_error.hpp"

namespace poolbus {

// A pool's labels (`pool-worker --label KEY=VALUE`), for placement.
using PoolLabels = Labels;

// `{label: [accepted values]}`: a pool matches when, for every key, it has
// the label with one of the values. An empty map constrains nothing.
using Constraints = std::map<std::string, std::vector<std::string>>;
bool satisfies(const PoolLabels& labels, const Constraints& constraints);

// Why a label key or value is not accepted, if it is not. Keys: 1-63 of
// letters, digits, `-_./`, starting with a letter or digit. Values: 1-255 of
// letters, digits, `-_./:@+` (no `,` or `=`, which the command lines split on).
std::optional<std::string> label_key_problem(std::string_view key);
std::optional<std::string> label_value_problem(std::string_view value);
// `KEY=VALUE` (pool-worker --label) or `KEY=V1,V2` (poolctl --constraint),
// checked; the error names the bad part.
outcome<std::pair<std::string, std::string>> parse_label(std::string_view text);
outcome<std::pair<std::string, std::vector<std::string>>> parse_constraint(std::string_view text);

// The longest wait_ms accepted (as exec_wait's timeout_ms): 24 hours.
constexpr int64_t max_wait_ms = 24LL * 60 * 60 * 1000;

struct placement {
  Resources min;
  int64_t width = 0;
  int64_t count = 1;        // a gang of `count` allocs, all placed or none
  bool gang = false;        // `count` was given: the reply lists `allocs`
  bool spread = false;      // each alloc of the gang on a different pool
  int64_t priority = 0;     // higher first in the queue
  int64_t wait_ms = 0;      // 0: try and answer; > 0: wait in the queue up to this long
  Constraints constraints;  // only pools whose labels satisfy them

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, placement& x) {
    return f(x.min, x.width, x.count, x.gang, x.spread, x.priority, x.wait_ms, x.constraints);
  }
};

// The error for an accept's want or an allocate's min that is empty or rounds
// to zero in every resource (amounts are thousandths of a unit): it asks for nothing.
pool_error nothing_asked(const std::string& what, const Resources& r);

// Why a placement is refused before anything is tried, if it is: `invalid`
// for a negative width or wait, a count below 1, an empty constraint list;
// `precondition` for a min that asks for nothing.
std::optional<pool_error> placement_refusal(const placement& p);

// One waiting request as `queue` lists it and `demand` events carry it.
struct queue_entry {
  std::string id;  // assigned by the broker
  std::string owner;
  Resources min;
  int64_t width = 0;
  int64_t count = 1;
  int64_t priority = 0;
  Constraints constraints;
  int64_t queued_ms = 0;
  int64_t deadline_ms = 0;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, queue_entry& x) {
    return f(x.id, x.owner, x.min, x.width, x.count, x.priority, x.constraints, x.queued_ms, x.deadline_ms);
  }
};

// Topic `demand`: what happened to a request that waited.
enum class demand_event_kind : uint8_t { queued, placed, expired };
std::string_view to_string(demand_event_kind kind);
std::optional<demand_event_kind> demand_event_kind_from_string(std::string_view name);

struct demand_event {
  demand_event_kind event = demand_event_kind::queued;
  queue_entry request;
  std::vector<std::string> allocs;  // placed: the allocs' URIs
  int64_t ts_ms = 0;
};

// One owner's quota and what its live allocs hold (`quotas`).
struct quota_usage {
  std::string owner;
  Resources quota;
  Resources used;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, quota_usage& x) {
    return f(x.owner, x.quota, x.used);
  }
};

}  // namespace poolbus

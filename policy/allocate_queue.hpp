// allocate_queue: reflow's Allocate requests, run one at a time in arrival
// order, each driven through its allocate_plan (policy/offer_picker.hpp).
// The owner (a mux actor) supplies the I/O as two hooks: how to gather
// offers, and how to accept one; the queue decides what to do next.
// Invariant: at most one plan runs at a time, and every pushed request is
// answered exactly once (its alloc, or the error its plan gave up with).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "policy/offer_picker.hpp"
#include "schemas/alloc.hpp"
#include "schemas/outcome.hpp"

namespace poolbus {

// The error for an accept's want or an allocate's min that is empty or rounds
// to zero in every resource (amounts are thousandths of a unit): it asks for nothing.
pool_error nothing_asked(const std::string& what, const Resources& r);

class allocate_queue {
 public:
  // Why allocate(min, width) is refused before it is queued, if it is:
  // `invalid` for a negative width, `precondition` for a min that asks nothing.
  static std::optional<pool_error> refusal(const Resources& min, int64_t width);

  using answer = std::function<void(outcome<AllocInspect>)>;
  struct hooks {
    // Gathers every pool's offers (local ids, `pool` set) and calls back once.
    std::function<void(std::function<void(std::vector<OfferInfo>)>)> gather_offers;
    // Accepts `offer` with `meta` and calls back once with what happened.
    std::function<void(const OfferInfo& offer, AllocMeta meta, answer)> accept;
  };

  allocate_queue(hooks io, uint64_t seed) : io_(std::move(io)), seeds_(seed) {}
  allocate_queue(const allocate_queue&) = delete;  // the hooks' callbacks point at this queue
  allocate_queue& operator=(const allocate_queue&) = delete;

  // Queues reflow Allocate(min, width) with the template's owner and labels.
  void push(Resources min, int64_t width, AllocMeta meta_template, answer done);
  std::size_t waiting() const { return waiting_.size(); }

 private:
  struct request {
    Resources min;
    int64_t width = 0;
    AllocMeta meta_template;
    answer done;
  };
  struct running {
    allocate_plan plan;
    answer done;
  };

  void run_next();
  void advance(allocate_plan::step step);
  void finish(outcome<AllocInspect> result);

  hooks io_;
  std::mt19937_64 seeds_;
  std::deque<request> waiting_;
  std::unique_ptr<running> running_;
};

}  // namespace poolbus

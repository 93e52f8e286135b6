// allocate_queue: the allocate requests being placed, run one at a time in
// arrival order. Each is a gang of `count` allocs (1 for reflow's Allocate),
// each alloc driven through its own allocate_plan (policy/offer_picker.hpp).
// The owner (a mux actor) supplies the I/O as hooks: how to gather the
// offers a placement may use, how to accept one, and how to free an alloc a
// gang took before it gave up; the queue decides what to do next.
//
// Invariants: at most one request is placed at a time; every pushed request
// is answered exactly once, with all `count` allocs or with an error; a gang
// that gives up has released (and heard back about) every alloc it took
// before it answers, so nothing stays held by a half-placed gang.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "policy/offer_picker.hpp"
#include "schemas/alloc.hpp"
#include "schemas/outcome.hpp"
#include "schemas/placement.hpp"

namespace poolbus {

class allocate_queue {
 public:
  using answer = std::function<void(outcome<std::vector<AllocInspect>>)>;
  using accept_answer = std::function<void(outcome<AllocInspect>)>;
  struct hooks {
    // Gathers the offers `want` may use (local ids, `pool` set) and calls back once.
    std::function<void(const placement& want, std::function<void(std::vector<OfferInfo>)>)> gather_offers;
    // Accepts `offer` with `meta` and calls back once with what happened.
    std::function<void(const OfferInfo& offer, AllocMeta meta, accept_answer)> accept;
    // Frees an alloc of a gang that gave up and calls back once, freed or not
    // (an alloc whose worker is gone expires with it). Needed for count > 1.
    std::function<void(const AllocInspect& alloc, std::function<void()>)> release;
  };

  allocate_queue(hooks io, uint64_t seed) : io_(std::move(io)), seeds_(seed) {}
  allocate_queue(const allocate_queue&) = delete;  // the hooks' callbacks point at this queue
  allocate_queue& operator=(const allocate_queue&) = delete;

  // Queues a placement (one that passed placement_refusal) with the
  // template's owner and labels.
  void push(placement want, AllocMeta meta_template, answer done);
  std::size_t waiting() const { return waiting_.size(); }
  bool busy() const { return running_ != nullptr; }

 private:
  struct request {
    placement want;
    AllocMeta meta_template;
    answer done;
  };
  struct running {
    request r;
    allocate_plan plan;  // the gang member being placed
    std::vector<AllocInspect> taken;
  };

  void run_next();
  void place_member();
  void advance(allocate_plan::step step);
  void on_accepted(outcome<AllocInspect> result, const std::string& pool);
  void give_up(pool_error error);
  void finish(outcome<std::vector<AllocInspect>> result);

  hooks io_;
  std::mt19937_64 seeds_;
  std::deque<request> waiting_;
  std::unique_ptr<running> running_;
};

}  // namespace poolbus

#include "policy/allocate_queue.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>

namespace poolbus {

void allocate_queue::push(placement want, AllocMeta meta_template, answer done) {
  assert(!placement_refusal(want) && (want.count == 1 || io_.release));
  waiting_.push_back({std::move(want), std::move(meta_template), std::move(done)});
  run_next();
}

void allocate_queue::run_next() {
  if (running_ || waiting_.empty()) return;
  auto next = std::move(waiting_.front());
  waiting_.pop_front();
  running_.reset(new running{std::move(next), allocate_plan({}, 0, {}, 0), {}});
  place_member();
}

void allocate_queue::place_member() {
  auto& r = running_->r;
  running_->plan = allocate_plan(r.want.min, r.want.width, r.meta_template, seeds_());
  advance(running_->plan.start());
}

// Hooks may call back at once (offers gathered from memory), so this recurses
// at most max_allocate_tries * max_offers_to_consider deep per member.
void allocate_queue::advance(allocate_plan::step step) {
  if (std::holds_alternative<allocate_plan::gather_offers>(step)) {
    io_.gather_offers(running_->r.want, [this](std::vector<OfferInfo> offers) {
      if (running_->r.want.spread) {  // a pool the gang holds is not offered again
        auto& taken = running_->taken;
        offers.erase(std::remove_if(offers.begin(), offers.end(),
                                    [&](const OfferInfo& o) {
                                      return std::any_of(taken.begin(), taken.end(),
                                                         [&](const AllocInspect& a) { return a.pool == o.pool; });
                                    }),
                     offers.end());
      }
      advance(running_->plan.on_offers(std::move(offers)));
    });
  } else if (auto* accept = std::get_if<allocate_plan::accept_offer>(&step)) {
    auto pool = accept->offer.pool;
    io_.accept(accept->offer, accept->meta,
               [this, pool](outcome<AllocInspect> result) { on_accepted(std::move(result), pool); });
  } else {
    give_up(std::get<allocate_plan::give_up>(step).error);
  }
}

void allocate_queue::on_accepted(outcome<AllocInspect> result, const std::string& pool) {
  if (!result) {
    spdlog::debug("allocate: accept on {} failed: {}", pool, result.error().to_string());
    return advance(running_->plan.on_accept_failed(result.error()));
  }
  spdlog::debug("allocate: {} ({}) after {} tries", result->id, result->resources.to_string(), running_->plan.tries());
  running_->taken.push_back(std::move(*result));
  if (static_cast<int64_t>(running_->taken.size()) < running_->r.want.count) return place_member();
  finish(std::move(running_->taken));
}

// A gang frees what it took, and hears back about each, before it answers.
void allocate_queue::give_up(pool_error error) {
  auto& run = *running_;
  spdlog::debug("allocate {} x{} gave up: {}", run.r.want.min.to_string(), run.r.want.count, error.to_string());
  if (run.taken.empty()) return finish(std::move(error));
  error.message = "gang of " + std::to_string(run.r.want.count) + ": placed " + std::to_string(run.taken.size()) +
                  " (freed again), then " + error.message;
  auto pending = std::make_shared<std::size_t>(run.taken.size());
  auto taken = std::move(run.taken);
  for (const auto& alloc : taken)
    io_.release(alloc, [this, pending, error] {
      if (--*pending == 0) finish(error);
    });
}

void allocate_queue::finish(outcome<std::vector<AllocInspect>> result) {
  auto done = std::move(running_->r.done);
  running_.reset();
  done(std::move(result));
  run_next();
}

}  // namespace poolbus

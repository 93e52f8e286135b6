#include "policy/allocate_queue.hpp"

#include <spdlog/spdlog.h>

namespace poolbus {

pool_error nothing_asked(const std::string& what, const Resources& r) {
  return pool_error{error_kind::precondition,
                    what + " " + r.to_string() +
                        " is empty or rounds to zero in every resource (resources count in thousandths of a unit)"};
}

std::optional<pool_error> allocate_queue::refusal(const Resources& min, int64_t width) {
  if (width < 0) return pool_error{error_kind::invalid, "allocate: width must be >= 0"};
  if (min.is_zero()) return nothing_asked("allocate: min", min);
  return std::nullopt;
}

void allocate_queue::push(Resources min, int64_t width, AllocMeta meta_template, answer done) {
  waiting_.push_back({std::move(min), width, std::move(meta_template), std::move(done)});
  run_next();
}

void allocate_queue::run_next() {
  if (running_ || waiting_.empty()) return;
  auto next = std::move(waiting_.front());
  waiting_.pop_front();
  running_.reset(new running{allocate_plan(std::move(next.min), next.width, std::move(next.meta_template), seeds_()),
                             std::move(next.done)});
  advance(running_->plan.start());
}

// Hooks may call back at once (offers gathered from memory), so this recurses
// at most max_allocate_tries * max_offers_to_consider deep.
void allocate_queue::advance(allocate_plan::step step) {
  auto& plan = running_->plan;
  if (std::holds_alternative<allocate_plan::gather_offers>(step)) {
    io_.gather_offers([this](std::vector<OfferInfo> offers) { advance(running_->plan.on_offers(std::move(offers))); });
  } else if (auto* accept = std::get_if<allocate_plan::accept_offer>(&step)) {
    auto pool = accept->offer.pool;
    io_.accept(accept->offer, accept->meta, [this, pool](outcome<AllocInspect> result) {
      if (result) {
        spdlog::debug("allocate: {} ({}) after {} tries", result->id, result->resources.to_string(),
                      running_->plan.tries());
        finish(std::move(result));
        return;
      }
      spdlog::debug("allocate: accept on {} failed: {}", pool, result.error().to_string());
      advance(running_->plan.on_accept_failed(result.error()));
    });
  } else {
    const auto& error = std::get<allocate_plan::give_up>(step).error;
    spdlog::info("allocate {} gave up: {}", plan.min().to_string(), error.to_string());
    finish(error);
  }
}

void allocate_queue::finish(outcome<AllocInspect> result) {
  auto done = std::move(running_->done);
  running_.reset();
  done(std::move(result));
  run_next();
}

}  // namespace poolbus

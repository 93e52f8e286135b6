#include "policy/exec_admission.hpp"

#include <algorithm>

namespace poolbus {

outcome<void> exec_admission::check_fits(const Resources& want) const {
  if (capacity_.available(want)) return {};
  return make_pool_error(error_kind::precondition,
                         "exec needs " + want.to_string() + ", more than its alloc's " + capacity_.to_string());
}

void exec_admission::enqueue(const std::string& id, const Resources& want) { waiting_.push_back({id, want}); }

Resources exec_admission::in_use() const {
  Resources sum;
  for (const auto& [_, want] : running_) sum = sum.add(want);
  return sum;
}

std::vector<std::string> exec_admission::admit() {
  std::vector<std::string> admitted;
  Resources used = in_use();
  while (!waiting_.empty()) {
    auto next = used.add(waiting_.front().want);
    if (!capacity_.available(next)) break;  // FIFO: nobody overtakes the head
    used = next;
    running_.emplace(waiting_.front().id, waiting_.front().want);
    admitted.push_back(std::move(waiting_.front().id));
    waiting_.pop_front();
  }
  return admitted;
}

void exec_admission::release(const std::string& id) {
  running_.erase(id);
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), [&](const queued& q) { return q.id == id; }),
                 waiting_.end());
}

bool exec_admission::is_waiting(const std::string& id) const {
  return std::any_of(waiting_.begin(), waiting_.end(), [&](const queued& q) { return q.id == id; });
}

}  // namespace poolbus

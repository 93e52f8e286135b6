#include "policy/deadline_table.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>

namespace poolbus {

int64_t deadline_after(int64_t now_ms, int64_t wait_ms, int64_t extra_ms) {
  int64_t out = now_ms;
  for (int64_t add : {wait_ms, extra_ms}) {
    add = std::max<int64_t>(0, add);
    out = add > INT64_MAX - out ? INT64_MAX : out + add;
  }
  return out;
}

void deadline_table::add(uint64_t id, int64_t deadline_ms) {
  bool added = deadline_of_.emplace(id, deadline_ms).second;
  assert(added && "deadline_table: id added twice");
  if (added) by_deadline_.emplace(deadline_ms, id);
}

bool deadline_table::erase(uint64_t id) {
  auto it = deadline_of_.find(id);
  if (it == deadline_of_.end()) return false;
  by_deadline_.erase({it->second, id});
  deadline_of_.erase(it);
  return true;
}

std::vector<uint64_t> deadline_table::expire(int64_t now_ms) {
  std::vector<uint64_t> expired;
  while (!by_deadline_.empty() && by_deadline_.begin()->first <= now_ms) {
    auto id = by_deadline_.begin()->second;
    by_deadline_.erase(by_deadline_.begin());
    deadline_of_.erase(id);
    expired.push_back(id);
  }
  return expired;
}

std::optional<int64_t> deadline_table::next_deadline() const {
  if (by_deadline_.empty()) return std::nullopt;
  return by_deadline_.begin()->first;
}

}  // namespace poolbus

#include "store/alloc_journal.hpp"

#include <algorithm>

namespace poolbus {

outcome<std::vector<AllocInspect>> memory_journal::load() { return allocs_; }

outcome<void> memory_journal::commit(const std::vector<journal_change>& changes) {
  if (fail_commits) return make_pool_error(error_kind::internal, "memory journal: commit refused (test)");
  for (const auto& change : changes) {
    auto it =
        std::find_if(allocs_.begin(), allocs_.end(), [&](const AllocInspect& a) { return a.id == change.alloc.id; });
    if (change.what == journal_change::kind::put) {
      if (it != allocs_.end())
        *it = change.alloc;
      else
        allocs_.push_back(change.alloc);
    } else if (it != allocs_.end()) {
      allocs_.erase(it);
    }
  }
  ++commits;
  return {};
}

}  // namespace poolbus

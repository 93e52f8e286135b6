#include "policy/pool_claims.hpp"

namespace poolbus {

bool pool_claims::claim(const std::string& pool, const std::string& identity, int64_t now_ms) {
  forget_expired(now_ms);
  auto it = held_.find(pool);
  if (it == held_.end() || it->second.identity == identity || expired(it->second, now_ms)) {
    held_[pool] = hold{identity, now_ms};
    return true;
  }
  return false;
}

void pool_claims::release(const std::string& pool, const std::string& identity) {
  auto it = held_.find(pool);
  if (it != held_.end() && it->second.identity == identity) held_.erase(it);
}

std::optional<std::string> pool_claims::holder(const std::string& pool, int64_t now_ms) const {
  auto it = held_.find(pool);
  if (it == held_.end() || expired(it->second, now_ms)) return std::nullopt;
  return it->second.identity;
}

void pool_claims::forget_expired(int64_t now_ms) {
  // Pools that left would otherwise stay forever; sweeping once per expiry
  // period keeps the map as small as the set of recent pools.
  if (now_ms - last_sweep_ms_ < expiry_ms_) return;
  last_sweep_ms_ = now_ms;
  for (auto it = held_.begin(); it != held_.end();) it = expired(it->second, now_ms) ? held_.erase(it) : std::next(it);
}

}  // namespace poolbus

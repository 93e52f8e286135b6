#include "policy/quota_ledger.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

#include "schemas/units.hpp"

namespace poolbus {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Whether `held` plus `more` stays within `quota` in every resource it names.
bool within(const Resources& quota, const Resources& held, const Resources& more) {
  for (const auto& [key, limit] : quota.amounts())
    if (more.units(key) > limit - held.units(key)) return false;  // no overflow for a saturated `more`
  return true;
}

// `count` x `r`, saturating (a gang's count is any int >= 1).
Resources times(const Resources& r, int64_t count) {
  Resources out;
  for (const auto& [key, units] : r.amounts())
    out.set_units(key, units != 0 && count > std::numeric_limits<int64_t>::max() / units
                           ? std::numeric_limits<int64_t>::max()
                           : units * count);
  return out;
}

}  // namespace

outcome<quota_book> parse_quota_book(std::string_view text) {
  quota_book book;
  int number = 0;
  for (std::size_t at = 0; at <= text.size();) {
    auto end = std::min(text.find('\n', at), text.size());
    auto line = text.substr(at, end - at);
    at = end + 1;
    ++number;
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    auto fail = [&](const std::string& why) {
      return pool_error{error_kind::invalid, "quota file line " + std::to_string(number) + ": " + why};
    };
    auto space = line.find_first_of(" \t");
    if (space == std::string_view::npos)
      return fail("expected \"<owner> <resources>\", got \"" + std::string(line) + "\"");
    std::string owner(line.substr(0, space));
    auto resources = parse_resources(trim(line.substr(space)));
    if (!resources) return fail(resources.error().message);
    if (owner == "*") {
      if (book.everyone_else) return fail("\"*\" given twice");
      book.everyone_else = *resources;
    } else if (!book.owners.emplace(owner, *resources).second) {
      return fail("owner " + owner + " given twice");
    }
  }
  return book;
}

const Resources* quota_ledger::quota_of(const std::string& owner) const {
  auto it = book_.owners.find(owner);
  if (it != book_.owners.end()) return &it->second;
  return book_.everyone_else ? &*book_.everyone_else : nullptr;
}

std::optional<pool_error> quota_ledger::never_fits(const std::string& owner, const Resources& min,
                                                   int64_t count) const {
  const auto* quota = quota_of(owner);
  if (!quota || within(*quota, Resources{}, times(min, count))) return std::nullopt;
  return pool_error{error_kind::precondition, "quota: " + std::to_string(count) + " x " + min.to_string() +
                                                  " exceeds the quota of " + (owner.empty() ? "\"\"" : owner) + " " +
                                                  quota->to_string()};
}

bool quota_ledger::has_room(const std::string& owner, const Resources& min, int64_t count, int64_t now_ms) const {
  const auto* quota = quota_of(owner);
  return !quota || within(*quota, used(owner, now_ms), times(min, count));
}

void quota_ledger::forget_expired(int64_t now_ms) {
  // Kept a while past expiry: a keepalive may still revive an uncollected alloc.
  for (auto it = allocs_.begin(); it != allocs_.end();)
    it = it->second.expires_ms + forget_after_ms <= now_ms ? allocs_.erase(it) : ++it;
}

Resources quota_ledger::used(const std::string& owner, int64_t now_ms) const {
  Resources total;
  for (const auto& [uri, a] : allocs_)
    if (a.owner == owner && a.expires_ms > now_ms) total = total.add(a.resources);
  for (const auto& [id, r] : reservations_)
    if (r.owner == owner) total = total.add(r.resources);
  return total;
}

std::optional<uint64_t> quota_ledger::reserve(const std::string& owner, const Resources& want, int64_t now_ms) {
  const auto* quota = quota_of(owner);
  if (!quota) return 0;  // not limited: nothing to hold
  forget_expired(now_ms);
  if (!within(*quota, used(owner, now_ms), want)) return std::nullopt;
  auto id = next_reservation_++;
  reservations_.emplace(id, held{owner, want, 0});
  return id;
}

void quota_ledger::settle(uint64_t reservation, const AllocInspect* placed) {
  auto it = reservations_.find(reservation);
  if (it == reservations_.end()) return;  // 0: the owner is not limited
  if (placed) allocs_[placed->id] = held{it->second.owner, placed->resources, placed->expires_ms};
  reservations_.erase(it);
}

void quota_ledger::on_keepalive(const std::string& alloc_uri, int64_t expires_ms) {
  auto it = allocs_.find(alloc_uri);
  if (it != allocs_.end()) it->second.expires_ms = std::max(it->second.expires_ms, expires_ms);
}

void quota_ledger::on_freed(const std::string& alloc_uri) { allocs_.erase(alloc_uri); }

std::vector<quota_usage> quota_ledger::usage(int64_t now_ms) const {
  std::map<std::string, quota_usage> out;
  for (const auto& [owner, quota] : book_.owners) out[owner] = {owner, quota, used(owner, now_ms)};
  auto add_holder = [&](const std::string& owner) {
    if (out.count(owner) != 0) return;
    if (const auto* quota = quota_of(owner)) out[owner] = {owner, *quota, used(owner, now_ms)};
  };
  for (const auto& [uri, a] : allocs_)
    if (a.expires_ms > now_ms) add_holder(a.owner);
  for (const auto& [id, r] : reservations_) add_holder(r.owner);
  std::vector<quota_usage> list;
  for (auto& [owner, u] : out) list.push_back(std::move(u));
  return list;
}

}  // namespace poolbus

// quota_ledger: what each owner may hold (pool-broker --quota FILE) and
// what its live allocs hold, for one broker (protocol.md, "Quotas").
// The mux owns it: it reserves before each accept it sends, settles the
// reservation with the worker's answer, and tells it of keepalives and frees.
//
// Invariant: for every owner with a quota, held + reserved never exceeds the
// quota in any resource the quota names: a reservation that would is refused,
// so racing requests of one owner cannot pass the check together.
// Allocs count while unexpired (by their expires_ms, on the broker's clock).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/outcome.hpp"
#include "schemas/placement.hpp"

namespace poolbus {

struct quota_book {
  std::map<std::string, Resources> owners;  // named owners ("" = no owner)
  std::optional<Resources> everyone_else;   // `*`: each owner not named has its own quota of this size
  bool empty() const { return owners.empty() && !everyone_else; }
};

// `<owner> <Res>` per line, `#` to the end of a line a comment. The error
// names the line ("quota file line 3: ...").
outcome<quota_book> parse_quota_book(std::string_view text);

class quota_ledger {
 public:
  explicit quota_ledger(quota_book book) : book_(std::move(book)) {}

  bool enabled() const { return !book_.empty(); }
  // The quota that applies to `owner`, or null (not limited).
  const Resources* quota_of(const std::string& owner) const;
  // Why `count` allocs of `min` can never fit the owner's quota, if so.
  std::optional<pool_error> never_fits(const std::string& owner, const Resources& min, int64_t count) const;

  // Whether `count` more allocs of `min` would fit the owner's quota beside
  // what it holds now (always, for an owner without a quota).
  bool has_room(const std::string& owner, const Resources& min, int64_t count, int64_t now_ms) const;

  // ---- lifecycle (one method each)
  // Holds `want` for owner while an accept is in flight; nullopt (nothing
  // held) when it would exceed the quota at now_ms.
  std::optional<uint64_t> reserve(const std::string& owner, const Resources& want, int64_t now_ms);
  // The accept's answer: the alloc it made (counted until it expires or is freed), or none.
  void settle(uint64_t reservation, const AllocInspect* placed);
  void on_keepalive(const std::string& alloc_uri, int64_t expires_ms);
  void on_freed(const std::string& alloc_uri);

  // ---- reads
  // Every owner with a quota and something held, or named in the book.
  std::vector<quota_usage> usage(int64_t now_ms) const;
  Resources used(const std::string& owner, int64_t now_ms) const;

 private:
  struct held {
    std::string owner;
    Resources resources;
    int64_t expires_ms = 0;
  };
  // Drops allocs expired for forget_after_ms at now_ms.
  void forget_expired(int64_t now_ms);
  static constexpr int64_t forget_after_ms = 10 * 60 * 1000;

  quota_book book_;
  std::map<std::string, held> allocs_;     // live allocs of owners with a quota, by URI
  std::map<uint64_t, held> reservations_;  // accepts in flight
  uint64_t next_reservation_ = 1;
};

}  // namespace poolbus

#include "policy/repeat_filter.hpp"

#include <algorithm>
#include <cstring>

#include "schemas/msgpack_scan.hpp"

namespace poolbus {

std::optional<int64_t> repeat_filter::repeat_ts(const std::string& sender, std::string_view body, int64_t now_ms) {
  auto it = remembered_.find(sender);
  if (it == remembered_.end()) return std::nullopt;
  auto& last = it->second;
  if (body.size() != last.body.size()) return std::nullopt;
  if (last.ts_length == 0) {
    if (body != last.body) return std::nullopt;
    last.heard_ms = now_ms;
    return int64_t{0};
  }
  const char* old_bytes = last.body.data();
  std::size_t ts_end = last.ts_offset + last.ts_length;
  // Everything before the timestamp's payload (its type byte included) and
  // everything after it must be equal.
  if (std::memcmp(body.data(), old_bytes, last.ts_offset + 1) != 0) return std::nullopt;
  if (std::memcmp(body.data() + ts_end, old_bytes + ts_end, body.size() - ts_end) != 0) return std::nullopt;
  auto ts = read_int_at(body, last.ts_offset);
  if (!ts) return std::nullopt;
  last.heard_ms = now_ms;
  return ts;
}

void repeat_filter::remember(const std::string& sender, std::string body, int64_t now_ms) {
  last_accepted entry;
  if (auto ts = find_int_field(body, ts_key_)) {
    entry.ts_offset = ts->offset;
    entry.ts_length = ts->length;
  }
  entry.body = std::move(body);
  entry.heard_ms = now_ms;
  oldest_heard_ms_ = std::min(oldest_heard_ms_, now_ms);
  remembered_.insert_or_assign(sender, std::move(entry));
}

std::size_t repeat_filter::forget_silent(int64_t cutoff_ms) {
  // Times only grow, so nobody was heard before oldest_heard_ms_: skip the walk.
  if (cutoff_ms <= oldest_heard_ms_) return 0;
  std::size_t forgotten = 0;
  oldest_heard_ms_ = INT64_MAX;
  for (auto it = remembered_.begin(); it != remembered_.end();) {
    if (it->second.heard_ms < cutoff_ms) {
      it = remembered_.erase(it);
      ++forgotten;
    } else {
      oldest_heard_ms_ = std::min(oldest_heard_ms_, it->second.heard_ms);
      ++it;
    }
  }
  return forgotten;
}

}  // namespace poolbus

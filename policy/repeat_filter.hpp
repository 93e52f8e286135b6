// repeat_filter: the last message each sender had accepted, so that a
// heartbeat repeating it with only a newer timestamp is known as a repeat
// without decoding it.
// Invariant: a body counts as a repeat only when it is byte for byte the
// remembered (already validated) one except for the timestamp integer, which
// has the same type byte and so the same width: it is then the same valid
// message with another time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace poolbus {

class repeat_filter {
 public:
  explicit repeat_filter(std::string ts_key = "ts_ms") : ts_key_(std::move(ts_key)) {}

  // The repeat's timestamp when `body` repeats what `sender` had accepted;
  // nullopt otherwise. A repeat counts as hearing from the sender at now_ms.
  std::optional<int64_t> repeat_ts(const std::string& sender, std::string_view body, int64_t now_ms);

  // `body` (validated by the caller) is now what `sender` said last. A body
  // without an integer ts field is remembered whole: only an identical one repeats.
  void remember(const std::string& sender, std::string body, int64_t now_ms);

  void forget(const std::string& sender) { remembered_.erase(sender); }

  // Forgets every sender not heard from since before cutoff_ms; returns how many.
  std::size_t forget_silent(int64_t cutoff_ms);

  std::size_t size() const { return remembered_.size(); }

 private:
  struct last_accepted {
    std::string body;
    std::size_t ts_offset = 0;
    std::size_t ts_length = 0;  // 0: no timestamp field
    int64_t heard_ms = 0;
  };

  std::string ts_key_;
  std::map<std::string, last_accepted, std::less<>> remembered_;
  // Nobody remembered was heard before this (the callers' clock never goes
  // back): forget_silent walks only when its cutoff is past it.
  int64_t oldest_heard_ms_ = 0;
};

}  // namespace poolbus

// event_hub: the live page's fan-out. One writer (the stream feed) appends
// Server-Sent-Event frames; every connected browser reads them from its own
// cursor, as many as have piled up, in one write.
//
// Invariant: publishing never waits for a reader. A reader that falls more
// than `capacity` chunks behind is told so (and its connection ends, the page
// reconnects and refetches), so one slow or stalled browser costs the others
// nothing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>
#include <string>
#include <string_view>

namespace poolbus {

class event_hub {
 public:
  static constexpr size_t default_capacity = 4096;

  explicit event_hub(size_t capacity = default_capacity);

  // "event: <name>\ndata: <json>\n\n" (json is one line).
  static std::string frame(std::string_view event, std::string_view json);

  // Appends a chunk of frames and wakes the readers.
  void publish(std::string chunk);

  struct reading {
    std::string data;     // every chunk after the cursor, concatenated
    bool behind = false;  // the cursor fell out of the ring: reset
    bool closed = false;  // the hub shut down
  };
  // Waits up to `wait` for chunks after `cursor` and advances it past them.
  reading read(uint64_t& cursor, std::chrono::milliseconds wait);
  // Wakes every reader for good (shutdown).
  void close();

  // Readers come and go through a session (one per connection).
  class session {
   public:
    explicit session(event_hub& hub);
    ~session();
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    uint64_t cursor;

   private:
    event_hub& hub_;
  };
  size_t readers() const;
  uint64_t dropped() const;  // readers told to reset so far

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::shared_ptr<const std::string>> chunks_;  // shared: readers copy them outside the lock
  uint64_t first_ = 0;                                     // the sequence number of chunks_.front()
  bool closed_ = false;
  size_t readers_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace poolbus

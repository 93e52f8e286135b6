#include "dash/event_hub.hpp"

namespace poolbus {

event_hub::event_hub(size_t capacity) : capacity_(capacity ? capacity : 1) {}

std::string event_hub::frame(std::string_view event, std::string_view json) {
  std::string out;
  out.reserve(event.size() + json.size() + 16);
  out.append("event: ").append(event).append("\ndata: ").append(json).append("\n\n");
  return out;
}

void event_hub::publish(std::string chunk) {
  if (chunk.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    chunks_.push_back(std::make_shared<const std::string>(std::move(chunk)));
    if (chunks_.size() > capacity_) chunks_.pop_front(), ++first_;
  }
  changed_.notify_all();
}

event_hub::reading event_hub::read(uint64_t& cursor, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, wait, [&] { return closed_ || cursor < first_ + chunks_.size(); });
  reading out;
  if (closed_) return out.closed = true, out;
  if (cursor < first_) {
    ++dropped_;
    out.behind = true;
    return out;
  }
  std::vector<std::shared_ptr<const std::string>> taken(chunks_.begin() + static_cast<long>(cursor - first_),
                                                        chunks_.end());
  cursor = first_ + chunks_.size();
  lock.unlock();  // 200 readers copying under the lock would hold up the writer and each other
  for (const auto& chunk : taken) out.data += *chunk;
  return out;
}

void event_hub::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  changed_.notify_all();
}

event_hub::session::session(event_hub& hub) : cursor(0), hub_(hub) {
  std::lock_guard<std::mutex> lock(hub.mutex_);
  cursor = hub.first_ + hub.chunks_.size();
  ++hub.readers_;
}

event_hub::session::~session() {
  std::lock_guard<std::mutex> lock(hub_.mutex_);
  --hub_.readers_;
}

size_t event_hub::readers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return readers_;
}

uint64_t event_hub::dropped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return dropped_;
}

}  // namespace poolbus

// exec_admission: which execs of one alloc may run now. Execs are admitted in
// arrival order (FIFO, no overtaking) while the resources of the running ones
// plus the next one fit the alloc's. Invariant: the sum of the running execs'
// resources never exceeds the capacity; an exec bigger than the capacity is
// refused up front (precondition) and so never blocks the queue forever.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "schemas/resources.hpp"

namespace poolbus {

class exec_admission {
 public:
  explicit exec_admission(Resources capacity) : capacity_(std::move(capacity)) {}

  // precondition when `want` can never fit the alloc.
  outcome<void> check_fits(const Resources& want) const;
  // Queues an exec (must have passed check_fits; ids unique).
  void enqueue(const std::string& id, const Resources& want);
  // Moves execs from the head of the queue to running while each fits; returns
  // the ids admitted, in order.
  std::vector<std::string> admit();
  // A running exec ended, or a waiting one was withdrawn: frees its share. Unknown ids are ignored.
  void release(const std::string& id);

  bool is_running(const std::string& id) const { return running_.count(id) != 0; }
  bool is_waiting(const std::string& id) const;
  size_t running_count() const { return running_.size(); }
  size_t waiting_count() const { return waiting_.size(); }
  Resources in_use() const;
  const Resources& capacity() const { return capacity_; }

 private:
  struct queued {
    std::string id;
    Resources want;
  };
  Resources capacity_;
  std::deque<queued> waiting_;
  std::map<std::string, Resources> running_;
};

}  // namespace poolbus

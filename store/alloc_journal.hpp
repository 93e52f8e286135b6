// alloc_journal: where a pool writes every acknowledged change of its allocs
// before it replies, and reads them back after a restart. state_store is the
// durable one; tests may use memory_journal.
// Invariant: commit is all or nothing; after a successful commit, load returns
// every alloc put and not erased since, exactly as put.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/outcome.hpp"

namespace poolbus {

// One change of the alloc table: an alloc created or renewed (put, the whole
// inspect) or gone (erase: freed, collected or stopped; only the id matters).
struct journal_change {
  enum class kind { put, erase };
  kind what = kind::put;
  AllocInspect alloc;

  static journal_change put(AllocInspect alloc) { return {kind::put, std::move(alloc)}; }
  static journal_change erase(AllocInspect alloc) { return {kind::erase, std::move(alloc)}; }
};

class alloc_journal {
 public:
  virtual ~alloc_journal() = default;
  // For logs and errors: what the journal writes to.
  virtual std::string describe() const = 0;
  // Every alloc stored, with its full inspect (URI ids, meta, labels, lease).
  virtual outcome<std::vector<AllocInspect>> load() = 0;
  // Applies every change in order, atomically and durably (internal on failure,
  // and then nothing of the batch is applied).
  virtual outcome<void> commit(const std::vector<journal_change>& changes) = 0;
  // The pool's drain (false until set), kept as durably as a commit.
  virtual outcome<bool> draining() = 0;
  virtual outcome<void> set_draining(bool on) = 0;
};

// A journal in memory, for tests: fail_commits makes every commit fail until reset.
class memory_journal final : public alloc_journal {
 public:
  std::string describe() const override { return "memory"; }
  outcome<std::vector<AllocInspect>> load() override;
  outcome<void> commit(const std::vector<journal_change>& changes) override;
  outcome<bool> draining() override { return draining_; }
  outcome<void> set_draining(bool on) override {
    if (fail_commits) return make_pool_error(error_kind::internal, "memory journal: commits fail");
    draining_ = on;
    return {};
  }

  bool fail_commits = false;
  size_t commits = 0;  // successful commits, to see batching

 private:
  std::vector<AllocInspect> allocs_;  // in put order, ids unique
  bool draining_ = false;
};

}  // namespace poolbus

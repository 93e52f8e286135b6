// alloc_users: which user each alloc's execs run as, and the ownership of the
// alloc's directory that keeps them apart.
//
// With a uid range (a root worker's --exec-uids), every alloc that runs an exec
// gets a uid of its own (gid = uid), recorded as its directory's group: the
// directory is root:<uid> 0710, so only that user (and root) may enter it, and
// a restarted worker reads the uid back from it. Inside, only the execs'
// working directories and tmp/ belong to the user; records, logs and the
// repository stay root's, so an exec can neither read another's files nor
// plant a symlink the worker would follow.
// With one shared user (--exec-user) or the worker's own (not root), allocs
// are not kept apart from each other: docs/security.md says what that means.
//
// Invariant: no two live alloc directories share a uid of the range; a uid
// returns to the range only when its alloc's directory has been removed.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "schemas/outcome.hpp"

namespace poolbus {

struct exec_user {
  int64_t uid = -1;  // -1: the worker's own
  int64_t gid = -1;
  bool own() const { return uid < 0; }
};

class alloc_users {
 public:
  // Execs run as the worker's own user (a worker that is not root).
  static std::shared_ptr<alloc_users> worker_user();
  // Every alloc's execs run as this one user (weaker: allocs share it).
  static std::shared_ptr<alloc_users> shared_user(int64_t uid, int64_t gid);
  // A uid of its own per alloc from [from, to]; the uids recorded by the alloc
  // directories already under `allocs_dir` are taken.
  static std::shared_ptr<alloc_users> uid_range(int64_t from, int64_t to, const std::string& allocs_dir);

  // Makes (or adopts) the alloc's directory as described above, with its tmp/;
  // returns the alloc's user. `unavailable` when the range is exhausted.
  outcome<exec_user> prepare(const std::string& alloc_dir);
  // Hands a directory the worker made inside the alloc to the alloc's user
  // (0700), or lets the user traverse it only (root:<gid> 0710).
  outcome<void> give(const std::string& path, const exec_user& user) const;
  outcome<void> let_through(const std::string& path, const exec_user& user) const;
  // The alloc's directory is about to be removed: its uid is free again after.
  void release(const std::string& alloc_dir);

  std::string describe() const;
  size_t in_use() const;

 private:
  enum class mode { worker, shared, range };
  alloc_users(mode m, int64_t from, int64_t to) : mode_(m), from_(from), to_(to) {}
  outcome<int64_t> acquire_locked();

  mode mode_;
  int64_t from_, to_;  // the range, or (uid, gid) of the shared user
  mutable std::mutex mutex_;
  std::set<int64_t> used_;
};

}  // namespace poolbus

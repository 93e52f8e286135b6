// state_store: a worker pool's durable state, an SQLite file <state-dir>/state.db
// in WAL mode: the pool's facts (id, total) and its allocs with meta, labels
// and leases, one row per alloc (so an accept, a keepalive or a free is one
// statement in the burst's one transaction). Invariant: a commit that returned ok is on disk (synchronous=FULL,
// the default) or, with store_sync::os, in the OS's page cache (it survives the
// process's death, not the machine's); a file that is corrupt, not ours, of
// another schema or of another pool is reported and never written to, emptied
// or deleted.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "schemas/resources.hpp"
#include "store/alloc_journal.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace poolbus {

// How far a commit goes before it returns. full: fdatasync of the WAL (SQLite
// synchronous=FULL), so it survives a power loss or kernel crash. os: written
// to the WAL file only (synchronous=NORMAL in WAL mode; checkpoints still
// sync), so it survives a crash or SIGKILL of the process, but a power loss or
// kernel crash may lose the last commits (never corrupts the file).
enum class store_sync { full, os };

class state_store final : public alloc_journal {
 public:
  static constexpr int schema_version = 2;  // 1 (before 2026-12) is upgraded on open
  static constexpr const char* file_name = "state.db";

  // Opens <state_dir>/state.db for pool `pool_id`, creating it when absent
  // (built beside it and renamed into place, so a crash mid-creation never
  // leaves a half-made state.db). Checks integrity (quick_check), that the file
  // is a poolbus store of this schema version (a schema 1 file is upgraded in
  // place, in one transaction) and of this pool; holds it
  // exclusively while open. Records `total` as the pool's total when given.
  // Errors are internal, their message the reason (the caller names the path).
  static outcome<std::unique_ptr<state_store>> open(const std::string& state_dir, const std::string& pool_id,
                                                    std::optional<Resources> total = std::nullopt,
                                                    store_sync sync = store_sync::full);
  ~state_store() override;
  state_store(const state_store&) = delete;
  state_store& operator=(const state_store&) = delete;

  const std::string& path() const { return path_; }
  const std::string& pool_id() const { return pool_id_; }
  // The total recorded last (empty before any was recorded).
  outcome<Resources> total();
  // The schema version this open upgraded the file from (0: it was current).
  int upgraded_from() const { return upgraded_from_; }
  // SQLite's PRAGMA synchronous in effect: 2 (FULL) for store_sync::full, 1 (NORMAL) for os.
  outcome<int64_t> synchronous_level();

  std::string describe() const override { return path_; }
  outcome<std::vector<AllocInspect>> load() override;
  outcome<void> commit(const std::vector<journal_change>& changes) override;
  // In the table pool_flags (created on open when absent: older stores gain it).
  outcome<bool> draining() override;
  outcome<void> set_draining(bool on) override;

 private:
  struct statement;
  state_store(std::string path, std::string pool_id, sqlite3* db);
  outcome<void> prepare();
  outcome<void> put(const AllocInspect& alloc);
  outcome<void> erase(const std::string& local_id);
  outcome<std::vector<AllocInspect>> load_schema1();
  outcome<void> upgrade_from_schema1();
  outcome<void> exec(const char* sql);
  pool_error failure(const std::string& doing) const;

  std::string path_;
  std::string pool_id_;
  sqlite3* db_ = nullptr;
  std::vector<std::unique_ptr<statement>> statements_;
  statement* upsert_alloc_ = nullptr;
  statement* delete_alloc_ = nullptr;
  statement* begin_ = nullptr;
  statement* commit_ = nullptr;
  int upgraded_from_ = 0;
};

}  // namespace poolbus

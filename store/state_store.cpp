#include "store/state_store.hpp"

#include "store/alloc_record.hpp"

#include <sqlite3.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>

namespace poolbus {
namespace {

namespace fs = std::filesystem;

// PRAGMA application_id of a poolbus store: "pool" in ASCII. Tells our file
// apart from any other SQLite database someone put in the state dir.
constexpr int64_t poolbus_application_id = 0x706f6f6c;

struct db_closer {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using db_handle = std::unique_ptr<sqlite3, db_closer>;

pool_error store_error(std::string reason) { return make_pool_error(error_kind::internal, std::move(reason)); }

std::string reason_of(sqlite3* db) {
  if (!db) return "out of memory";
  std::string reason = sqlite3_errmsg(db);
  int code = sqlite3_errcode(db) & 0xff;
  if (code == SQLITE_NOTADB) reason += " (not an SQLite database: corrupt or foreign file)";
  if (code == SQLITE_CORRUPT) reason += " (the file is corrupt)";
  if (code == SQLITE_BUSY) reason += " (another pool-worker holds this state dir?)";
  return reason;
}

outcome<void> exec_sql(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string reason = reason_of(db);
    sqlite3_free(message);
    return store_error(reason);
  }
  return {};
}

// Column 0 of every row of `sql`, as text.
outcome<std::vector<std::string>> query_column(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) return store_error(reason_of(db));
  std::vector<std::string> rows;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    auto text = sqlite3_column_text(stmt, 0);
    rows.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return store_error(reason_of(db));
  return rows;
}

outcome<int64_t> query_int(sqlite3* db, const char* sql) {
  auto rows = query_column(db, sql);
  if (!rows) return rows.error();
  if (rows->size() != 1) return store_error(std::string(sql) + " gave " + std::to_string(rows->size()) + " rows");
  return static_cast<int64_t>(std::strtoll(rows->front().c_str(), nullptr, 10));
}

outcome<db_handle> open_db(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  db_handle db(raw);
  if (rc != SQLITE_OK) return store_error("cannot open: " + reason_of(raw));
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

outcome<void> fsync_path(const fs::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return store_error("open " + path.string() + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return store_error("fsync " + path.string() + ": " + std::strerror(err));
  return {};
}

// Schema 2: one row per alloc, its resources, want and labels in one BLOB
// (store/alloc_record), so a change is one statement.
const char* const allocs_table_sql = R"sql(
CREATE TABLE allocs (
  local_id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_ms INTEGER NOT NULL,
  last_keepalive_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, record BLOB NOT NULL) WITHOUT ROWID;
)sql";

// A new store: the pool's facts, then its allocs (committed with them).
const char* const pool_tables_sql = R"sql(
PRAGMA journal_mode = WAL;
BEGIN;
CREATE TABLE pool (id TEXT NOT NULL);
CREATE TABLE pool_resources (name TEXT PRIMARY KEY, units INTEGER NOT NULL) WITHOUT ROWID;
)sql";

// The pool's flags (drain): added after schema 1, so created when absent.
const char* const flags_sql =
    "CREATE TABLE IF NOT EXISTS pool_flags (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID";

// Builds a fresh store at `path` via `path.new` and an atomic rename, so state.db
// either does not exist or is a complete, empty store.
outcome<void> create_store(const fs::path& path, const std::string& pool_id) {
  fs::path fresh = path.string() + ".new";
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(fresh.string() + suffix, ignored);
  {
    auto db = open_db(fresh.string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (!db) return db.error();
    sqlite3* raw = db->get();
    auto pragmas = "PRAGMA application_id = " + std::to_string(poolbus_application_id) +
                   "; PRAGMA user_version = " + std::to_string(state_store::schema_version) +
                   "; PRAGMA synchronous = FULL;";
    if (auto ok = exec_sql(raw, pragmas.c_str()); !ok) return ok.error();
    auto schema = std::string(pool_tables_sql) + allocs_table_sql + "COMMIT;";
    if (auto ok = exec_sql(raw, schema.c_str()); !ok) return ok.error();
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(raw, "INSERT INTO pool (id) VALUES (?)", -1, &stmt, nullptr) != SQLITE_OK)
      return store_error(reason_of(raw));
    sqlite3_bind_text(stmt, 1, pool_id.c_str(), static_cast<int>(pool_id.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return store_error(reason_of(raw));
    // Closing checkpoints the WAL into the file and removes the WAL.
    if (sqlite3_close(db->release()) != SQLITE_OK) return store_error("closing the new store failed");
  }
  if (auto ok = fsync_path(fresh, O_RDONLY); !ok) return ok;
  std::error_code ec;
  fs::rename(fresh, path, ec);
  if (ec) return store_error("rename " + fresh.string() + ": " + ec.message());
  return fsync_path(path.parent_path(), O_RDONLY | O_DIRECTORY);
}

}  // namespace

// A prepared statement, reset after every use.
struct state_store::statement {
  sqlite3_stmt* stmt = nullptr;
  ~statement() { sqlite3_finalize(stmt); }
  void text(int i, const std::string& s) {
    sqlite3_bind_text(stmt, i, s.c_str(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void integer(int i, int64_t v) { sqlite3_bind_int64(stmt, i, v); }
  void blob(int i, const std::string& b) {
    sqlite3_bind_blob(stmt, i, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
  }
  bool run() {
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc == SQLITE_DONE;
  }
};

outcome<std::unique_ptr<state_store>> state_store::open(const std::string& state_dir, const std::string& pool_id,
                                                        std::optional<Resources> total, store_sync sync) {
  fs::path path = fs::path(state_dir) / file_name;
  std::error_code ec;
  bool exists = fs::exists(path, ec);
  if (ec) return store_error("cannot stat: " + ec.message());
  if (!exists) {
    if (auto created = create_store(path, pool_id); !created) return created.error();
  } else {
    auto size = fs::file_size(path, ec);
    if (ec) return store_error("cannot stat: " + ec.message());
    // A store is never empty (it is created whole), so an empty file lost its content.
    if (size == 0) return store_error("the file is empty (truncated?); left as is");
    if (::access(path.c_str(), R_OK | W_OK) != 0)
      return store_error(std::string("not readable and writable: ") + std::strerror(errno));
  }

  // No SQLITE_OPEN_CREATE: the file is there; if it vanished, that is an error.
  auto db = open_db(path.string(), SQLITE_OPEN_READWRITE);
  if (!db) return db.error();
  sqlite3* raw = db->get();
  // Exclusive: one pool-worker per state dir; this also keeps the WAL index in
  // the process, so no -shm file is shared. Nothing below writes until every
  // check passed.
  if (auto ok = exec_sql(raw, "PRAGMA locking_mode = EXCLUSIVE"); !ok) return ok.error();
  auto checked = query_column(raw, "PRAGMA quick_check");
  if (!checked) return store_error("integrity check failed: " + checked.error().message);
  if (checked->size() != 1 || checked->front() != "ok") {
    std::string problems;
    for (size_t i = 0; i < checked->size() && i < 3; ++i) problems += (i ? "; " : "") + (*checked)[i];
    return store_error("integrity check failed (the file is corrupt): " + problems);
  }
  auto app = query_int(raw, "PRAGMA application_id");
  if (!app) return app.error();
  if (*app != poolbus_application_id)
    return store_error("not a poolbus state store (application_id " + std::to_string(*app) + ")");
  auto version = query_int(raw, "PRAGMA user_version");
  if (!version) return version.error();
  if (*version != schema_version && *version != 1)
    return store_error("schema version " + std::to_string(*version) + ", this pool-worker reads version " +
                       std::to_string(schema_version));
  auto owners = query_column(raw, "SELECT id FROM pool");
  if (!owners) return store_error("cannot read the pool's id: " + owners.error().message);
  if (owners->size() != 1) return store_error("malformed: " + std::to_string(owners->size()) + " pool rows");
  if (owners->front() != pool_id)
    return store_error("belongs to pool \"" + owners->front() + "\", not \"" + pool_id + "\"");
  auto mode = query_column(raw, "PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  if (mode->size() != 1 || mode->front() != "wal")
    return store_error("cannot switch to WAL mode (got " + (mode->empty() ? "nothing" : mode->front()) + ")");
  const char* synchronous = sync == store_sync::full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
  if (auto ok = exec_sql(raw, synchronous); !ok) return ok.error();

  std::unique_ptr<state_store> store(new state_store(path.string(), pool_id, db->release()));
  // Yesterday's stores open as they are: schema 1 is rewritten in place first.
  if (auto ready = *version == 1 ? store->upgrade_from_schema1() : store->prepare(); !ready) return ready.error();
  if (total) {
    if (auto ok = store->exec("BEGIN IMMEDIATE"); !ok) return ok.error();
    bool written = store->exec("DELETE FROM pool_resources").ok();
    sqlite3_stmt* stmt = nullptr;
    written = written && sqlite3_prepare_v2(store->db_, "INSERT INTO pool_resources (name, units) VALUES (?, ?)", -1,
                                            &stmt, nullptr) == SQLITE_OK;
    for (const auto& [name, units] : total->amounts()) {
      if (!written) break;
      sqlite3_bind_text(stmt, 1, name.c_str(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
      sqlite3_bind_int64(stmt, 2, units);
      written = sqlite3_step(stmt) == SQLITE_DONE;
      sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    if (!written) {
      auto error = store->failure("recording the total");
      store->exec("ROLLBACK");
      return error;
    }
    if (auto ok = store->exec("COMMIT"); !ok) return ok.error();
  } else {
    // Take the exclusive lock now rather than at the first change.
    if (auto ok = store->exec("BEGIN IMMEDIATE; COMMIT"); !ok) return ok.error();
  }
  return store;
}

state_store::state_store(std::string path, std::string pool_id, sqlite3* db)
    : path_(std::move(path)), pool_id_(std::move(pool_id)), db_(db) {}

state_store::~state_store() {
  statements_.clear();
  sqlite3_close_v2(db_);
}

pool_error state_store::failure(const std::string& doing) const { return store_error(doing + ": " + reason_of(db_)); }

outcome<void> state_store::exec(const char* sql) { return exec_sql(db_, sql); }

outcome<void> state_store::prepare() {
  auto make = [&](const char* sql, statement*& slot) {
    auto st = std::make_unique<statement>();
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->stmt, nullptr) != SQLITE_OK) return false;
    slot = st.get();
    statements_.push_back(std::move(st));
    return true;
  };
  bool ok = make(
                "INSERT OR REPLACE INTO allocs (local_id, owner, created_ms, last_keepalive_ms, expires_ms, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                upsert_alloc_) &&
            make("DELETE FROM allocs WHERE local_id = ?", delete_alloc_) && make("BEGIN IMMEDIATE", begin_) &&
            make("COMMIT", commit_);
  if (!ok) return failure("malformed store: preparing statements");
  return {};
}

outcome<Resources> state_store::total() {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT name, units FROM pool_resources", -1, &stmt, nullptr) != SQLITE_OK)
    return failure("reading the total");
  Resources out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
    out.set_units(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), sqlite3_column_int64(stmt, 1));
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return failure("reading the total");
  return out;
}

outcome<bool> state_store::draining() {
  if (auto made = exec(flags_sql); !made) return made.error();
  auto value = query_int(db_, "SELECT COALESCE((SELECT value FROM pool_flags WHERE name = 'draining'), 0)");
  if (!value) return value.error();
  return *value != 0;
}

outcome<void> state_store::set_draining(bool on) {
  if (auto made = exec(flags_sql); !made) return made;
  std::string sql =
      std::string("INSERT OR REPLACE INTO pool_flags (name, value) VALUES ('draining', ") + (on ? "1" : "0") + ")";
  return exec(sql.c_str());
}

outcome<int64_t> state_store::synchronous_level() { return query_int(db_, "PRAGMA synchronous"); }

namespace {

std::string column_text(sqlite3_stmt* stmt, int col) {
  auto t = sqlite3_column_text(stmt, col);
  return std::string(t ? reinterpret_cast<const char*>(t) : "");
}

// Runs `sql` and hands each row to `row`, which returns "" or what is wrong with it.
template <class Row>
outcome<void> read_rows(sqlite3* db, const char* sql, Row&& row) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK)
    return store_error("reading allocs: " + reason_of(db));
  int rc;
  std::string bad;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && bad.empty()) bad = row(stmt);
  sqlite3_finalize(stmt);
  if (!bad.empty()) return store_error("malformed alloc row: " + bad);
  if (rc != SQLITE_DONE) return store_error("reading allocs: " + reason_of(db));
  return {};
}

// Columns 0-4 of an allocs row (local_id, owner, created, keepalive, expiry),
// both schemas: "" or what is wrong.
std::string read_lease_columns(sqlite3_stmt* stmt, const std::string& pool_id, AllocInspect& alloc) {
  auto local = column_text(stmt, 0);
  if (local.empty() || local.find('/') != std::string::npos) return "alloc id \"" + local + "\"";
  alloc.id = make_pool_uri(pool_id, local);
  alloc.pool = pool_id;
  alloc.taskdb_alloc_id = taskdb_alloc_id(alloc.id);
  alloc.meta.owner = column_text(stmt, 1);
  alloc.created_ms = sqlite3_column_int64(stmt, 2);
  alloc.last_keepalive_ms = sqlite3_column_int64(stmt, 3);
  alloc.expires_ms = sqlite3_column_int64(stmt, 4);
  return "";
}

constexpr const char* lease_columns = "local_id, owner, created_ms, last_keepalive_ms, expires_ms";

}  // namespace

outcome<std::vector<AllocInspect>> state_store::load() {
  std::vector<AllocInspect> out;
  auto sql = std::string("SELECT ") + lease_columns + ", record FROM allocs ORDER BY local_id";
  auto ok = read_rows(db_, sql.c_str(), [&](sqlite3_stmt* stmt) -> std::string {
    AllocInspect alloc;
    if (auto bad = read_lease_columns(stmt, pool_id_, alloc); !bad.empty()) return bad;
    auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt, 5));
    auto record = decode_alloc_record(std::string_view(bytes ? bytes : "", sqlite3_column_bytes(stmt, 5)));
    if (!record) return "record of " + local_id_of(alloc.id) + ": " + record.error().message;
    alloc.resources = std::move(record->resources);
    alloc.meta.want = std::move(record->want);
    alloc.meta.labels = std::move(record->labels);
    out.push_back(std::move(alloc));
    return "";
  });
  if (!ok) return ok.error();
  return out;
}

// Schema 1 kept an alloc's resources and labels in tables of their own.
outcome<std::vector<AllocInspect>> state_store::load_schema1() {
  std::map<std::string, AllocInspect> by_local;
  auto sql = std::string("SELECT ") + lease_columns + " FROM allocs";
  auto ok = read_rows(db_, sql.c_str(), [&](sqlite3_stmt* stmt) -> std::string {
    AllocInspect alloc;
    if (auto bad = read_lease_columns(stmt, pool_id_, alloc); !bad.empty()) return bad;
    by_local[local_id_of(alloc.id)] = std::move(alloc);
    return "";
  });
  if (!ok) return ok.error();
  ok = read_rows(db_, "SELECT local_id, role, name, units FROM alloc_resources", [&](sqlite3_stmt* stmt) -> std::string {
    auto it = by_local.find(column_text(stmt, 0));
    if (it == by_local.end()) return "resources of unknown alloc \"" + column_text(stmt, 0) + "\"";
    auto role = column_text(stmt, 1);
    auto units = sqlite3_column_int64(stmt, 3);
    if (units < 0) return "negative resource " + column_text(stmt, 2) + " of " + it->first;
    if (role == "resources")
      it->second.resources.set_units(column_text(stmt, 2), units);
    else if (role == "want")
      it->second.meta.want.set_units(column_text(stmt, 2), units);
    else
      return "resource role \"" + role + "\"";
    return "";
  });
  if (!ok) return ok.error();
  ok = read_rows(db_, "SELECT local_id, key, value FROM alloc_labels", [&](sqlite3_stmt* stmt) -> std::string {
    auto it = by_local.find(column_text(stmt, 0));
    if (it == by_local.end()) return "labels of unknown alloc \"" + column_text(stmt, 0) + "\"";
    it->second.meta.labels[column_text(stmt, 1)] = column_text(stmt, 2);
    return "";
  });
  if (!ok) return ok.error();
  std::vector<AllocInspect> out;
  out.reserve(by_local.size());
  for (auto& [_, alloc] : by_local) out.push_back(std::move(alloc));
  return out;
}

// One transaction: schema 1's three alloc tables become schema 2's one, or
// (on any failure) the file stays as it was.
outcome<void> state_store::upgrade_from_schema1() {
  auto allocs = load_schema1();
  if (!allocs) return store_error("upgrading schema 1: " + allocs.error().message);
  auto fail = [&](const std::string& doing) {
    auto error = failure("upgrading schema 1: " + doing);
    if (!sqlite3_get_autocommit(db_)) exec("ROLLBACK");
    return error;
  };
  auto replace = std::string("BEGIN IMMEDIATE; DROP TABLE alloc_resources; DROP TABLE alloc_labels; DROP TABLE allocs;") +
                 allocs_table_sql;
  if (!exec(replace.c_str())) return fail("replacing the alloc tables");
  if (auto ok = prepare(); !ok) return fail("preparing statements");
  for (const auto& alloc : *allocs)
    if (!put(alloc)) return fail("copying alloc " + alloc.id);
  if (!exec(("PRAGMA user_version = " + std::to_string(schema_version) + "; COMMIT").c_str()))
    return fail("committing");
  upgraded_from_ = 1;
  return {};
}

outcome<void> state_store::erase(const std::string& local_id) {
  delete_alloc_->text(1, local_id);
  if (!delete_alloc_->run()) return failure("deleting alloc " + local_id);
  return {};
}

outcome<void> state_store::put(const AllocInspect& alloc) {
  auto local = local_id_of(alloc.id);
  upsert_alloc_->text(1, local);
  upsert_alloc_->text(2, alloc.meta.owner);
  upsert_alloc_->integer(3, alloc.created_ms);
  upsert_alloc_->integer(4, alloc.last_keepalive_ms);
  upsert_alloc_->integer(5, alloc.expires_ms);
  upsert_alloc_->blob(6, encode_alloc_record(alloc.resources, alloc.meta.want, alloc.meta.labels));
  if (!upsert_alloc_->run()) return failure("writing alloc " + local);
  return {};
}

outcome<void> state_store::commit(const std::vector<journal_change>& changes) {
  if (changes.empty()) return {};
  if (!begin_->run()) return failure("commit: begin");
  for (const auto& change : changes) {
    auto done = change.what == journal_change::kind::put ? put(change.alloc) : erase(local_id_of(change.alloc.id));
    if (!done) {
      exec("ROLLBACK");
      return done;
    }
  }
  if (!commit_->run()) {
    auto error = failure("commit");
    if (!sqlite3_get_autocommit(db_)) exec("ROLLBACK");
    return error;
  }
  return {};
}

}  // namespace poolbus

// state_store against real SQLite files in a temporary directory: round trip,
// reopen, corrupt and truncated files (reported, never touched), wrong pool.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "store/state_store.hpp"

using namespace poolbus;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    char tmpl[] = "/tmp/poolbus-store-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path db() const { return path / "state.db"; }
};

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

AllocInspect alloc(const std::string& pool, const std::string& local, int64_t expires_ms) {
  AllocInspect a;
  a.id = make_pool_uri(pool, local);
  a.pool = pool;
  a.taskdb_alloc_id = taskdb_alloc_id(a.id);
  a.resources = Resources{{"cpu", 1.5}, {"mem", 2 * GiB}, {"disk", 10 * GiB}};
  a.meta.want = Resources{{"cpu", 1.5}, {"mem", 2 * GiB}, {"disk", 10 * GiB}, {"gpu", 0.001}};
  a.meta.owner = "dora@" + local;
  a.meta.labels = {{"run", "r-" + local}, {"note", "with 'quotes' and ünïcode"}};
  a.created_ms = 1700000000000;
  a.last_keepalive_ms = local == "b" ? 1700000060000 : 0;
  a.expires_ms = expires_ms;
  return a;
}

std::unique_ptr<state_store> must_open(const temp_dir& dir, const std::string& pool,
                                       std::optional<Resources> total = std::nullopt) {
  auto store = state_store::open(dir.path.string(), pool, total);
  INFO((store ? std::string("ok") : store.error().to_string()));
  REQUIRE(store.ok());
  return std::move(*store);
}

}  // namespace

TEST_CASE("state store: a new store is empty and records the total") {
  temp_dir dir;
  Resources total{{"cpu", 4}, {"mem", 8 * GiB}, {"disk", 100 * GiB}};
  auto store = must_open(dir, "w1", total);
  CHECK(store->path() == dir.db().string());
  CHECK(fs::exists(dir.db()));
  CHECK_FALSE(fs::exists(dir.path / "state.db.new"));
  auto loaded = store->load();
  REQUIRE(loaded.ok());
  CHECK(loaded->empty());
  auto recorded = store->total();
  REQUIRE(recorded.ok());
  CHECK(*recorded == total);
}

TEST_CASE("state store: round trip of puts and erases, across reopen") {
  temp_dir dir;
  auto a = alloc("w1", "a", 1700000120000);
  auto b = alloc("w1", "b", 1700000360000);
  auto c = alloc("w1", "c", 1700000120000);
  {
    auto store = must_open(dir, "w1");
    REQUIRE(store->commit({journal_change::put(a), journal_change::put(b), journal_change::put(c)}).ok());
    // A keepalive rewrites the lease; a free erases.
    b.last_keepalive_ms = 1700000100000;
    b.expires_ms = 1700000400000;
    b.meta.labels.erase("note");
    REQUIRE(store->commit({journal_change::put(b), journal_change::erase(c)}).ok());
    auto loaded = store->load();
    REQUIRE(loaded.ok());
    CHECK(*loaded == std::vector<AllocInspect>{a, b});
  }
  auto reopened = must_open(dir, "w1");
  auto loaded = reopened->load();
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == 2);
  CHECK(loaded->at(0) == a);  // every field: URI, digest, resources, meta, labels, lease
  CHECK(loaded->at(1) == b);
  CHECK(loaded->at(1).meta.labels.count("note") == 0);
  CHECK(loaded->at(0).meta.labels.at("note") == "with 'quotes' and ünïcode");
}

TEST_CASE("state store: an empty commit and an erase of an unknown alloc are fine") {
  temp_dir dir;
  auto store = must_open(dir, "w1");
  CHECK(store->commit({}).ok());
  CHECK(store->commit({journal_change::erase(alloc("w1", "nope", 0))}).ok());
  CHECK(store->load()->empty());
}

TEST_CASE("state store: a store of another pool is refused and left alone") {
  temp_dir dir;
  {
    auto store = must_open(dir, "w1");
    REQUIRE(store->commit({journal_change::put(alloc("w1", "a", 5))}).ok());
  }
  auto before = bytes_of(dir.db());
  auto other = state_store::open(dir.path.string(), "w2");
  REQUIRE_FALSE(other.ok());
  CHECK(other.error().kind == error_kind::internal);
  CHECK_THAT(other.error().message, Catch::Contains("belongs to pool \"w1\"") && Catch::Contains("w2"));
  CHECK(bytes_of(dir.db()) == before);
  CHECK(must_open(dir, "w1")->load()->size() == 1);
}

TEST_CASE("state store: a garbage file is reported, never emptied") {
  temp_dir dir;
  std::string garbage(8192, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 7919 + 13) % 251);
  write_bytes(dir.db(), garbage);
  auto store = state_store::open(dir.path.string(), "w1");
  REQUIRE_FALSE(store.ok());
  CHECK_THAT(store.error().message, Catch::Contains("not an SQLite database"));
  CHECK(bytes_of(dir.db()) == garbage);
  CHECK_FALSE(fs::exists(dir.path / "state.db-wal"));
}

TEST_CASE("state store: an empty file is reported, not taken for a new store") {
  temp_dir dir;
  write_bytes(dir.db(), "");
  auto store = state_store::open(dir.path.string(), "w1");
  REQUIRE_FALSE(store.ok());
  CHECK_THAT(store.error().message, Catch::Contains("empty"));
  CHECK(fs::file_size(dir.db()) == 0);
}

TEST_CASE("state store: a truncated file is reported and left as is") {
  temp_dir dir;
  {
    auto store = must_open(dir, "w1");
    std::vector<journal_change> many;
    for (int i = 0; i < 400; ++i) many.push_back(journal_change::put(alloc("w1", "alloc" + std::to_string(i), i)));
    REQUIRE(store->commit(many).ok());
  }
  auto whole = bytes_of(dir.db());
  REQUIRE(whole.size() > 8 * 4096);
  auto truncated = whole.substr(0, whole.size() / 2);
  write_bytes(dir.db(), truncated);
  auto store = state_store::open(dir.path.string(), "w1");
  REQUIRE_FALSE(store.ok());
  CHECK_THAT(store.error().message, Catch::Contains("corrupt") || Catch::Contains("malformed"));
  CHECK(bytes_of(dir.db()) == truncated);
}

TEST_CASE("state store: another SQLite database or another schema version is refused") {
  temp_dir dir;
  { auto store = must_open(dir, "w1"); }
  auto whole = bytes_of(dir.db());
  SECTION("application id") {
    // Header offset 68: application_id (big endian). Zero it: a foreign SQLite file.
    auto foreign = whole;
    for (int i = 68; i < 72; ++i) foreign[i] = 0;
    write_bytes(dir.db(), foreign);
    auto store = state_store::open(dir.path.string(), "w1");
    REQUIRE_FALSE(store.ok());
    CHECK_THAT(store.error().message, Catch::Contains("not a poolbus state store"));
    CHECK(bytes_of(dir.db()) == foreign);
  }
  SECTION("schema version") {
    // Header offset 60: user_version.
    auto newer = whole;
    newer[63] = 9;
    write_bytes(dir.db(), newer);
    auto store = state_store::open(dir.path.string(), "w1");
    REQUIRE_FALSE(store.ok());
    CHECK_THAT(store.error().message, Catch::Contains("schema version 9"));
    CHECK(bytes_of(dir.db()) == newer);
  }
}

TEST_CASE("state store: one process at a time") {
  temp_dir dir;
  auto first = must_open(dir, "w1");
  auto second = state_store::open(dir.path.string(), "w1");
  REQUIRE_FALSE(second.ok());
  CHECK_THAT(second.error().message, Catch::Contains("locked"));
  CHECK(first->commit({journal_change::put(alloc("w1", "a", 5))}).ok());
}

TEST_CASE("state store: both sync modes keep a commit across the death of the process") {
  for (auto sync : {store_sync::full, store_sync::os}) {
    temp_dir dir;
    {
      auto store = state_store::open(dir.path.string(), "w1", std::nullopt, sync);
      REQUIRE(store.ok());
      auto level = (*store)->synchronous_level();
      REQUIRE(level.ok());
      CHECK(*level == (sync == store_sync::full ? 2 : 1));  // FULL : NORMAL
    }
    // The child commits and dies at once, as a SIGKILL would end it: no close,
    // no checkpoint, the WAL left as is (in os mode, maybe only in the page cache).
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      auto store = state_store::open(dir.path.string(), "w1", std::nullopt, sync);
      bool ok = store.ok() && (*store)->commit({journal_change::put(alloc("w1", "a", 5))}).ok() &&
                (*store)->commit({journal_change::put(alloc("w1", "b", 6))}).ok() &&
                (*store)->commit({journal_change::erase(alloc("w1", "a", 5))}).ok();
      ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    CHECK(fs::exists(dir.path / "state.db-wal"));  // it really died without closing
    auto store = must_open(dir, "w1");
    auto loaded = store->load();
    REQUIRE(loaded.ok());
    REQUIRE(loaded->size() == 1);
    CHECK(loaded->front() == alloc("w1", "b", 6));
  }
}

TEST_CASE("memory journal: commits apply in order, a refused commit applies nothing") {
  memory_journal journal;
  auto a = alloc("w1", "a", 5);
  REQUIRE(journal.commit({journal_change::put(a), journal_change::put(alloc("w1", "b", 6))}).ok());
  journal.fail_commits = true;
  CHECK_FALSE(journal.commit({journal_change::erase(a)}).ok());
  journal.fail_commits = false;
  CHECK(journal.load()->size() == 2);
  REQUIRE(journal.commit({journal_change::erase(a)}).ok());
  CHECK(journal.load()->size() == 1);
  CHECK(journal.commits == 2);
}

TEST_CASE("state store: the pool's drain is kept across reopen, beside the allocs") {
  temp_dir dir;
  auto a = alloc("w1", "a", 1700000120000);
  {
    auto store = must_open(dir, "w1");
    auto draining = store->draining();
    REQUIRE(draining.ok());
    CHECK_FALSE(*draining);  // never set
    REQUIRE(store->commit({journal_change::put(a)}).ok());
    REQUIRE(store->set_draining(true).ok());
  }
  {
    auto store = must_open(dir, "w1");
    CHECK(store->draining().value());
    CHECK(store->load().value() == std::vector<AllocInspect>{a});
    REQUIRE(store->set_draining(false).ok());
  }
  CHECK_FALSE(must_open(dir, "w1")->draining().value());
}

TEST_CASE("state store: a schema 1 store (made by the previous pool-worker) is upgraded in place, nothing lost") {
  temp_dir dir;
  // Made by the schema 1 code: allocs a (two labels) and b (none), a total, a drain.
  fs::copy_file(fs::path(__FILE__).parent_path() / "data" / "state-schema1.db", dir.db());
  auto a = alloc("w1", "a", 1700000120000);
  auto b = alloc("w1", "b", 1700000360000);
  b.meta.labels.clear();
  {
    auto store = must_open(dir, "w1", std::nullopt);
    CHECK(store->upgraded_from() == 1);
    auto loaded = store->load();
    REQUIRE(loaded.ok());
    CHECK(*loaded == std::vector<AllocInspect>{a, b});
    CHECK(*store->total() == Resources{{"cpu", 4}, {"mem", 8 * GiB}});
    CHECK(*store->draining());
    // The upgraded file takes changes like a new one.
    b.expires_ms += 1000;
    REQUIRE(store->commit({journal_change::put(b), journal_change::erase(a)}).ok());
  }
  auto reopened = must_open(dir, "w1", std::nullopt);
  CHECK(reopened->upgraded_from() == 0);
  CHECK(*reopened->load() == std::vector<AllocInspect>{b});
}

TEST_CASE("state store: a repeated put replaces the alloc, an erase removes it") {
  temp_dir dir;
  auto store = must_open(dir, "w1");
  auto a = alloc("w1", "a", 1700000120000);
  for (int i = 0; i < 3; ++i) {
    a.expires_ms += 1000;
    REQUIRE(store->commit({journal_change::put(a)}).ok());
  }
  CHECK(*store->load() == std::vector<AllocInspect>{a});
  REQUIRE(store->commit({journal_change::erase(a)}).ok());
  CHECK(store->load()->empty());
}

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>

#include "actors/alloc_manager.hpp"

using namespace poolbus;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("poolbus-lam-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
};

AllocInspect alloc_named(const std::string& uri) {
  AllocInspect a;
  a.id = uri;
  a.pool = "w1";
  return a;
}

}  // namespace

TEST_CASE("local alloc manager: <state_dir>/allocs/<id> comes with its first writer, kill removes it") {
  temp_dir state;
  auto manager = make_local_alloc_manager(state.path.string());
  REQUIRE(manager->name().find("allocs") != std::string::npos);
  auto a = alloc_named("w1/0123456789abcdef");
  REQUIRE(manager->create(a, 120000, {}).ok());
  REQUIRE(fs::is_directory(state.path / "allocs"));
  auto dir = state.path / "allocs" / "0123456789abcdef";
  REQUIRE_FALSE(fs::exists(dir));  // no mkdir for an alloc that runs no exec
  REQUIRE(manager->kill(a).ok());  // nothing to remove: fine

  REQUIRE(manager->create(a, 120000, {}).ok());
  manager->opened(a);                                                    // the pool spawns its actor
  fs::create_directories(dir / "execs" / "e-1");                         // as its first exec makes it
  std::ofstream(dir / "execs" / "e-1" / "output.txt") << "exec output";  // contents go with the alloc
  REQUIRE(manager->kill(a).ok());
  REQUIRE_FALSE(fs::exists(dir));
  REQUIRE(manager->kill(a).ok());  // killing twice is harmless
}

TEST_CASE("local alloc manager: a directory an earlier run left is removed on kill without being opened") {
  temp_dir state;
  auto left = state.path / "allocs" / "00000000000000aa";
  fs::create_directories(left / "execs" / "e-1");
  auto manager = make_local_alloc_manager(state.path.string());
  REQUIRE(manager->kill(alloc_named("w1/00000000000000aa")).ok());
  REQUIRE_FALSE(fs::exists(left));
}

TEST_CASE("local alloc manager: kill looks only where a directory can be") {
  temp_dir state;
  auto manager = make_local_alloc_manager(state.path.string());
  auto opened = alloc_named("w1/00000000000000a1"), untouched = alloc_named("w1/00000000000000a2");
  REQUIRE(manager->create(opened, 120000, {}).ok());
  REQUIRE(manager->create(untouched, 120000, {}).ok());
  manager->opened(opened);
  fs::create_directories(state.path / "allocs" / "00000000000000a1");
  // Made behind the manager's back (nothing in a worker does: only an opened
  // alloc's actor writes): kill of an alloc never opened does not look for it.
  fs::create_directories(state.path / "allocs" / "00000000000000a2");
  REQUIRE(manager->kill(opened).ok());
  REQUIRE(manager->kill(untouched).ok());
  REQUIRE_FALSE(fs::exists(state.path / "allocs" / "00000000000000a1"));
  REQUIRE(fs::exists(state.path / "allocs" / "00000000000000a2"));
}

TEST_CASE("local alloc manager: ids that would escape the allocs directory are internal errors") {
  temp_dir state;
  auto manager = make_local_alloc_manager(state.path.string());
  for (const char* bad : {"w1/..", "w1/.", "w1/a/b", "w1/"}) {
    auto made = manager->create(alloc_named(bad), 120000, {});
    REQUIRE_FALSE(made.ok());
    REQUIRE(made.error().kind == error_kind::internal);
    REQUIRE(manager->kill(alloc_named(bad)).error().kind == error_kind::internal);
  }
  REQUIRE(fs::is_empty(state.path));
}

TEST_CASE("local alloc manager: a filesystem failure is an internal error") {
  temp_dir state;
  // A plain file where the allocs directory should be: create_directories fails.
  std::ofstream(state.path / "allocs") << "not a directory";
  auto manager = make_local_alloc_manager(state.path.string());
  auto made = manager->create(alloc_named("w1/abc"), 120000, {});
  REQUIRE_FALSE(made.ok());
  REQUIRE(made.error().kind == error_kind::internal);
}

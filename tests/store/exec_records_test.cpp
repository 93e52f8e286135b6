// read_file_chunk (exec logs) and content_repository::read (repo_get) at the
// edges of a file: offsets at, past and far past the end (up to INT64_MAX), and
// errors that never name a host path.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>

#include "store/content_repository.hpp"
#include "store/exec_records.hpp"

using namespace poolbus;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    char tmpl[] = "/tmp/poolbus-records-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

}  // namespace

TEST_CASE("read_file_chunk: chunks, then the end, at any offset up to INT64_MAX") {
  temp_dir dir;
  auto log = (dir.path / "stdout").string();
  write_file(log, "hello world");
  auto first = read_file_chunk(log, 0, 5);
  REQUIRE(first.ok());
  CHECK(first->data == "hello");
  CHECK_FALSE(first->at_end);
  auto last = read_file_chunk(log, 6, 100);
  REQUIRE(last.ok());
  CHECK(last->data == "world");
  CHECK(last->at_end);
  for (int64_t offset : {int64_t{11}, int64_t{12}, int64_t{1} << 40, INT64_MAX - 65536, INT64_MAX}) {
    auto past = read_file_chunk(log, offset, 65536);
    REQUIRE(past.ok());
    CHECK(past->data.empty());
    CHECK(past->at_end);
  }
  // A file not written yet reads as empty and at its end.
  auto none = read_file_chunk((dir.path / "stderr").string(), INT64_MAX, 10);
  REQUIRE(none.ok());
  CHECK(none->at_end);
}

TEST_CASE("read_file_chunk: errors name no path") {
  temp_dir dir;
  auto sub = dir.path / "a-directory";
  fs::create_directories(sub);
  auto failed = read_file_chunk(sub.string(), 0, 10);  // read(2) of a directory: EISDIR
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().kind == error_kind::internal);
  CHECK(failed.error().message.find(dir.path.string()) == std::string::npos);
  CHECK(failed.error().message.find('/') == std::string::npos);
  auto negative = read_file_chunk((dir.path / "x").string(), -1, 10);
  REQUIRE_FALSE(negative.ok());
  CHECK(negative.error().message.find('/') == std::string::npos);
}

TEST_CASE("content_repository::read: past the end is an empty last chunk; a missing object names only its digest") {
  temp_dir dir;
  content_repository repo((dir.path / "repo").string());
  const std::string digest = "sha256:" + std::string(64, 'a');
  write_file(repo.path_of(digest), "0123456789");
  auto middle = repo.read(digest, 4, 3);
  REQUIRE(middle.ok());
  CHECK(middle->data == "456");
  CHECK_FALSE(middle->at_end);
  for (int64_t offset : {int64_t{10}, int64_t{1} << 62, INT64_MAX}) {
    auto past = repo.read(digest, offset, 512 * 1024);
    REQUIRE(past.ok());
    CHECK(past->data.empty());
    CHECK(past->at_end);
  }
  auto missing = repo.read("sha256:" + std::string(64, 'b'), 0, 10);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == error_kind::not_exist);
  CHECK(missing.error().message.find(dir.path.string()) == std::string::npos);
}

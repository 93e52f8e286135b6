#include "store/exec_records.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace poolbus {
namespace {

namespace fs = std::filesystem;

pool_error io_error(const std::string& doing, int err) {
  return make_pool_error(error_kind::internal, doing + ": " + std::strerror(err));
}

// Writes `bytes` to `path` whole: temp file, fsync, rename. Errors name
// `what`, never the path (they may reach a client; the path is the worker's).
outcome<void> write_whole(const std::string& path, const std::string& bytes, const std::string& what) {
  std::string temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("create " + what, errno);
  size_t written = 0;
  while (written < bytes.size()) {
    auto n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return io_error("write " + what, err);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return io_error("fsync " + what, err);
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) return io_error("replace " + what, errno);
  return {};
}

}  // namespace

exec_records::exec_records(std::string alloc_dir) : alloc_dir_(std::move(alloc_dir)) {}

std::string exec_records::exec_dir(const std::string& id) const { return alloc_dir_ + "/execs/e-" + id; }

outcome<void> exec_records::create(const std::string& id) {
  std::error_code ec;
  fs::create_directories(work_dir(id), ec);
  if (ec) return make_pool_error(error_kind::internal, "create the directory of exec " + id + ": " + ec.message());
  return {};
}

outcome<void> exec_records::save(const exec_record& record) {
  return write_whole(exec_dir(record.inspect.id) + "/record", encode_exec_record(record),
                     "the record of exec " + record.inspect.id);
}

std::vector<exec_record> exec_records::load_all(std::vector<std::string>* skipped) const {
  std::vector<exec_record> out;
  std::error_code ec;
  fs::directory_iterator it(alloc_dir_ + "/execs", ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    auto record_path = it->path() / "record";
    std::ifstream in(record_path, std::ios::binary);
    if (!in) continue;  // created, never saved: nothing to restore
    std::stringstream bytes;
    bytes << in.rdbuf();
    auto record = decode_exec_record(bytes.str());
    if (!record) {
      if (skipped) skipped->push_back(record_path.string() + ": " + record.error().message);
      continue;
    }
    out.push_back(std::move(*record));
  }
  std::sort(out.begin(), out.end(), [](const exec_record& a, const exec_record& b) {
    return a.inspect.created_ms != b.inspect.created_ms ? a.inspect.created_ms < b.inspect.created_ms
                                                        : a.inspect.id < b.inspect.id;
  });
  return out;
}

outcome<void> exec_records::remove(const std::string& id) {
  std::error_code ec;
  fs::remove_all(exec_dir(id), ec);
  if (ec) return make_pool_error(error_kind::internal, "remove the directory of exec " + id + ": " + ec.message());
  return {};
}

std::string encode_exec_record(const exec_record& record) {
  return codec::pack_body([&](msgpack::sbuffer&, codec::packer& pk) {
    pk.pack_map(4);
    codec::pack_string(pk, "inspect");
    codec::pack_exec_inspect(pk, record.inspect);
    codec::pack_string(pk, "config");
    codec::pack_exec_config(pk, record.config);
    codec::pack_string(pk, "pid");
    pk.pack_int64(record.pid);
    codec::pack_string(pk, "start_time");
    pk.pack_int64(record.start_time);
  });
}

outcome<exec_record> decode_exec_record(std::string_view body) {
  return codec::guarded([&] {
    auto handle = codec::unpack_body(body, codec::max_reply_bytes);
    codec::map_view view(handle.get(), "");
    exec_record record;
    record.inspect = view.read("inspect", codec::read_exec_inspect);
    record.config = view.read("config", codec::read_exec_config);
    record.pid = view.optional_int("pid").value_or(0);
    record.start_time = view.optional_int("start_time").value_or(-1);
    return record;
  });
}

outcome<file_chunk> read_file_chunk(const std::string& path, int64_t offset, int64_t max_bytes) {
  // Errors name what was read, never where: the path is the worker's, not the client's.
  auto read_error = [](int err) {
    return make_pool_error(error_kind::internal, std::string("read: ") + std::strerror(err));
  };
  if (offset < 0 || max_bytes < 0) return make_pool_error(error_kind::invalid, "read: negative offset or size");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return file_chunk{"", true};  // nothing written (yet)
    return read_error(errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return read_error(err);
  }
  file_chunk chunk;
  // At or past the end (any offset up to INT64_MAX): nothing to read, no pread
  // whose offset + size could overflow.
  int64_t want = offset >= st.st_size ? 0 : std::min<int64_t>(max_bytes, st.st_size - offset);
  chunk.data.resize(static_cast<size_t>(want));
  size_t got = 0;
  while (got < chunk.data.size()) {
    auto n = ::pread(fd, chunk.data.data() + got, chunk.data.size() - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return read_error(err);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  chunk.data.resize(got);
  // Reached the end: nothing left after what was read, by the size now (a
  // log may have grown meanwhile; then it is not the end).
  chunk.at_end = ::fstat(fd, &st) == 0 && (offset >= st.st_size || static_cast<int64_t>(got) >= st.st_size - offset);
  ::close(fd);
  return chunk;
}

}  // namespace poolbus

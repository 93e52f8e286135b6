#include "store/content_repository.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "schemas/sha256.hpp"

namespace poolbus {
namespace {

namespace fs = std::filesystem;

pool_error io_error(const std::string& doing, int err) {
  return make_pool_error(error_kind::internal, doing + ": " + std::strerror(err));
}

std::atomic<uint64_t> temp_counter{0};

}  // namespace

content_repository::content_repository(std::string root) : root_(std::move(root)) {}

std::string content_repository::path_of(const std::string& digest) const {
  auto colon = digest.find(':');
  return root_ + "/sha256/" + (colon == std::string::npos ? digest : digest.substr(colon + 1));
}

outcome<ExecResultFile> content_repository::put_file(const std::string& path) {
  int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) return make_pool_error(error_kind::not_exist, "missing output " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(in);
    return make_pool_error(error_kind::not_exist, "output " + path + " is not a regular file");
  }
  std::error_code ec;
  fs::create_directories(root_ + "/sha256", ec);
  if (ec) {
    ::close(in);
    return make_pool_error(error_kind::internal, "create " + root_ + ": " + ec.message());
  }
  // Copy while hashing, so what is stored is exactly what was hashed even if
  // the source changes meanwhile.
  std::string temp = root_ + "/sha256/.tmp-" + std::to_string(::getpid()) + "-" + std::to_string(++temp_counter);
  int out = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
  if (out < 0) {
    int err = errno;
    ::close(in);
    return io_error("create " + temp, err);
  }
  sha256 hash;
  int64_t size = 0;
  char buffer[1 << 16];
  for (;;) {
    auto n = ::read(in, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) {
        int err = errno;
        ::close(in);
        ::close(out);
        ::unlink(temp.c_str());
        return io_error("read " + path, err);
      }
      break;
    }
    hash.update(buffer, static_cast<size_t>(n));
    size += n;
    for (ssize_t done = 0; done < n;) {
      auto w = ::write(out, buffer + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        int err = errno;
        ::close(in);
        ::close(out);
        ::unlink(temp.c_str());
        return io_error("write " + temp, err);
      }
      done += w;
    }
  }
  ::close(in);
  ::fsync(out);
  ::close(out);
  ExecResultFile file{"sha256:" + hash.finish_hex(), size};
  if (::rename(temp.c_str(), path_of(file.digest).c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return io_error("rename into " + path_of(file.digest), err);
  }
  return file;
}

outcome<file_chunk> content_repository::read(const std::string& digest, int64_t offset, int64_t max_bytes) const {
  auto path = path_of(digest);
  if (::access(path.c_str(), R_OK) != 0)
    return make_pool_error(error_kind::not_exist, "the alloc's repository has no " + digest);
  return read_file_chunk(path, offset, max_bytes);
}

}  // namespace poolbus

#include "store/content_repository.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "schemas/sha256.hpp"

namespace poolbus {
namespace {

namespace fs = std::filesystem;

pool_error io_error(const std::string& doing, int err) {
  return make_pool_error(error_kind::internal, doing + ": " + std::strerror(err));
}

std::atomic<uint64_t> temp_counter{0};

}  // namespace

int64_t bytes_under(const std::string& root, int64_t stop_at) {
  std::error_code ec;
  int64_t total = 0;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end && total <= stop_at; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    int64_t blocks = static_cast<int64_t>(st.st_blocks) * 512;
    total += S_ISREG(st.st_mode) ? std::max<int64_t>(st.st_size, blocks) : blocks;
  }
  return total;
}

content_repository::content_repository(std::string root) : root_(std::move(root)) {}

std::string content_repository::path_of(const std::string& digest) const {
  auto colon = digest.find(':');
  return root_ + "/sha256/" + (colon == std::string::npos ? digest : digest.substr(colon + 1));
}

namespace {

// Opens `relative` beneath the directory `dir` for reading, refusing symlinks
// in every component; -1 with errno set when it cannot.
int open_beneath(const std::string& dir, const std::string& relative) {
  int at = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (at < 0) return -1;
  size_t start = 0;
  for (;;) {
    auto slash = relative.find('/', start);
    auto part = relative.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    bool last = slash == std::string::npos;
    int flags = O_CLOEXEC | O_NOFOLLOW | (last ? O_RDONLY | O_NONBLOCK | O_NOCTTY : O_RDONLY | O_DIRECTORY);
    int next = part.empty() || part == "." || part == ".." ? (errno = EINVAL, -1) : ::openat(at, part.c_str(), flags);
    int err = errno;
    ::close(at);
    if (next < 0) {
      errno = err;
      return -1;
    }
    if (last) return next;
    at = next;
    start = slash + 1;
  }
}

}  // namespace

outcome<ExecResultFile> content_repository::put_beneath(const std::string& dir, const std::string& relative,
                                                        int64_t owner_uid, int64_t max_bytes) {
  int in = open_beneath(dir, relative);
  if (in < 0) {
    if (errno == ENOENT) return make_pool_error(error_kind::not_exist, "missing output " + relative);
    auto why = errno == ELOOP || errno == ENOTDIR ? "a symlink on its path is refused" : std::strerror(errno);
    return make_pool_error(error_kind::not_exist, "missing output " + relative + ": " + why);
  }
  struct stat st {};
  if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(in);
    return make_pool_error(error_kind::not_exist, "output " + relative + " is not a regular file");
  }
  if (owner_uid >= 0 && static_cast<int64_t>(st.st_uid) != owner_uid) {
    ::close(in);
    return make_pool_error(error_kind::not_exist, "output " + relative + " does not belong to the exec's user");
  }
  if (max_bytes > 0 && st.st_size > max_bytes) {
    ::close(in);
    return make_pool_error(error_kind::precondition, "disk");
  }
  ::fcntl(in, F_SETFL, 0);  // a regular file: blocking reads from here on
  std::error_code ec;
  fs::create_directories(root_ + "/sha256", ec);
  if (ec) {
    ::close(in);
    return make_pool_error(error_kind::internal, "create the alloc's repository: " + ec.message());
  }
  // Copy while hashing, so what is stored is exactly what was hashed even if
  // the source changes meanwhile.
  std::string temp = root_ + "/sha256/.tmp-" + std::to_string(::getpid()) + "-" + std::to_string(++temp_counter);
  int out = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0400);
  if (out < 0) {
    int err = errno;
    ::close(in);
    return io_error("create a repository file", err);
  }
  auto fail = [&](const std::string& doing, int err) {
    ::close(in);
    ::close(out);
    ::unlink(temp.c_str());
    return io_error(doing, err);
  };
  sha256 hash;
  int64_t size = 0;
  std::vector<char> buffer(1 << 16);
  for (;;) {
    auto n = ::read(in, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("read output " + relative, errno);
    if (n == 0) break;
    size += n;
    if (max_bytes > 0 && size > max_bytes) {  // it grew after the check
      ::close(in);
      ::close(out);
      ::unlink(temp.c_str());
      return make_pool_error(error_kind::precondition, "disk");
    }
    hash.update(buffer.data(), static_cast<size_t>(n));
    for (ssize_t done = 0; done < n;) {
      auto w = ::write(out, buffer.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail("write the repository", errno);
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
    return io_error("store output " + relative, err);
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

#include "store/alloc_users.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace poolbus {
namespace {

namespace fs = std::filesystem;

pool_error io_error(const std::string& doing, int err) {
  return make_pool_error(error_kind::internal, doing + ": " + std::strerror(err));
}

// chown + chmod without following a symlink the user may have put there.
outcome<void> own(const std::string& path, int64_t uid, int64_t gid, mode_t mode) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return io_error("stat alloc directory", errno);
  if (!S_ISDIR(st.st_mode)) return make_pool_error(error_kind::internal, "an alloc path is not a directory");
  if (::lchown(path.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0)
    return io_error("chown alloc directory", errno);
  if (::chmod(path.c_str(), mode) != 0) return io_error("chmod alloc directory", errno);
  return {};
}

outcome<void> make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return io_error("create alloc directory", errno);
  return {};
}

}  // namespace

std::shared_ptr<alloc_users> alloc_users::worker_user() {
  return std::shared_ptr<alloc_users>(new alloc_users(mode::worker, -1, -1));
}

std::shared_ptr<alloc_users> alloc_users::shared_user(int64_t uid, int64_t gid) {
  return std::shared_ptr<alloc_users>(new alloc_users(mode::shared, uid, gid));
}

std::shared_ptr<alloc_users> alloc_users::uid_range(int64_t from, int64_t to, const std::string& allocs_dir) {
  std::shared_ptr<alloc_users> users(new alloc_users(mode::range, from, to));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(allocs_dir, ec)) {
    struct stat st {};
    if (entry.path().filename().string().front() == '.') continue;  // a freed alloc's, being deleted
    if (::lstat(entry.path().c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_gid >= from && st.st_gid <= to)
      users->used_.insert(st.st_gid);
  }
  return users;
}

std::string alloc_users::describe() const {
  switch (mode_) {
    case mode::worker:
      return "the worker's own user (uid " + std::to_string(::getuid()) + "; allocs are not kept apart)";
    case mode::shared: return "one shared user (uid " + std::to_string(from_) + "; allocs are not kept apart)";
    case mode::range:
      return "a user of its own per alloc (uids " + std::to_string(from_) + "-" + std::to_string(to_) + ")";
  }
  return "?";
}

size_t alloc_users::in_use() const {
  std::lock_guard lock(mutex_);
  return used_.size();
}

outcome<int64_t> alloc_users::acquire_locked() {
  // Lowest free uid: the range is small and used_ is ordered.
  int64_t uid = from_;
  for (auto used : used_) {
    if (used > uid) break;
    if (used == uid) ++uid;
  }
  if (uid > to_)
    return make_pool_error(error_kind::unavailable, "every exec uid of this worker is in use (" +
                                                        std::to_string(to_ - from_ + 1) + " allocs run execs)");
  used_.insert(uid);
  return uid;
}

outcome<exec_user> alloc_users::prepare(const std::string& alloc_dir) {
  if (auto made = make_dir(alloc_dir); !made) return made.error();
  exec_user user;
  if (mode_ == mode::shared) user = {from_, to_};
  if (mode_ == mode::range) {
    struct stat st {};
    if (::lstat(alloc_dir.c_str(), &st) != 0) return io_error("stat alloc directory", errno);
    std::lock_guard lock(mutex_);
    if (st.st_gid >= from_ && st.st_gid <= to_ && st.st_uid == ::getuid()) {
      used_.insert(st.st_gid);  // ours already (a restart, or an earlier exec)
      user = {static_cast<int64_t>(st.st_gid), static_cast<int64_t>(st.st_gid)};
    } else {
      auto uid = acquire_locked();
      if (!uid) return uid.error();
      user = {*uid, *uid};
    }
  }
  if (user.own()) return user;
  if (auto owned = own(alloc_dir, ::getuid(), user.gid, 0710); !owned) return owned.error();
  auto tmp = alloc_dir + "/tmp";
  if (auto made = make_dir(tmp); !made) return made.error();
  if (auto given = give(tmp, user); !given) return given.error();
  return user;
}

outcome<void> alloc_users::give(const std::string& path, const exec_user& user) const {
  if (user.own()) return {};
  return own(path, user.uid, user.gid, 0700);
}

outcome<void> alloc_users::let_through(const std::string& path, const exec_user& user) const {
  if (user.own()) return {};
  return own(path, ::getuid(), user.gid, 0710);
}

void alloc_users::release(const std::string& alloc_dir) {
  if (mode_ != mode::range) return;
  struct stat st {};
  if (::lstat(alloc_dir.c_str(), &st) != 0) return;
  std::lock_guard lock(mutex_);
  used_.erase(st.st_gid);
}

}  // namespace poolbus

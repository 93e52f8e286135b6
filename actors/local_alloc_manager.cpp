// The local alloc manager: an alloc is backed by the directory
// <state_dir>/allocs/<local id>, made by whatever first writes into it (its
// first exec: exec_records::create), so an alloc that runs no exec costs no
// mkdir and no rmdir (on ext4 an rmdir writes the freed inode synchronously).
// Killing the alloc removes the directory when there is one.
// Invariant: every directory under allocs/ that is not trash belongs to a
// local id in may_exist_ (what an earlier run left, and every opened alloc),
// so kill of any other alloc touches no path: a lookup of a name that does
// not exist costs the kernel a new negative dentry per freed alloc.
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <filesystem>
#include <system_error>
#include <thread>
#include <unordered_set>

#include "actors/alloc_manager.hpp"
#include "store/alloc_users.hpp"

namespace poolbus {
namespace {

namespace fs = std::filesystem;

class local_alloc_manager final : public alloc_manager {
 public:
  local_alloc_manager(std::string state_dir, std::shared_ptr<alloc_users> users)
      : allocs_dir_(fs::path(std::move(state_dir)) / "allocs"), users_(std::move(users)) {
    note_leftover_dirs();
  }

  std::string name() const override { return "local(" + allocs_dir_.string() + ")"; }
  bool needs_existing() const override { return false; }

  outcome<void> create(const AllocInspect& alloc, int64_t /*keepalive_ms*/,
                       const std::vector<AllocInspect>& /*existing*/) override {
    auto dir = dir_of(alloc);
    if (!dir) return dir.error();
    // <state_dir>/allocs itself, once: a state dir where it cannot be made
    // fails the first create, not some later exec.
    if (!allocs_dir_made_) {
      std::error_code ec;
      fs::create_directories(allocs_dir_, ec);
      if (ec || !fs::is_directory(allocs_dir_, ec))
        return make_pool_error(error_kind::internal,
                               "create " + allocs_dir_.string() + ": " + (ec ? ec.message() : "not a directory"));
      allocs_dir_made_ = true;
      remove_leftover_trash();
    }
    return {};
  }

  void opened(const AllocInspect& alloc) override { may_exist_.insert(local_id_of(alloc.id)); }

  outcome<void> kill(const AllocInspect& alloc) override {
    auto dir = dir_of(alloc);
    if (!dir) return dir.error();
    const auto local = dir->filename().string();
    if (may_exist_.erase(local) == 0) return {};  // never opened, and no earlier run's: no directory
    if (users_) users_->release(dir->string());
    // An opened alloc whose execs wrote nothing costs one failed rmdir; an
    // empty directory one rmdir.
    if (::rmdir(dir->c_str()) == 0 || errno == ENOENT) return {};
    // Anything else is closed to every exec user (0700), renamed out of the
    // way, and deleted on a thread of its own: gigabytes of outputs must not
    // hold up the pool's thread, and its uid may serve another alloc at once.
    ::chmod(dir->c_str(), 0700);
    auto trash = allocs_dir_ / (trash_prefix + local);
    if (::rename(dir->c_str(), trash.c_str()) != 0) {
      may_exist_.insert(local);  // still there: a later kill tries again
      return make_pool_error(error_kind::internal, "cannot remove the directory of alloc " + alloc.id);
    }
    std::thread([trash] {
      std::error_code ignored;
      fs::remove_all(trash, ignored);
    }).detach();
    spdlog::debug("alloc manager: removing {}", dir->string());
    return {};
  }

 private:
  // Directories of freed allocs still being deleted: ".gone-<local id>".
  static constexpr const char* trash_prefix = ".gone-";

  // The directories an earlier run left, before this run writes any: they
  // may be killed without having been opened in this run.
  void note_leftover_dirs() {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(allocs_dir_, ec)) {
      auto name = entry.path().filename().string();
      if (name.rfind(trash_prefix, 0) != 0) may_exist_.insert(std::move(name));
    }
  }

  // What an earlier run was still deleting when it stopped.
  void remove_leftover_trash() {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(allocs_dir_, ec))
      if (entry.path().filename().string().rfind(trash_prefix, 0) == 0) fs::remove_all(entry.path(), ec);
  }

  // The alloc's directory; the local id must be a single plain path component
  // so no alloc id can reach outside <state_dir>/allocs.
  outcome<fs::path> dir_of(const AllocInspect& alloc) const {
    auto local = local_id_of(alloc.id);
    if (local.empty() || local == "." || local == ".." || local.find('/') != std::string::npos ||
        local.find('\0') != std::string::npos)
      return make_pool_error(error_kind::internal, "alloc id \"" + alloc.id + "\" is not a plain directory name");
    return allocs_dir_ / local;
  }

  fs::path allocs_dir_;
  std::shared_ptr<alloc_users> users_;
  bool allocs_dir_made_ = false;  // the pool actor is the only caller: no lock
  std::unordered_set<std::string> may_exist_;  // local ids whose directory may exist
};

}  // namespace

std::shared_ptr<alloc_manager> make_local_alloc_manager(std::string state_dir, std::shared_ptr<alloc_users> users) {
  return std::make_shared<local_alloc_manager>(std::move(state_dir), std::move(users));
}

}  // namespace poolbus

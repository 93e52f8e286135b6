// The local alloc manager: an alloc is backed by the directory
// <state_dir>/allocs/<local id>, made by whatever first writes into it (its
// first exec: exec_records::create), so an alloc that runs no exec costs no
// mkdir and no rmdir (on ext4 an rmdir writes the freed inode synchronously).
// Killing the alloc removes the directory when there is one.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <system_error>

#include "actors/alloc_manager.hpp"

namespace poolbus {
namespace {

namespace fs = std::filesystem;

class local_alloc_manager final : public alloc_manager {
 public:
  explicit local_alloc_manager(std::string state_dir) : allocs_dir_(fs::path(std::move(state_dir)) / "allocs") {}

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
    }
    return {};
  }

  outcome<void> kill(const AllocInspect& alloc) override {
    auto dir = dir_of(alloc);
    if (!dir) return dir.error();
    std::error_code ec;
    // No directory (the alloc ran no exec: the common case) costs one failed
    // unlink; an empty one one rmdir; anything else takes the full walk.
    bool removed = fs::remove(*dir, ec);
    if (ec) {
      ec.clear();
      removed = fs::remove_all(*dir, ec) > 0;
    }
    if (ec) return make_pool_error(error_kind::internal, "remove " + dir->string() + ": " + ec.message());
    if (removed) spdlog::debug("alloc manager: removed {}", dir->string());
    return {};
  }

 private:
  // The alloc's directory; the local id must be a single plain path component
  // so no alloc id can reach outside <state_dir>/allocs.
  outcome<fs::path> dir_of(const AllocInspect& alloc) const {
    auto slash = alloc.id.find('/');
    std::string local = slash == std::string::npos ? alloc.id : alloc.id.substr(slash + 1);
    if (local.empty() || local == "." || local == ".." || local.find('/') != std::string::npos ||
        local.find('\0') != std::string::npos)
      return make_pool_error(error_kind::internal, "alloc id \"" + alloc.id + "\" is not a plain directory name");
    return allocs_dir_ / local;
  }

  fs::path allocs_dir_;
  bool allocs_dir_made_ = false;  // the pool actor is the only caller: no lock
};

}  // namespace

std::shared_ptr<alloc_manager> make_local_alloc_manager(std::string state_dir) {
  return std::make_shared<local_alloc_manager>(std::move(state_dir));
}

}  // namespace poolbus

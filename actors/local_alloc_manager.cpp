// The local alloc manager: an alloc is backed by the directory
// <state_dir>/allocs/<local id>; killing the alloc removes it. Execs and their
// repository will live inside that directory.
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
    std::error_code ec;
    // One mkdir in the common case; the parents only when they are missing.
    fs::create_directory(*dir, ec);
    if (ec) {
      ec.clear();
      fs::create_directories(*dir, ec);
    }
    if (ec) return make_pool_error(error_kind::internal, "create " + dir->string() + ": " + ec.message());
    spdlog::debug("alloc manager: created {}", dir->string());
    return {};
  }

  outcome<void> kill(const AllocInspect& alloc) override {
    auto dir = dir_of(alloc);
    if (!dir) return dir.error();
    std::error_code ec;
    // One rmdir when the directory is empty (the common case); a missing
    // directory is already killed; anything else takes the full walk.
    fs::remove(*dir, ec);
    if (ec) {
      ec.clear();
      fs::remove_all(*dir, ec);
    }
    if (ec) return make_pool_error(error_kind::internal, "remove " + dir->string() + ": " + ec.message());
    spdlog::debug("alloc manager: removed {}", dir->string());
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
};

}  // namespace

std::shared_ptr<alloc_manager> make_local_alloc_manager(std::string state_dir) {
  return std::make_shared<local_alloc_manager>(std::move(state_dir));
}

}  // namespace poolbus

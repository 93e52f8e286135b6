#include "apps/pool-worker/exec_setup.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "exec/process_supervisor.hpp"
#include "apps/common/flags.hpp"
#include "store/alloc_users.hpp"

namespace poolbus {
namespace {

namespace fs = std::filesystem;

outcome<std::pair<int64_t, int64_t>> parse_uid_range(const std::string& text) {
  auto dash = text.find('-');
  auto bad = make_pool_error(error_kind::invalid, "--exec-uids " + text + ": want FROM-TO, e.g. 880000-889999");
  if (dash == std::string::npos) return bad;
  try {
    size_t used = 0;
    int64_t from = std::stoll(text.substr(0, dash), &used);
    if (used != dash) return bad;
    auto rest = text.substr(dash + 1);
    int64_t to = std::stoll(rest, &used);
    if (used != rest.size() || from <= 0 || to < from || to > 4294967294ll) return bad;
    return std::make_pair(from, to);
  } catch (const std::exception&) {
    return bad;
  }
}

outcome<std::pair<int64_t, int64_t>> lookup_user(const std::string& name) {
  if (const passwd* pw = ::getpwnam(name.c_str())) return std::make_pair<int64_t, int64_t>(pw->pw_uid, pw->pw_gid);
  char* end = nullptr;
  long long uid = std::strtoll(name.c_str(), &end, 10);
  if (!name.empty() && *end == '\0' && uid > 0) return std::make_pair<int64_t, int64_t>(uid, uid);
  return make_pool_error(error_kind::invalid, "--exec-user " + name + ": no such user");
}

std::string exec_init_path() {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  return (self.parent_path() / "pool-exec-init").string();
}

outcome<std::shared_ptr<alloc_users>> make_users(const exec_flags& flags, const std::string& allocs_dir) {
  bool root = ::geteuid() == 0;
  if (!root) {
    if (!flags.uids.empty() || !flags.user.empty())
      return make_pool_error(error_kind::invalid, "--exec-uids and --exec-user need a worker running as root");
    spdlog::warn(
        "execs: not root, so every exec runs as this worker's own user and can read its state dir and "
        "other allocs' files (docs/security.md)");
    return alloc_users::worker_user();
  }
  if (!flags.uids.empty() && !flags.user.empty())
    return make_pool_error(error_kind::invalid, "give --exec-uids or --exec-user, not both");
  if (!flags.user.empty()) {
    auto user = lookup_user(flags.user);
    if (!user) return user.error();
    spdlog::warn("execs: every alloc's execs run as one user ({}): allocs are not kept apart (docs/security.md)",
                 flags.user);
    return alloc_users::shared_user(user->first, user->second);
  }
  auto range = std::make_pair(default_exec_uid_first, default_exec_uid_last);
  if (!flags.uids.empty()) {
    auto parsed = parse_uid_range(flags.uids);
    if (!parsed) return parsed.error();
    range = *parsed;
  }
  return alloc_users::uid_range(range.first, range.second, allocs_dir);
}

}  // namespace

void add_exec_flags(CLI::App& app, exec_flags& flags) {
  app.add_option("--exec-uids", flags.uids,
                 "root only: a uid of its own per alloc from FROM-TO (default " +
                     std::to_string(default_exec_uid_first) + "-" + std::to_string(default_exec_uid_last) + ")");
  app.add_option("--exec-user", flags.user,
                 "root only: run every alloc's execs as this one user instead (weaker: allocs share it)");
  add_size_flag(app, "--log-cap", flags.log_cap_bytes,
                "most bytes kept of each exec log (stdout, stderr); the rest is dropped (default 64MiB)");
  add_size_flag(app, "--disk-floor", flags.floor_bytes,
                "free space kept under the state dir: below it every exec is stopped with error \"disk\" "
                "(default 256MiB)");
}

outcome<void> protect_state_dir(const std::string& state_dir) {
  ::umask(077);
  if (::chmod(state_dir.c_str(), 0711) != 0)
    return make_pool_error(error_kind::internal, "cannot chmod state dir " + state_dir + ": " + std::strerror(errno));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(state_dir, ec)) {
    auto name = entry.path().filename().string();
    if (name.rfind("state.db", 0) == 0 && entry.is_regular_file(ec)) ::chmod(entry.path().c_str(), 0600);
  }
  return {};
}

outcome<exec_runtime> make_exec_runtime(const exec_flags& flags, const std::string& pool_id,
                                        const std::string& state_dir) {
  exec_runtime runtime;
  runtime.allocs_dir = state_dir + "/allocs";
  runtime.log_cap_bytes = flags.log_cap_bytes;
  std::error_code ec;
  fs::create_directories(runtime.allocs_dir, ec);
  if (!ec) ::chmod(runtime.allocs_dir.c_str(), 0711);
  auto users = make_users(flags, runtime.allocs_dir);
  if (!users) return users.error();
  runtime.users = *users;
  sandbox_config sandbox;
  sandbox.init_path = exec_init_path();
  if (::access(sandbox.init_path.c_str(), X_OK) != 0)
    return make_pool_error(error_kind::internal,
                           "cannot run " + sandbox.init_path + " (it belongs beside pool-worker)");
  if (::geteuid() == 0) sandbox.cgroup_name = "poolbus-" + pool_id;
  sandbox.floor_path = state_dir;
  sandbox.floor_bytes = flags.floor_bytes;
  runtime.processes = std::make_shared<process_supervisor>(sandbox);
  spdlog::info("execs: {}; run as {}", runtime.processes->describe(), runtime.users->describe());
  return runtime;
}

}  // namespace poolbus

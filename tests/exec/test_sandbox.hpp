// The exec sandbox of the actor tests: the pool-exec-init built beside them,
// a PID namespace where the kernel allows one, and no cgroups unless a test
// asks (a name of its own, removed when its supervisor goes).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "exec/process_supervisor.hpp"

namespace poolbus::testing {

inline sandbox_config test_sandbox(bool with_cgroups = false) {
  sandbox_config sandbox;
  sandbox.init_path = POOLBUS_EXEC_INIT;
  if (with_cgroups) sandbox.cgroup_name = "poolbus-test-" + std::to_string(::getpid());
  return sandbox;
}

// The host pid of the process that its PID namespace knows as `ns_pid` ($$ or
// $! inside an exec), found among the descendants of `leader` (the exec's
// pool-exec-init); 0 when there is none. Without a namespace, ns_pid itself.
inline int host_pid(int leader, int ns_pid) {
  auto status_of = [](int pid, const char* key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::vector<int> values;
    for (std::string line; std::getline(in, line);)
      if (line.rfind(key, 0) == 0) {
        std::istringstream fields(line.substr(std::string(key).size()));
        for (int v; fields >> v;) values.push_back(v);
      }
    return values;
  };
  auto descends_from_leader = [&](int pid) {
    for (int hops = 0; pid > 1 && hops < 64; ++hops) {
      if (pid == leader) return true;
      auto parent = status_of(pid, "PPid:");
      if (parent.empty()) return false;
      pid = parent.front();
    }
    return false;
  };
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    auto name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    int candidate = std::stoi(name);
    auto ns = status_of(candidate, "NSpid:");
    if (ns.empty() || ns.back() != ns_pid) continue;
    if (descends_from_leader(candidate)) return candidate;
  }
  return 0;
}

}  // namespace poolbus::testing

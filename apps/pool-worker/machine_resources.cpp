#include "apps/pool-worker/machine_resources.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <thread>

namespace poolbus {

Resources machine_resources(const std::string& state_dir) {
  Resources r;
  r.set("cpu", static_cast<double>(std::max(1u, std::thread::hardware_concurrency())));
  r.set("mem", static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE)));
  struct statvfs fs {};
  if (statvfs(state_dir.c_str(), &fs) == 0)
    r.set("disk", static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize));
  return r;
}

}  // namespace poolbus

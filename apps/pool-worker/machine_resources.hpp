// The machine's own resources, the default of `pool-worker --resources`:
// online cores, physical memory, and the free disk of the state directory.
#pragma once

#include <string>

#include "schemas/resources.hpp"

namespace poolbus {

Resources machine_resources(const std::string& state_dir);

}  // namespace poolbus

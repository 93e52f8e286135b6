// poolctl keygen: writes a new CURVE key pair (NAME.key 0600, NAME.pub) and
// prints the public key with the authorized_keys line that admits it.
#pragma once

#include <string>

namespace poolbus {

struct keygen_request {
  std::string out_dir;
  std::string name;
  std::string role = "client";  // for the printed authorized_keys line
};

// Returns the process exit code.
int run_keygen(const keygen_request& request);

}  // namespace poolbus

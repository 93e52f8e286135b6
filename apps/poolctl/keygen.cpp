#include "apps/poolctl/keygen.hpp"

#include <iostream>

#include "bus/security.hpp"

namespace poolbus {

int run_keygen(const keygen_request& request) {
  if (!peer_role_from_string(request.role)) {
    std::cerr << "poolctl: unknown role \"" << request.role << "\" (worker, client, observer, admin)\n";
    return 2;
  }
  auto pair = generate_curve_keypair();
  if (!pair) {
    std::cerr << "poolctl: " << pair.error().message << "\n";
    return 1;
  }
  auto wrote = write_keypair(request.out_dir, request.name, *pair);
  if (!wrote) {
    std::cerr << "poolctl: " << wrote.error().message << "\n";
    return 1;
  }
  std::cout << "wrote " << secret_key_path(request.out_dir, request.name) << " (secret, 0600) and "
            << public_key_path(request.out_dir, request.name) << "\n"
            << "public key: " << pair->public_key << "\n"
            << "add to the broker's authorized_keys:\n"
            << request.role << " " << pair->public_key << " " << request.name << "\n";
  return 0;
}

}  // namespace poolbus

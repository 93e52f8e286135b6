// endpoints: the four ZeroMQ endpoints of a broker, with protocol.md's defaults.
// Workers and clients connect to them; the broker binds them.
#pragma once

#include <string>
#include <vector>

namespace poolbus {

struct broker_endpoints {
  std::string api = "tcp://127.0.0.1:7700";       // client ROUTER
  std::string stream = "tcp://127.0.0.1:7701";    // offer stream PUB
  std::string workers = "tcp://127.0.0.1:7702";   // workers ROUTER
  std::string announce = "tcp://127.0.0.1:7703";  // announce SUB
};

// Whether `endpoint` is a ZeroMQ endpoint this project can bind or connect
// (tcp://host:port, ipc://path, inproc://name).
bool valid_endpoint(const std::string& endpoint);

// "EP1,EP2,..." into its endpoints, in order (several brokers: failover, streams).
std::vector<std::string> split_endpoints(const std::string& endpoints);

}  // namespace poolbus

#include "bus/endpoints.hpp"

namespace poolbus {

bool valid_endpoint(const std::string& endpoint) {
  for (const char* scheme : {"tcp://", "ipc://", "inproc://"}) {
    std::string s(scheme);
    if (endpoint.size() > s.size() && endpoint.compare(0, s.size(), s) == 0) {
      if (s != "tcp://") return true;
      auto colon = endpoint.rfind(':');
      return colon != std::string::npos && colon > s.size() && colon + 1 < endpoint.size();
    }
  }
  return false;
}

}  // namespace poolbus

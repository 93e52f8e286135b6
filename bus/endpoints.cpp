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

std::vector<std::string> split_endpoints(const std::string& endpoints) {
  std::vector<std::string> out;
  for (size_t start = 0;;) {
    const size_t comma = endpoints.find(',', start);
    out.push_back(endpoints.substr(start, comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

}  // namespace poolbus

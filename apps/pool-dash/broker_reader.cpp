#include "apps/pool-dash/broker_reader.hpp"

namespace poolbus {

broker_reader::broker_reader(std::string endpoint, int64_t timeout_ms, std::optional<curve_client_keys> curve,
                             dashboard_state& state)
    : endpoint_(std::move(endpoint)), timeout_ms_(timeout_ms), curve_(std::move(curve)), state_(state) {}

}  // namespace poolbus

// waiting_reason: why a queued request is not placed yet, in the words an
// operator wants first ("no pool has zone=z9", "needs cpu=16: the largest
// matching pool has 8"), worked out from the pools the dashboard sees. Pure:
// the same queue entry and pools always give the same sentence.
#pragma once

#include <map>
#include <string>

#include "dash/cluster_view.hpp"

namespace poolbus {

std::string waiting_reason(const queue_entry& request, const std::map<std::string, pool_view>& pools);

}  // namespace poolbus

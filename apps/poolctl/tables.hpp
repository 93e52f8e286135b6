// tables: poolctl's human-readable output (resources as "cpu 4  mem 8.0GiB
// disk 100GiB", times relative to now). --json bypasses all of it.
#pragma once

#include <cstdint>
#include <ostream>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/placement.hpp"

namespace poolbus {

void print_pools(std::ostream& out, const std::vector<PoolStatus>& pools, int64_t now_ms);
void print_offers(std::ostream& out, const std::vector<OfferInfo>& offers);
void print_allocs(std::ostream& out, const std::vector<AllocInspect>& allocs, int64_t now_ms);
void print_alloc(std::ostream& out, const AllocInspect& alloc, int64_t now_ms);
void print_queue(std::ostream& out, const std::vector<queue_entry>& queue, int64_t now_ms);
void print_quotas(std::ostream& out, const std::vector<quota_usage>& quotas);
// "4.5s", "2m0s", "1h2m": a duration as people read it.
std::string format_duration(int64_t ms);

}  // namespace poolbus

// cluster_metrics: the cluster's series on pool-dash's /metrics, as the
// contract names them (protocol.md, "Dashboard and metrics"), plus the
// stream's health. Units: cpu in cores, mem and disk in bytes, ages in seconds.
// Every event counter lists all its known events, at 0 until one happens, so
// a rate() over it exists from the first scrape.
#pragma once

#include <cstdint>

#include "dash/cluster_view.hpp"
#include "dash/metrics_text.hpp"

namespace poolbus {

void write_cluster_metrics(metrics_text& out, const cluster_view& view, int64_t now_ms);

}  // namespace poolbus

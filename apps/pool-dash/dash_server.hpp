// dash_server: pool-dash's HTTP face (docs/dashboard.md): the page, its
// /api JSON reads, the live event stream (SSE) and /metrics. Read-only: no
// route changes anything on the broker. Every input is checked before use
// (query_string); an unknown path is 404, a bad query 400, and the broker's
// error kinds map to statuses (not_exist 404, unauthorized 403, others 502).
#pragma once

#include <httplib.h>

#include "apps/pool-dash/broker_reader.hpp"
#include "apps/pool-dash/dashboard_state.hpp"

namespace poolbus {

// Installs every route on `server`; state and reader outlive it.
void install_dash_routes(httplib::Server& server, dashboard_state& state, broker_reader& reader);

}  // namespace poolbus

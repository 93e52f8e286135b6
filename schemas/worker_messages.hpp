// The worker <-> broker protocol (the project's own; documented in
// schemas/PROTOCOL.md). The broker's workers ROUTER sends worker_request
// bodies to a worker's DEALER (routing id = pool id); the worker answers with
// worker_reply bodies, and also sends worker_hello on connect and every
// heartbeat so the ROUTER always knows its route, even after a broker restart.
//
// Invariant: every request carries a broker-chosen `rid`, echoed by its
// reply; ids inside are the pool's local ids (no "<pool>/" prefix).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "schemas/announcements.hpp"
#include "schemas/placement.hpp"
#include "schemas/encoded_entries.hpp"
#include "schemas/exec.hpp"

namespace poolbus {

enum class worker_op : uint8_t {
  accept,
  free,
  keepalive,
  inspect,
  allocs,
  offers,
  drain,  // the pool's drain set (drain) or undone
  pace,   // the slowest heartbeat this broker asks (heartbeat_ms; 0 = no ask)
  // Execs inside allocs: the same names and fields as the client API, alloc by local id.
  exec_put,
  exec_inspect,
  execs,
  exec_wait,
  exec_logs,
  exec_remove,
  repo_get
};
std::string_view to_string(worker_op op);
std::optional<worker_op> worker_op_from_string(std::string_view name);

struct worker_request {
  uint64_t rid = 0;
  worker_op op = worker_op::inspect;
  std::string offer_id;     // accept
  std::string alloc_id;     // free, keepalive, inspect
  AllocMeta meta;           // accept
  int64_t interval_ms = 0;  // keepalive
  bool drain = true;        // drain
  int64_t heartbeat_ms = 0; // pace
  exec_call exec;           // exec ops (exec.alloc == alloc_id)
  uint32_t broker = 0;      // NOT on the wire: which of the worker's brokers sent it (the reply goes back there)

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, worker_request& x) {
    return f(x.rid, x.op, x.offer_id, x.alloc_id, x.meta, x.interval_ms, x.drain, x.heartbeat_ms, x.exec, x.broker);
  }
};
std::string encode_worker_request(const worker_request& request);
// On failure, *rid_out holds the rid if it could be read (0 otherwise).
outcome<worker_request> decode_worker_request(std::string_view body, uint64_t* rid_out);

struct worker_reply {
  uint64_t rid = 0;
  bool ok = true;
  pool_error error;                  // when !ok
  AllocInspect alloc;                // accept, inspect
  std::vector<AllocInspect> allocs;  // allocs
  // allocs as the worker encoded them, each entry validated but not decoded:
  // what decode_worker_message_relaying gives the broker in place of `allocs`.
  encoded_array allocs_entries;
  std::vector<OfferInfo> offers;  // offers
  int64_t interval_ms = 0;        // keepalive
  exec_answer exec;               // exec ops

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, worker_reply& x) {
    return f(x.rid, x.ok, x.error, x.alloc, x.allocs, x.allocs_entries, x.offers, x.interval_ms, x.exec);
  }
};

struct worker_hello {
  std::string pool;
  std::string run;
  int64_t ts_ms = 0;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, worker_hello& x) {
    return f(x.pool, x.run, x.ts_ms);
  }
};

std::string encode_worker_reply(const worker_reply& reply);
std::string encode_worker_hello(const worker_hello& hello);
// What a worker's DEALER sends: a reply or a hello.
using worker_message = std::variant<worker_reply, worker_hello>;
outcome<worker_message> decode_worker_message(std::string_view body);
// As decode_worker_message, with the same checks and errors, except that a
// reply's `allocs` list is kept as the worker's bytes (reply.allocs_entries,
// reply.allocs left empty): each entry is unpacked and checked alone, so a
// 20,000-alloc reply costs no object tree and no decoded copy. The broker
// relays these bytes to clients.
outcome<worker_message> decode_worker_message_relaying(std::string_view body);

// Announcements and stream bodies (protocol.md "Offer stream"). The same bytes
// travel worker PUB -> broker SUB -> broker stream PUB.
std::string encode_offer_announcement(const offer_announcement& a);
outcome<offer_announcement> decode_offer_announcement(std::string_view body);
std::string encode_alloc_event(const alloc_event& e);
outcome<alloc_event> decode_alloc_event(std::string_view body);
std::string encode_pool_event(const pool_event& e);
outcome<pool_event> decode_pool_event(std::string_view body);
// Topic `demand` (the broker's own: requests that waited in its queue).
std::string encode_demand_event(const demand_event& e);
outcome<demand_event> decode_demand_event(std::string_view body);

}  // namespace poolbus

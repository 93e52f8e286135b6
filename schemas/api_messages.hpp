// The client API of protocol.md ("Client API"): one MessagePack map per request
// and per reply. Requests are decoded strictly (any malformed input is an
// `invalid` pool_error naming the field); replies always carry "v": 1, the
// echoed "id" (nil when absent) and "ok".
//
// `id_raw` is the request's "id" value re-packed as MessagePack bytes ("\xc0",
// nil, when absent), so a reply echoes any id type exactly as it came.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/encoded_entries.hpp"
#include "schemas/exec.hpp"
#include "schemas/placement.hpp"

namespace poolbus {

constexpr size_t max_request_bytes = 1 << 20;  // 1 MiB: larger bodies are `invalid`
extern const std::string nil_id_raw;           // "\xc0"

enum class api_op : uint8_t {
  ping,
  pools,
  offers,
  offer,
  accept,
  allocate,
  allocs,
  inspect,
  keepalive,
  free,
  // Second wave (protocol.md "Additions of the second wave")
  queue,
  quotas,
  drain,
  // Execs inside allocs (schemas/exec.hpp): routed by the alloc URI in `exec.alloc` (= uri).
  exec_put,
  exec_inspect,
  execs,
  exec_wait,
  exec_logs,
  exec_remove,
  repo_get
};
std::string_view to_string(api_op op);
std::optional<api_op> api_op_from_string(std::string_view name);
// The exec op an api op carries (nullopt for the alloc/offer ops).
std::optional<exec_op> exec_op_of(api_op op);

struct api_request {
  api_op op = api_op::ping;
  std::string id_raw = "\xc0";
  std::string uri;          // offer: offer URI; accept: offer URI; inspect/keepalive/free: alloc URI
  std::string pool;         // allocs: optional pool filter (empty = all); drain: the pool
  AllocMeta meta;           // accept: meta; allocate: owner/labels (want unused)
  placement place;          // allocate: min, width, and the second wave's arguments
  bool drain = true;        // drain: false undoes it
  int64_t interval_ms = 0;  // keepalive
  exec_call exec;           // exec ops: the call (exec.alloc == uri)
  std::string caller;       // NOT on the wire: the broker sets the CURVE identity ("role:name"); empty = plaintext

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, api_request& x) {
    return f(x.op, x.id_raw, x.uri, x.pool, x.meta, x.place, x.drain, x.interval_ms, x.exec, x.caller);
  }
};

// Decodes a request body. On failure the outcome holds an `invalid` error; if
// the body was a map with a readable "id", *id_raw_out receives it (otherwise
// it is set to nil), so the error reply can still echo the id.
outcome<api_request> decode_api_request(std::string_view body, std::string* id_raw_out);

// Client side: packs a request (uses id_raw from the request).
std::string encode_api_request(const api_request& request);

// Replies (broker side).
std::string encode_error_reply(std::string_view id_raw, const pool_error& error);
std::string encode_ok_reply(std::string_view id_raw);  // ping, free
std::string encode_pools_reply(std::string_view id_raw, const std::vector<PoolStatus>& pools);
std::string encode_offers_reply(std::string_view id_raw, const std::vector<OfferInfo>& offers);
// The same replies from pre-encoded entries (schemas/encoded_entries.hpp):
// byte for byte what the two above write for the values the entries encode.
std::string encode_pools_reply_spliced(std::string_view id_raw, const encoded_array& pools);
std::string encode_offers_reply_spliced(std::string_view id_raw, const encoded_array& offers);
std::string encode_offer_reply(std::string_view id_raw, const OfferInfo& offer);
std::string encode_alloc_reply(std::string_view id_raw, const AllocInspect& alloc);  // accept, allocate, inspect
// allocate with `count`: `alloc` is the first, `allocs` lists all.
std::string encode_gang_reply(std::string_view id_raw, const std::vector<AllocInspect>& allocs);
std::string encode_queue_reply(std::string_view id_raw, const std::vector<queue_entry>& queue);
std::string encode_quotas_reply(std::string_view id_raw, const std::vector<quota_usage>& quotas);
std::string encode_pool_reply(std::string_view id_raw, const PoolStatus& pool);  // drain
std::string encode_allocs_reply(std::string_view id_raw, const std::vector<AllocInspect>& allocs);
// The same reply from entries already encoded (the workers' own bytes).
std::string encode_allocs_reply_spliced(std::string_view id_raw, const encoded_array& allocs);
std::string encode_keepalive_reply(std::string_view id_raw, int64_t interval_ms);
std::string encode_exec_reply(std::string_view id_raw, const exec_answer& answer);  // every exec op

// Client side: any reply, with whichever results it carries. A reply with
// "ok": false becomes the outcome's error (its kind and message unchanged); a
// malformed reply is `internal`.
struct api_reply {
  std::string id_raw = "\xc0";
  std::vector<PoolStatus> pools;
  std::vector<OfferInfo> offers;
  OfferInfo offer;
  AllocInspect alloc;
  std::vector<AllocInspect> allocs;
  std::vector<queue_entry> queue;
  std::vector<quota_usage> quotas;
  PoolStatus pool;  // drain
  int64_t interval_ms = 0;
  exec_answer exec;  // exec ops
};
outcome<api_reply> decode_api_reply(std::string_view body);
// The id of any reply body (nil when unreadable), to pair replies on a DEALER.
std::string reply_id_raw(std::string_view body);

}  // namespace poolbus

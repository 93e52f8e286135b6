#include "schemas/worker_messages.hpp"

#include <array>
#include <utility>

#include "schemas/codec.hpp"
#include "schemas/map_writer.hpp"
#include "schemas/msgpack_scan.hpp"

namespace poolbus {
namespace {

using codec::map_view;
using codec::pack_string;
using codec::packer;

constexpr std::array<std::pair<worker_op, std::string_view>, 15> op_names{{
    {worker_op::accept, "accept"},
    {worker_op::free, "free"},
    {worker_op::keepalive, "keepalive"},
    {worker_op::inspect, "inspect"},
    {worker_op::allocs, "allocs"},
    {worker_op::offers, "offers"},
    {worker_op::drain, "drain"},
    {worker_op::pace, "pace"},
    {worker_op::exec_put, "exec_put"},
    {worker_op::exec_inspect, "exec_inspect"},
    {worker_op::execs, "execs"},
    {worker_op::exec_wait, "exec_wait"},
    {worker_op::exec_logs, "exec_logs"},
    {worker_op::exec_remove, "exec_remove"},
    {worker_op::repo_get, "repo_get"},
}};

// A broker may slow its pools' heartbeats to at most one an hour.
constexpr int64_t max_paced_heartbeat_ms = 3600 * 1000;

// The exec op a worker op carries (nullopt for the alloc ops).
std::optional<exec_op> exec_op_of(worker_op op) {
  if (op < worker_op::exec_put) return std::nullopt;
  return exec_op_from_string(to_string(op));
}

// A local id ("1", an alloc id): a non-empty string without a '/'.
std::string read_local_id(const map_view& view, std::string_view key) {
  std::string id = view.require_string(key);
  if (id.empty()) codec::fail(view.path_of(key), "empty");
  if (id.find('/') != std::string::npos) codec::fail(view.path_of(key), "a local id may not contain '/'");
  return id;
}

uint64_t read_rid(const map_view& view) {
  int64_t rid = view.require_int("rid");
  if (rid < 0) codec::fail("rid", "negative");
  return static_cast<uint64_t>(rid);
}

std::vector<AllocInspect> read_inspects(const msgpack::object& o, const std::string& path) {
  return codec::read_list(o, path, codec::read_alloc_inspect);
}

std::vector<OfferInfo> read_offers(const msgpack::object& o, const std::string& path) {
  return codec::read_list(o, path, codec::read_offer_info);
}

// A reply's allocs: the decoded ones, then the entries relayed as they came.
void pack_allocs(packer& pk, const worker_reply& reply) {
  pk.pack_array(static_cast<uint32_t>(reply.allocs.size() + static_cast<size_t>(reply.allocs_entries.count)));
  for (const auto& alloc : reply.allocs) codec::pack_alloc_inspect(pk, alloc);
  pk.pack_bin_body(reply.allocs_entries.bytes.data(), static_cast<uint32_t>(reply.allocs_entries.bytes.size()));
}

worker_request read_request(const map_view& view, uint64_t* rid_out) {
  codec::check_version(view);
  worker_request request;
  request.rid = read_rid(view);
  if (rid_out != nullptr) *rid_out = request.rid;
  request.op = codec::read_op(view, worker_op_from_string);
  if (auto exec = exec_op_of(request.op)) {
    request.alloc_id = read_local_id(view, "alloc");
    request.exec.op = *exec;
    request.exec.alloc = request.alloc_id;
    codec::read_exec_call_fields(view, request.exec);
    return request;
  }
  switch (request.op) {
    case worker_op::accept:
      request.offer_id = read_local_id(view, "offer");
      request.meta = view.read("meta", codec::read_alloc_meta);
      break;
    case worker_op::keepalive:
      request.alloc_id = read_local_id(view, "alloc");
      request.interval_ms = view.require_int("interval_ms");
      if (request.interval_ms <= 0) codec::fail("interval_ms", "must be > 0");
      break;
    case worker_op::free:
    case worker_op::inspect: request.alloc_id = read_local_id(view, "alloc"); break;
    case worker_op::drain: request.drain = view.require_bool("drain"); break;
    case worker_op::pace:
      request.heartbeat_ms = view.require_int("heartbeat_ms");
      if (request.heartbeat_ms < 0 || request.heartbeat_ms > max_paced_heartbeat_ms)
        codec::fail("heartbeat_ms", "must be in 0..3600000 (an hour)");
      break;
    default: break;
  }
  return request;
}

worker_reply read_reply(const map_view& view) {
  worker_reply reply;
  reply.rid = read_rid(view);
  reply.ok = view.require_bool("ok");
  if (!reply.ok) {
    reply.error = view.read("error", codec::read_pool_error);
    return reply;
  }
  if (auto alloc = view.read_optional("alloc", codec::read_alloc_inspect)) reply.alloc = std::move(*alloc);
  if (auto allocs = view.read_optional("allocs", read_inspects)) reply.allocs = std::move(*allocs);
  if (auto offers = view.read_optional("offers", read_offers)) reply.offers = std::move(*offers);
  reply.interval_ms = view.optional_int("interval_ms").value_or(0);
  codec::read_exec_answer_fields(view, reply.exec);
  return reply;
}

worker_hello read_hello(const map_view& view) {
  worker_hello hello;
  hello.pool = view.require_string("pool");
  if (!valid_pool_id(hello.pool)) codec::fail("pool", "a pool id is non-empty and has no '/'");
  hello.run = view.optional_string("run").value_or("");
  hello.ts_ms = view.optional_int("ts_ms").value_or(0);
  return hello;
}

// Decodes a stream or worker body that must be one map: `read(view)`.
template <class Read>
auto decode_map(std::string_view body, Read read) {
  return codec::guarded([&] {
    auto handle = codec::unpack_body(body, codec::max_reply_bytes);
    map_view view(handle.get(), "");
    codec::check_version(view);
    return read(view);
  });
}

}  // namespace

std::string_view to_string(worker_op op) {
  for (const auto& [o, name] : op_names)
    if (o == op) return name;
  return "unknown";
}

std::optional<worker_op> worker_op_from_string(std::string_view name) {
  for (const auto& [o, n] : op_names)
    if (n == name) return o;
  return std::nullopt;
}

std::string encode_worker_request(const worker_request& request) {
  return codec::map_body([&](auto& out) {
    out.int64("v", 1);
    out.uint64("rid", request.rid);
    out.text("op", to_string(request.op));
    switch (request.op) {
      case worker_op::accept:
        out.text("offer", request.offer_id);
        out.field("meta", [&](packer& pk) { codec::pack_alloc_meta(pk, request.meta); });
        break;
      case worker_op::keepalive:
        out.text("alloc", request.alloc_id);
        out.int64("interval_ms", request.interval_ms);
        break;
      case worker_op::free:
      case worker_op::inspect: out.text("alloc", request.alloc_id); break;
      case worker_op::allocs:
      case worker_op::offers: break;
      case worker_op::drain: out.boolean("drain", request.drain); break;
      case worker_op::pace: out.int64("heartbeat_ms", request.heartbeat_ms); break;
      default:  // exec ops
        out.text("alloc", request.alloc_id);
        codec::pack_exec_call_fields(out, request.exec);
        break;
    }
  });
}

outcome<worker_request> decode_worker_request(std::string_view body, uint64_t* rid_out) {
  if (rid_out != nullptr) *rid_out = 0;
  return decode_map(body, [&](const map_view& view) { return read_request(view, rid_out); });
}

std::string encode_worker_reply(const worker_reply& reply) {
  // Results are written only when they carry something: a worker_reply
  // does not know its op, and an absent list decodes as an empty one.
  // Any alloc but the default one is written, even one with an empty id, so
  // what a decoder accepted re-encodes unchanged (fuzz round trip).
  bool has_alloc = !(reply.alloc == AllocInspect{});  // once, not on both runs of the list
  return codec::map_body([&](auto& out) {
    out.int64("v", 1);
    out.text("type", "reply");
    out.uint64("rid", reply.rid);
    out.boolean("ok", reply.ok);
    if (!reply.ok) {
      out.field("error", [&](packer& pk) { codec::pack_pool_error(pk, reply.error); });
      return;
    }
    if (has_alloc) out.field("alloc", [&](packer& pk) { codec::pack_alloc_inspect(pk, reply.alloc); });
    if (!reply.allocs.empty() || reply.allocs_entries.count > 0)
      out.field("allocs", [&](packer& pk) { pack_allocs(pk, reply); });
    if (!reply.offers.empty())
      out.field("offers", [&](packer& pk) { codec::pack_list(pk, reply.offers, codec::pack_offer_info); });
    if (reply.interval_ms != 0) out.int64("interval_ms", reply.interval_ms);
    codec::pack_exec_answer_fields(out, reply.exec);
  });
}

std::string encode_worker_hello(const worker_hello& hello) {
  return codec::map_body([&](auto& out) {
    out.int64("v", 1);
    out.text("type", "hello");
    out.text("pool", hello.pool);
    out.text("run", hello.run);
    out.int64("ts_ms", hello.ts_ms);
  });
}

outcome<worker_message> decode_worker_message(std::string_view body) {
  return decode_map(body, [](const map_view& view) -> worker_message {
    std::string type = view.require_string("type");
    if (type == "reply") return read_reply(view);
    if (type == "hello") return read_hello(view);
    codec::fail("type", "unknown message type \"" + type + "\"");
  });
}

namespace {

// Below this size a reply is decoded whole: scanning for the list first would cost more.
constexpr size_t relay_from_bytes = 16 * 1024;

// Unpacks and checks each of span.count entries of an allocs list in place,
// one at a time, within unpack_body's limits for a reply.
void check_alloc_entries(std::string_view body, const array_field_span& span) {
  if (span.count > codec::max_reply_container_elements)
    codec::fail("allocs", "over a size limit (array size overflow)");
  // An entry sits two levels down (the reply map, its list): it gets the depth left there.
  const msgpack::unpack_limit limits(codec::max_reply_container_elements, codec::max_reply_container_elements,
                                     codec::max_string_bytes, codec::max_bin_bytes, codec::max_string_bytes,
                                     codec::max_nesting_depth - 2);
  std::size_t end = span.elements_offset + span.elements_length;
  std::size_t offset = span.elements_offset;
  for (uint64_t i = 0; i < span.count; ++i) {
    msgpack::object_handle entry;
    try {
      entry = msgpack::unpack(body.data(), end, offset, nullptr, nullptr, limits);
    } catch (const std::exception& e) {
      codec::fail("allocs[" + std::to_string(i) + "]", std::string("not MessagePack (") + e.what() + ")");
    }
    // A path only for the error: read_alloc_inspect names fields below it.
    codec::read_alloc_inspect(entry.get(), "allocs[" + std::to_string(i) + "]");
  }
  if (offset != end) codec::fail("allocs", "bytes left after its entries");
}

}  // namespace

outcome<worker_message> decode_worker_message_relaying(std::string_view body) {
  bool relay = body.size() >= relay_from_bytes && body.size() <= codec::max_reply_bytes;
  auto span = relay ? find_array_field(body, "allocs") : std::nullopt;
  if (!span || span->count == 0) return decode_worker_message(body);
  // The message without its list (an empty one in its place) decodes as usual.
  std::string rest;
  rest.reserve(body.size() - span->elements_length);
  rest.append(body.substr(0, span->header_offset));
  rest.push_back('\x90');
  rest.append(body.substr(span->elements_offset + span->elements_length));
  auto message = decode_worker_message(rest);
  if (!message) return message;
  auto* reply = std::get_if<worker_reply>(&*message);
  if (reply == nullptr || !reply->ok) return message;  // as decode_worker_message, which ignores the list there
  if (!reply->allocs.empty()) return make_pool_error(error_kind::invalid, "allocs: given twice");
  auto checked = codec::guarded([&] {
    check_alloc_entries(body, *span);
    return true;
  });
  if (!checked) return checked.error();
  reply->allocs_entries.count = static_cast<int64_t>(span->count);
  reply->allocs_entries.bytes.assign(body.substr(span->elements_offset, span->elements_length));
  return message;
}

// ---------------------------------------------------------------- stream bodies

std::string encode_offer_announcement(const offer_announcement& a) {
  return codec::map_body([&](auto& out) {
    out.int64("v", 1);
    out.text("pool", a.pool);
    out.text("run", a.run);
    out.int64("seq", a.seq);
    out.field("resources", [&](packer& pk) { codec::pack_resources(pk, a.resources); });
    out.field("available", [&](packer& pk) { codec::pack_resources(pk, a.available); });
    out.field("offers", [&](packer& pk) { codec::pack_list(pk, a.offers, codec::pack_offer_info); });
    out.int64("allocs", a.allocs);
    out.field("labels", [&](packer& pk) { codec::pack_labels(pk, a.labels); });
    out.boolean("draining", a.draining);
    out.int64("ts_ms", a.ts_ms);
    out.int64("heartbeat_ms", a.heartbeat_ms);
  });
}

outcome<offer_announcement> decode_offer_announcement(std::string_view body) {
  return decode_map(body, [](const map_view& view) {
    offer_announcement a;
    a.pool = view.require_string("pool");
    a.run = view.optional_string("run").value_or("");
    a.seq = view.require_int("seq");
    a.resources = view.read("resources", codec::read_resources);
    a.available = view.read("available", codec::read_resources);
    a.offers = view.read("offers", read_offers);
    a.allocs = view.require_int("allocs");
    if (auto labels = view.read_optional("labels", codec::read_labels)) a.labels = std::move(*labels);
    if (auto draining = view.read_optional("draining", codec::read_bool)) a.draining = *draining;
    a.ts_ms = view.require_int("ts_ms");
    a.heartbeat_ms = view.optional_int("heartbeat_ms").value_or(0);
    return a;
  });
}

std::string encode_alloc_event(const alloc_event& e) {
  return codec::map_body([&](auto& out) {
    out.int64("v", 1);
    out.text("pool", e.pool);
    out.text("event", to_string(e.event));
    out.field("alloc", [&](packer& pk) { codec::pack_alloc_inspect(pk, e.alloc); });
    out.int64("ts_ms", e.ts_ms);
  });
}

outcome<alloc_event> decode_alloc_event(std::string_view body) {
  return decode_map(body, [](const map_view& view) {
    alloc_event e;
    e.pool = view.require_string("pool");
    std::string event = view.require_string("event");
    auto kind = alloc_event_kind_from_string(event);
    if (!kind) codec::fail("event", "unknown alloc event \"" + event + "\"");
    e.event = *kind;
    e.alloc = view.read("alloc", codec::read_alloc_inspect);
    e.ts_ms = view.require_int("ts_ms");
    return e;
  });
}

std::string encode_pool_event(const pool_event& e) {
  return codec::map_body([&](auto& out) {
    out.int64("v", 1);
    out.text("pool", e.pool);
    out.text("event", to_string(e.event));
    out.int64("ts_ms", e.ts_ms);
  });
}

outcome<pool_event> decode_pool_event(std::string_view body) {
  return decode_map(body, [](const map_view& view) {
    pool_event e;
    e.pool = view.require_string("pool");
    std::string event = view.require_string("event");
    auto kind = pool_event_kind_from_string(event);
    if (!kind) codec::fail("event", "unknown pool event \"" + event + "\"");
    e.event = *kind;
    e.ts_ms = view.require_int("ts_ms");
    return e;
  });
}

std::string encode_demand_event(const demand_event& e) {
  return codec::map_body([&](auto& out) {
    out.int64("v", 1);
    out.text("event", to_string(e.event));
    out.field("request", [&](packer& pk) { codec::pack_queue_entry(pk, e.request); });
    if (e.event == demand_event_kind::placed)
      out.field("allocs", [&](packer& pk) {
        pk.pack_array(static_cast<uint32_t>(e.allocs.size()));
        for (const auto& uri : e.allocs) codec::pack_string(pk, uri);
      });
    out.int64("ts_ms", e.ts_ms);
  });
}

outcome<demand_event> decode_demand_event(std::string_view body) {
  return decode_map(body, [](const map_view& view) {
    demand_event e;
    std::string event = view.require_string("event");
    auto kind = demand_event_kind_from_string(event);
    if (!kind) codec::fail("event", "unknown demand event \"" + event + "\"");
    e.event = *kind;
    e.request = view.read("request", codec::read_queue_entry);
    if (auto allocs = view.read_optional("allocs", [](const msgpack::object& o, const std::string& path) {
          return codec::read_list(o, path, codec::read_string);
        }))
      e.allocs = std::move(*allocs);
    e.ts_ms = view.require_int("ts_ms");
    return e;
  });
}

}  // namespace poolbus

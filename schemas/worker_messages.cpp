#include "schemas/worker_messages.hpp"

#include <array>
#include <utility>

#include "schemas/codec.hpp"
#include "schemas/msgpack_scan.hpp"

namespace poolbus {
namespace {

using codec::map_view;
using codec::pack_string;
using codec::packer;

constexpr std::array<std::pair<worker_op, std::string_view>, 13> op_names{{
    {worker_op::accept, "accept"},
    {worker_op::free, "free"},
    {worker_op::keepalive, "keepalive"},
    {worker_op::inspect, "inspect"},
    {worker_op::allocs, "allocs"},
    {worker_op::offers, "offers"},
    {worker_op::exec_put, "exec_put"},
    {worker_op::exec_inspect, "exec_inspect"},
    {worker_op::execs, "execs"},
    {worker_op::exec_wait, "exec_wait"},
    {worker_op::exec_logs, "exec_logs"},
    {worker_op::exec_remove, "exec_remove"},
    {worker_op::repo_get, "repo_get"},
}};

// The exec op a worker op carries (nullopt for the alloc ops).
std::optional<exec_op> exec_op_of(worker_op op) {
  if (op < worker_op::exec_put) return std::nullopt;
  return exec_op_from_string(to_string(op));
}

void pack_version(packer& pk) {
  pack_string(pk, "v");
  pk.pack_int(1);
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
    case worker_op::inspect:
      request.alloc_id = read_local_id(view, "alloc");
      break;
    default:
      break;
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
  if (!valid_pool_id(hello.pool))
    codec::fail("pool", "a pool id is non-empty and has no '/'");
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
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) {
    uint32_t args = 0;
    switch (request.op) {
      case worker_op::accept:
      case worker_op::keepalive:
        args = 2;
        break;
      case worker_op::free:
      case worker_op::inspect:
        args = 1;
        break;
      case worker_op::allocs:
      case worker_op::offers:
        break;
      default:  // exec ops
        args = 1 + codec::exec_call_field_count(request.exec);
        break;
    }
    pk.pack_map(3 + args);
    pack_version(pk);
    pack_string(pk, "rid");
    pk.pack_uint64(request.rid);
    pack_string(pk, "op");
    pack_string(pk, to_string(request.op));
    switch (request.op) {
      case worker_op::accept:
        pack_string(pk, "offer");
        pack_string(pk, request.offer_id);
        pack_string(pk, "meta");
        codec::pack_alloc_meta(pk, request.meta);
        break;
      case worker_op::keepalive:
        pack_string(pk, "alloc");
        pack_string(pk, request.alloc_id);
        pack_string(pk, "interval_ms");
        pk.pack_int64(request.interval_ms);
        break;
      case worker_op::free:
      case worker_op::inspect:
        pack_string(pk, "alloc");
        pack_string(pk, request.alloc_id);
        break;
      case worker_op::allocs:
      case worker_op::offers:
        break;
      default:  // exec ops
        pack_string(pk, "alloc");
        pack_string(pk, request.alloc_id);
        codec::pack_exec_call_fields(pk, request.exec);
        break;
    }
  });
}

outcome<worker_request> decode_worker_request(std::string_view body, uint64_t* rid_out) {
  if (rid_out != nullptr) *rid_out = 0;
  return decode_map(body, [&](const map_view& view) { return read_request(view, rid_out); });
}

std::string encode_worker_reply(const worker_reply& reply) {
  return codec::pack_body([&](msgpack::sbuffer& buffer, packer& pk) {
    // Results are written only when they carry something: a worker_reply
    // does not know its op, and an absent list decodes as an empty one.
    // Any alloc but the default one is written, even one with an empty id, so
    // what a decoder accepted re-encodes unchanged (fuzz round trip).
    bool has_alloc = reply.ok && !(reply.alloc == AllocInspect{});
    bool has_allocs = reply.ok && (!reply.allocs.empty() || reply.allocs_entries.count > 0);
    bool has_offers = reply.ok && !reply.offers.empty();
    bool has_interval = reply.ok && reply.interval_ms != 0;
    uint32_t exec_fields = reply.ok ? codec::exec_answer_field_count(reply.exec) : 0;
    uint32_t fields = 4 + (reply.ok ? 0 : 1) + has_alloc + has_allocs + has_offers + has_interval + exec_fields;
    pk.pack_map(fields);
    pack_version(pk);
    pack_string(pk, "type");
    pack_string(pk, "reply");
    pack_string(pk, "rid");
    pk.pack_uint64(reply.rid);
    pack_string(pk, "ok");
    if (reply.ok)
      pk.pack_true();
    else
      pk.pack_false();
    if (!reply.ok) {
      pack_string(pk, "error");
      codec::pack_pool_error(pk, reply.error);
    }
    if (has_alloc) {
      pack_string(pk, "alloc");
      codec::pack_alloc_inspect(pk, reply.alloc);
    }
    if (has_allocs) {
      pack_string(pk, "allocs");
      pk.pack_array(static_cast<uint32_t>(reply.allocs.size() + static_cast<size_t>(reply.allocs_entries.count)));
      for (const auto& alloc : reply.allocs) codec::pack_alloc_inspect(pk, alloc);
      buffer.write(reply.allocs_entries.bytes.data(), reply.allocs_entries.bytes.size());
    }
    if (has_offers) {
      pack_string(pk, "offers");
      codec::pack_list(pk, reply.offers, codec::pack_offer_info);
    }
    if (has_interval) {
      pack_string(pk, "interval_ms");
      pk.pack_int64(reply.interval_ms);
    }
    if (exec_fields > 0) codec::pack_exec_answer_fields(pk, reply.exec);
  });
}

std::string encode_worker_hello(const worker_hello& hello) {
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(5);
    pack_version(pk);
    pack_string(pk, "type");
    pack_string(pk, "hello");
    pack_string(pk, "pool");
    pack_string(pk, hello.pool);
    pack_string(pk, "run");
    pack_string(pk, hello.run);
    pack_string(pk, "ts_ms");
    pk.pack_int64(hello.ts_ms);
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
  if (span.count > codec::max_reply_container_elements) codec::fail("allocs", "over a size limit (array size overflow)");
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
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(10);
    pack_version(pk);
    pack_string(pk, "pool");
    pack_string(pk, a.pool);
    pack_string(pk, "run");
    pack_string(pk, a.run);
    pack_string(pk, "seq");
    pk.pack_int64(a.seq);
    pack_string(pk, "resources");
    codec::pack_resources(pk, a.resources);
    pack_string(pk, "available");
    codec::pack_resources(pk, a.available);
    pack_string(pk, "offers");
    codec::pack_list(pk, a.offers, codec::pack_offer_info);
    pack_string(pk, "allocs");
    pk.pack_int64(a.allocs);
    pack_string(pk, "ts_ms");
    pk.pack_int64(a.ts_ms);
    pack_string(pk, "heartbeat_ms");
    pk.pack_int64(a.heartbeat_ms);
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
    a.ts_ms = view.require_int("ts_ms");
    a.heartbeat_ms = view.optional_int("heartbeat_ms").value_or(0);
    return a;
  });
}

std::string encode_alloc_event(const alloc_event& e) {
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(5);
    pack_version(pk);
    pack_string(pk, "pool");
    pack_string(pk, e.pool);
    pack_string(pk, "event");
    pack_string(pk, to_string(e.event));
    pack_string(pk, "alloc");
    codec::pack_alloc_inspect(pk, e.alloc);
    pack_string(pk, "ts_ms");
    pk.pack_int64(e.ts_ms);
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
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(4);
    pack_version(pk);
    pack_string(pk, "pool");
    pack_string(pk, e.pool);
    pack_string(pk, "event");
    pack_string(pk, to_string(e.event));
    pack_string(pk, "ts_ms");
    pk.pack_int64(e.ts_ms);
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

}  // namespace poolbus

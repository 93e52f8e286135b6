#include "schemas/api_messages.hpp"

#include <array>
#include <utility>

#include "schemas/codec.hpp"
#include "schemas/map_writer.hpp"
#include "schemas/msgpack_scan.hpp"
#include "schemas/reply_lists.hpp"

namespace poolbus {

const std::string nil_id_raw = "\xc0";

namespace {

using codec::map_view;
using codec::pack_string;
using codec::packer;

constexpr std::array<std::pair<api_op, std::string_view>, 20> op_names{{
    {api_op::ping, "ping"},
    {api_op::pools, "pools"},
    {api_op::offers, "offers"},
    {api_op::offer, "offer"},
    {api_op::accept, "accept"},
    {api_op::allocate, "allocate"},
    {api_op::allocs, "allocs"},
    {api_op::inspect, "inspect"},
    {api_op::keepalive, "keepalive"},
    {api_op::free, "free"},
    {api_op::queue, "queue"},
    {api_op::quotas, "quotas"},
    {api_op::drain, "drain"},
    {api_op::exec_put, "exec_put"},
    {api_op::exec_inspect, "exec_inspect"},
    {api_op::execs, "execs"},
    {api_op::exec_wait, "exec_wait"},
    {api_op::exec_logs, "exec_logs"},
    {api_op::exec_remove, "exec_remove"},
    {api_op::repo_get, "repo_get"},
}};

// The "id" of a top-level map, re-packed, or nil. Scans the raw map so that a
// request malformed in any other way (even a non-string key elsewhere) still
// gets its id echoed.
std::string id_of(const msgpack::object& object) {
  if (object.type != msgpack::type::MAP) return nil_id_raw;
  for (uint32_t i = 0; i < object.via.map.size; ++i) {
    const auto& entry = object.via.map.ptr[i];
    if (entry.key.type == msgpack::type::STR && std::string_view(entry.key.via.str.ptr, entry.key.via.str.size) == "id")
      return codec::repack(entry.val);
  }
  return nil_id_raw;
}

// A required URI field, checked with parse_pool_uri.
std::string read_uri(const map_view& view, std::string_view key) {
  std::string uri = view.require_string(key);
  auto parsed = parse_pool_uri(uri);
  if (!parsed) codec::fail(view.path_of(key), parsed.error().message);
  return uri;
}

// allocate's min and width, and the optional arguments of the second wave.
placement read_placement(const map_view& view) {
  placement p;
  p.min = view.read("min", codec::read_resources);
  p.width = view.optional_int("width").value_or(0);
  if (p.width < 0) codec::fail("width", "negative");
  if (auto wait = view.optional_int("wait_ms")) {
    if (*wait < 0) codec::fail("wait_ms", "negative");
    if (*wait > max_wait_ms) codec::fail("wait_ms", "at most 24 h (86400000)");
    p.wait_ms = *wait;
  }
  p.priority = view.optional_int("priority").value_or(0);
  if (auto count = view.optional_int("count")) {
    if (*count < 1) codec::fail("count", "must be >= 1");
    p.count = *count;
    p.gang = true;
  }
  if (auto spread = view.read_optional("spread", codec::read_bool)) p.spread = *spread;
  if (auto constraints = view.read_optional("constraints", codec::read_constraints))
    p.constraints = std::move(*constraints);
  return p;
}

api_request read_request(const map_view& view) {
  codec::check_version(view);
  api_request request;
  request.op = codec::read_op(view, api_op_from_string);
  if (auto exec = exec_op_of(request.op)) {
    request.uri = read_uri(view, "alloc");
    request.exec.op = *exec;
    request.exec.alloc = request.uri;
    codec::read_exec_call_fields(view, request.exec);
    return request;
  }
  switch (request.op) {
    case api_op::ping:
    case api_op::pools:
    case api_op::offers: break;
    case api_op::offer: request.uri = read_uri(view, "offer"); break;
    case api_op::accept:
      request.uri = read_uri(view, "offer");
      request.meta = view.read("meta", codec::read_alloc_meta);
      break;
    case api_op::allocate:
      request.place = read_placement(view);
      request.meta.owner = view.optional_string("owner").value_or("");
      if (auto labels = view.read_optional("labels", codec::read_labels)) request.meta.labels = *labels;
      break;
    case api_op::queue:
    case api_op::quotas: break;
    case api_op::drain:
      request.pool = view.require_string("pool");
      if (!valid_pool_id(request.pool)) codec::fail("pool", "not a pool id");
      if (auto drain = view.read_optional("drain", codec::read_bool)) request.drain = *drain;
      break;
    case api_op::allocs: request.pool = view.optional_string("pool").value_or(""); break;
    case api_op::inspect:
    case api_op::free: request.uri = read_uri(view, "alloc"); break;
    case api_op::keepalive:
      request.uri = read_uri(view, "alloc");
      request.interval_ms = view.require_int("interval_ms");
      if (request.interval_ms <= 0) codec::fail("interval_ms", "must be > 0");
      break;
    default: break;
  }
  return request;
}

// {"v": 1, "id": <raw>, "ok": ok}: the head every reply starts with.
template <class Fields>
void reply_head(Fields& out, std::string_view id_raw, bool ok) {
  out.int64("v", 1);
  out.raw("id", id_raw);
  out.boolean("ok", ok);
}

// A reply: its head, then the fields `results(out)` lists.
template <class Results>
std::string reply_body(std::string_view id_raw, bool ok, Results results) {
  return codec::map_body([&](auto& out) {
    reply_head(out, id_raw, ok);
    results(out);
  });
}

// An ok reply with one result field written by `pack_result`.
template <class PackResult>
std::string ok_reply(std::string_view id_raw, std::string_view key, PackResult pack_result) {
  return reply_body(id_raw, true, [&](auto& out) { out.field(key, pack_result); });
}

// allocate's arguments; the optional ones only when they differ from the default.
template <class Fields>
void pack_placement_fields(Fields& out, const placement& p) {
  out.field("min", [&](packer& pk) { codec::pack_resources(pk, p.min); });
  out.int64("width", p.width);
  if (p.wait_ms != 0) out.int64("wait_ms", p.wait_ms);
  if (p.priority != 0) out.int64("priority", p.priority);
  if (p.gang || p.count != 1) out.int64("count", p.count);
  if (p.spread) out.boolean("spread", true);
  if (!p.constraints.empty()) out.field("constraints", [&](packer& pk) { codec::pack_constraints(pk, p.constraints); });
}

// The fields of a request's op after "v", "id" and "op".
template <class Fields>
void pack_request_fields(Fields& out, const api_request& request) {
  switch (request.op) {
    case api_op::ping:
    case api_op::pools:
    case api_op::offers: break;
    case api_op::offer: out.text("offer", request.uri); break;
    case api_op::accept:
      out.text("offer", request.uri);
      out.field("meta", [&](packer& pk) { codec::pack_alloc_meta(pk, request.meta); });
      break;
    case api_op::allocate:
      pack_placement_fields(out, request.place);
      if (!request.meta.owner.empty()) out.text("owner", request.meta.owner);
      if (!request.meta.labels.empty())
        out.field("labels", [&](packer& pk) { codec::pack_labels(pk, request.meta.labels); });
      break;
    case api_op::allocs:
      if (!request.pool.empty()) out.text("pool", request.pool);
      break;
    case api_op::queue:
    case api_op::quotas: break;
    case api_op::drain:
      out.text("pool", request.pool);
      out.boolean("drain", request.drain);
      break;
    case api_op::inspect:
    case api_op::free: out.text("alloc", request.uri); break;
    case api_op::keepalive:
      out.text("alloc", request.uri);
      out.int64("interval_ms", request.interval_ms);
      break;
    default:  // exec ops
      out.text("alloc", request.uri);
      codec::pack_exec_call_fields(out, request.exec);
      break;
  }
}

}  // namespace

std::string_view to_string(api_op op) {
  for (const auto& [o, name] : op_names)
    if (o == op) return name;
  return "unknown";
}

std::optional<api_op> api_op_from_string(std::string_view name) {
  for (const auto& [o, n] : op_names)
    if (n == name) return o;
  return std::nullopt;
}

std::optional<exec_op> exec_op_of(api_op op) {
  if (op < api_op::exec_put) return std::nullopt;
  return exec_op_from_string(to_string(op));
}

outcome<api_request> decode_api_request(std::string_view body, std::string* id_raw_out) {
  if (id_raw_out != nullptr) *id_raw_out = nil_id_raw;
  return codec::guarded([&] {
    auto handle = codec::unpack_body(body, max_request_bytes);
    std::string id_raw = id_of(handle.get());
    if (id_raw_out != nullptr) *id_raw_out = id_raw;
    api_request request = read_request(map_view(handle.get(), ""));
    request.id_raw = std::move(id_raw);
    return request;
  });
}

std::string encode_api_request(const api_request& request) {
  return codec::map_body([&](auto& out) {
    out.int64("v", 1);
    out.raw("id", request.id_raw);
    out.text("op", to_string(request.op));
    pack_request_fields(out, request);
  });
}

std::string encode_error_reply(std::string_view id_raw, const pool_error& error) {
  return reply_body(id_raw, false,
                    [&](auto& out) { out.field("error", [&](packer& pk) { codec::pack_pool_error(pk, error); }); });
}

std::string encode_ok_reply(std::string_view id_raw) {
  return reply_body(id_raw, true, [](auto&) {});
}

std::string encode_pools_reply(std::string_view id_raw, const std::vector<PoolStatus>& pools) {
  return ok_reply(id_raw, "pools", [&](packer& pk) { codec::pack_list(pk, pools, codec::pack_pool_status); });
}

std::string encode_offers_reply(std::string_view id_raw, const std::vector<OfferInfo>& offers) {
  return ok_reply(id_raw, "offers", [&](packer& pk) { codec::pack_list(pk, offers, codec::pack_offer_info); });
}

namespace {

// An ok reply whose one result field is the array of `entries`: the field's
// value is the array header, its elements the bytes appended after the map.
std::string spliced_reply(std::string_view id_raw, std::string_view key, const encoded_array& entries) {
  msgpack::sbuffer head(256);
  packer pk(&head);
  codec::pack_fields(pk, [&](auto& out) {
    reply_head(out, id_raw, true);
    out.field(key, [&](packer& p) { p.pack_array(static_cast<uint32_t>(entries.count)); });
  });
  // The entries (~1 MB for 10,000 pools) are copied once, into a body sized up front.
  std::string body;
  body.reserve(head.size() + entries.bytes.size());
  body.append(head.data(), head.size());
  body.append(entries.bytes);
  return body;
}

}  // namespace

std::string encode_pools_reply_spliced(std::string_view id_raw, const encoded_array& pools) {
  return spliced_reply(id_raw, "pools", pools);
}

std::string encode_offers_reply_spliced(std::string_view id_raw, const encoded_array& offers) {
  return spliced_reply(id_raw, "offers", offers);
}

std::string encode_allocs_reply_spliced(std::string_view id_raw, const encoded_array& allocs) {
  return spliced_reply(id_raw, "allocs", allocs);
}

std::string encode_offer_reply(std::string_view id_raw, const OfferInfo& offer) {
  return ok_reply(id_raw, "offer", [&](packer& pk) { codec::pack_offer_info(pk, offer); });
}

std::string encode_alloc_reply(std::string_view id_raw, const AllocInspect& alloc) {
  return ok_reply(id_raw, "alloc", [&](packer& pk) { codec::pack_alloc_inspect(pk, alloc); });
}

std::string encode_gang_reply(std::string_view id_raw, const std::vector<AllocInspect>& allocs) {
  return reply_body(id_raw, true, [&](auto& out) {
    if (!allocs.empty()) out.field("alloc", [&](packer& pk) { codec::pack_alloc_inspect(pk, allocs.front()); });
    out.field("allocs", [&](packer& pk) { codec::pack_list(pk, allocs, codec::pack_alloc_inspect); });
  });
}

std::string encode_queue_reply(std::string_view id_raw, const std::vector<queue_entry>& queue) {
  return ok_reply(id_raw, "queue", [&](packer& pk) { codec::pack_list(pk, queue, codec::pack_queue_entry); });
}

std::string encode_quotas_reply(std::string_view id_raw, const std::vector<quota_usage>& quotas) {
  return ok_reply(id_raw, "quotas", [&](packer& pk) { codec::pack_list(pk, quotas, codec::pack_quota_usage); });
}

std::string encode_pool_reply(std::string_view id_raw, const PoolStatus& pool) {
  return ok_reply(id_raw, "pool", [&](packer& pk) { codec::pack_pool_status(pk, pool); });
}

std::string encode_allocs_reply(std::string_view id_raw, const std::vector<AllocInspect>& allocs) {
  return ok_reply(id_raw, "allocs", [&](packer& pk) { codec::pack_list(pk, allocs, codec::pack_alloc_inspect); });
}

std::string encode_keepalive_reply(std::string_view id_raw, int64_t interval_ms) {
  return ok_reply(id_raw, "interval_ms", [&](packer& pk) { pk.pack_int64(interval_ms); });
}

std::string encode_exec_reply(std::string_view id_raw, const exec_answer& answer) {
  return reply_body(id_raw, true, [&](auto& out) { codec::pack_exec_answer_fields(out, answer); });
}

namespace {

// Fast readers of the long lists in offers and pools replies (10,000 entries
// with 10,000 pools). The strict codec readers build a path string for every
// field they read ("pools[123].resources.cpu"), which costs more than the
// reading. These read the same fields with the same typed reads but name no
// path; on any problem the strict reader runs over the whole list instead and
// throws its own error, so what is accepted, the values and every error
// message are exactly the strict readers'.
const std::string no_path;

Resources read_resources_fast(const msgpack::object& object) {
  if (object.type != msgpack::type::MAP) codec::fail(no_path, "not a map");
  Resources resources;
  for (uint32_t i = 0; i < object.via.map.size; ++i) {
    const auto& entry = object.via.map.ptr[i];
    if (entry.key.type != msgpack::type::STR || entry.key.via.str.size == 0) codec::fail(no_path, "resource name");
    double v = codec::read_number(entry.val, no_path);
    if (Resources::value_problem(v)) codec::fail(no_path, "out of range");
    // As read_resources: a repeated name keeps its last value.
    resources.set(std::string(entry.key.via.str.ptr, entry.key.via.str.size), v);
  }
  return resources;
}

// Paths below stay empty, so a key path is the key itself: short enough for
// std::string's in-place buffer, no allocation.
PoolStatus read_pool_status_fast(const msgpack::object& object) {
  map_view view(object, no_path);
  PoolStatus pool;
  pool.id = view.require_string("id");
  pool.resources = read_resources_fast(view.require("resources"));
  pool.available = read_resources_fast(view.require("available"));
  pool.allocs = view.require_int("allocs");
  if (auto labels = view.read_optional("labels", codec::read_labels)) pool.labels = std::move(*labels);
  if (auto draining = view.read_optional("draining", codec::read_bool)) pool.draining = *draining;
  pool.last_seen_ms = view.require_int("last_seen_ms");
  return pool;
}

OfferInfo read_offer_info_fast(const msgpack::object& object) {
  map_view view(object, no_path);
  OfferInfo offer;
  offer.id = view.require_string("id");
  offer.pool = view.require_string("pool");
  offer.available = read_resources_fast(view.require("available"));
  return offer;
}

template <class ReadFast, class ReadStrict>
auto read_list_fast(const msgpack::object& object, const std::string& path, ReadFast read_fast, ReadStrict read_strict)
    -> std::vector<decltype(read_fast(object))> {
  try {
    if (object.type == msgpack::type::ARRAY) {
      std::vector<decltype(read_fast(object))> out;
      out.reserve(object.via.array.size);
      for (uint32_t i = 0; i < object.via.array.size; ++i) out.push_back(read_fast(object.via.array.ptr[i]));
      return out;
    }
  } catch (const codec::decode_failure&) {
    // fall through: the strict reader names the problem
  }
  return codec::read_list(object, path, read_strict);
}

// Mirrors the checks codec::unpack_body(body, max_reply_bytes) makes (msgpack-c's
// create_object_visitor with the same unpack_limit), on the same parser,
// but builds no object tree: it accepts exactly the bodies unpack_body does.
class unpack_limit_check : public msgpack::null_visitor {
 public:
  bool visit_str(const char*, uint32_t size) {
    if (size > codec::max_string_bytes) throw msgpack::str_size_overflow("str size overflow");
    return true;
  }
  bool visit_bin(const char*, uint32_t size) {
    if (size > codec::max_bin_bytes) throw msgpack::bin_size_overflow("bin size overflow");
    return true;
  }
  bool visit_ext(const char*, uint32_t size) {
    if (size > codec::max_string_bytes) throw msgpack::ext_size_overflow("ext size overflow");
    return true;
  }
  bool start_array(uint32_t elements) {
    if (elements > codec::container_limit(codec::max_reply_bytes))
      throw msgpack::array_size_overflow("array size overflow");
    return enter();
  }
  bool end_array() { return leave(); }
  bool start_map(uint32_t pairs) {
    if (pairs > codec::container_limit(codec::max_reply_bytes)) throw msgpack::map_size_overflow("map size overflow");
    return enter();
  }
  bool end_map() { return leave(); }
  void parse_error(size_t, size_t) { throw msgpack::parse_error("parse error"); }
  void insufficient_bytes(size_t, size_t) { throw msgpack::insufficient_bytes("insufficient bytes"); }

 private:
  // create_object_visitor's stack holds the root plus one entry per open container.
  size_t stack_size_ = 1;
  bool enter() {
    if (stack_size_ > codec::max_nesting_depth) throw msgpack::depth_size_overflow("depth size overflow");
    ++stack_size_;
    return true;
  }
  bool leave() {
    --stack_size_;
    return true;
  }
};

// Whether unpack_body(body, max_reply_bytes) would accept `body`.
bool readable_reply(std::string_view body) {
  if (body.empty() || body.size() > codec::max_reply_bytes) return false;
  try {
    unpack_limit_check check;
    size_t offset = 0;
    // The parse msgpack::unpack runs (v2's, whatever the default API version).
    auto parsed = msgpack::v2::detail::parse_imp(body.data(), body.size(), offset, check);
    if (parsed != msgpack::PARSE_SUCCESS && parsed != msgpack::PARSE_EXTRA_BYTES) return false;
    return offset == body.size();
  } catch (const std::exception&) {
    return false;
  }
}

// id_of for a body known to be readable, unpacking the top-level map's
// entries one at a time up to "id" (a reply's head, before its long list).
std::string id_of_readable(std::string_view body) {
  msgpack_cursor head(body);
  uint32_t entries = 0;
  if (!head.map_header(entries)) return nil_id_raw;  // not a map
  size_t offset = head.position();
  for (uint32_t i = 0; i < entries; ++i) {
    auto key = msgpack::unpack(body.data(), body.size(), offset);
    if (key->type == msgpack::type::STR && std::string_view(key->via.str.ptr, key->via.str.size) == "id")
      return codec::repack(msgpack::unpack(body.data(), body.size(), offset).get());
    msgpack::null_visitor skip;
    msgpack::parse(body.data(), body.size(), offset, skip);
  }
  return nil_id_raw;
}

}  // namespace

outcome<api_reply> decode_api_reply(std::string_view body) {
  // Offers and pools replies in the encoder's exact shape are read from the
  // bytes (reply_lists.hpp); anything else, valid or not, is unpacked below,
  // where the strict readers name what is wrong.
  if (auto listed = read_list_reply(body)) return std::move(*listed);
  api_reply reply;
  std::optional<pool_error> remote_error;
  auto parsed = codec::guarded([&] {
    auto handle = codec::unpack_body(body, codec::max_reply_bytes);
    map_view view(handle.get(), "");
    codec::check_version(view);
    reply.id_raw = id_of(handle.get());
    if (!view.require_bool("ok")) {
      remote_error = view.read("error", codec::read_pool_error);
      return true;
    }
    if (auto pools = view.read_optional("pools", [](const msgpack::object& o, const std::string& path) {
          return read_list_fast(o, path, read_pool_status_fast, codec::read_pool_status);
        }))
      reply.pools = std::move(*pools);
    if (auto offers = view.read_optional("offers", [](const msgpack::object& o, const std::string& path) {
          return read_list_fast(o, path, read_offer_info_fast, codec::read_offer_info);
        }))
      reply.offers = std::move(*offers);
    if (auto offer = view.read_optional("offer", codec::read_offer_info)) reply.offer = std::move(*offer);
    if (auto alloc = view.read_optional("alloc", codec::read_alloc_inspect)) reply.alloc = std::move(*alloc);
    if (auto allocs = view.read_optional("allocs", [](const msgpack::object& o, const std::string& path) {
          return codec::read_list(o, path, codec::read_alloc_inspect);
        }))
      reply.allocs = std::move(*allocs);
    if (auto queue = view.read_optional("queue", [](const msgpack::object& o, const std::string& path) {
          return codec::read_list(o, path, codec::read_queue_entry);
        }))
      reply.queue = std::move(*queue);
    if (auto quotas = view.read_optional("quotas", [](const msgpack::object& o, const std::string& path) {
          return codec::read_list(o, path, codec::read_quota_usage);
        }))
      reply.quotas = std::move(*quotas);
    if (auto pool = view.read_optional("pool", codec::read_pool_status)) reply.pool = std::move(*pool);
    reply.interval_ms = view.optional_int("interval_ms").value_or(0);
    codec::read_exec_answer_fields(view, reply.exec);
    return true;
  });
  if (!parsed) return make_pool_error(error_kind::internal, "malformed reply: " + parsed.error().message);
  if (remote_error) return *remote_error;
  return reply;
}

std::string reply_id_raw(std::string_view body) {
  // Pairing replies on a DEALER reads every reply's id: checking a ~1 MB
  // list reply costs a parse, but building its object tree cost 5x that.
  // An offers or pools reply in the encoder's shape is checked by reading
  // it (without building its entries), which is cheaper still.
  if (auto id = list_reply_id(body)) return std::move(*id);
  if (!readable_reply(body)) return nil_id_raw;
  auto id = codec::guarded([&] { return id_of_readable(body); });
  return id ? *id : nil_id_raw;
}

}  // namespace poolbus

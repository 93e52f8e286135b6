#include "schemas/codec.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "schemas/map_writer.hpp"

namespace poolbus {
namespace codec {
namespace {

// 2^63 as a double: the first value past int64's range.
constexpr double int64_bound = 9223372036854775808.0;

std::string_view view_of(const msgpack::object& object) {
  return std::string_view(object.via.str.ptr, object.via.str.size);
}

}  // namespace

// ---------------------------------------------------------------- packing

void pack_string(packer& pk, std::string_view text) {
  pk.pack_str(static_cast<uint32_t>(text.size()));
  pk.pack_str_body(text.data(), static_cast<uint32_t>(text.size()));
}

void pack_float64(packer& pk, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  char bytes[9];
  bytes[0] = static_cast<char>(0xcb);
  for (int i = 0; i < 8; ++i) bytes[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
  pk.pack_bin_body(bytes, sizeof bytes);  // appends the bytes as they are, no header
}

void pack_raw(packer& pk, std::string_view packed) {
  if (packed.empty()) packed = "\xc0";  // nothing to echo: nil keeps the map well-formed
  pk.pack_bin_body(packed.data(), static_cast<uint32_t>(packed.size()));  // the bytes as they are
}

void pack_resources(packer& pk, const Resources& resources) {
  pk.pack_map(static_cast<uint32_t>(resources.amounts().size()));
  for (const auto& [key, units] : resources.amounts()) {
    pack_string(pk, key);
    pack_float64(pk, Resources::value_of(units));
  }
}

void pack_labels(packer& pk, const Labels& labels) {
  pk.pack_map(static_cast<uint32_t>(labels.size()));
  for (const auto& [key, value] : labels) {
    pack_string(pk, key);
    pack_string(pk, value);
  }
}

void pack_alloc_meta(packer& pk, const AllocMeta& meta) {
  pack_fields(pk, [&](auto& out) {
    out.field("want", [&](packer& p) { pack_resources(p, meta.want); });
    if (!meta.owner.empty()) out.text("owner", meta.owner);
    if (!meta.labels.empty()) out.field("labels", [&](packer& p) { pack_labels(p, meta.labels); });
  });
}

void pack_alloc_inspect(packer& pk, const AllocInspect& alloc) {
  pack_fields(pk, [&](auto& out) {
    out.text("id", alloc.id);
    out.text("pool", alloc.pool);
    out.text("taskdb_alloc_id", alloc.taskdb_alloc_id);
    out.field("resources", [&](packer& p) { pack_resources(p, alloc.resources); });
    out.field("meta", [&](packer& p) { pack_alloc_meta(p, alloc.meta); });
    out.int64("created_ms", alloc.created_ms);
    out.int64("last_keepalive_ms", alloc.last_keepalive_ms);
    out.int64("expires_ms", alloc.expires_ms);
  });
}

void pack_offer_info(packer& pk, const OfferInfo& offer) {
  pack_fields(pk, [&](auto& out) {
    out.text("id", offer.id);
    out.text("pool", offer.pool);
    out.field("available", [&](packer& p) { pack_resources(p, offer.available); });
  });
}

void pack_pool_status(packer& pk, const PoolStatus& pool) {
  pack_fields(pk, [&](auto& out) {
    out.text("id", pool.id);
    out.field("resources", [&](packer& p) { pack_resources(p, pool.resources); });
    out.field("available", [&](packer& p) { pack_resources(p, pool.available); });
    out.int64("allocs", pool.allocs);
    out.field("labels", [&](packer& p) { pack_labels(p, pool.labels); });
    out.boolean("draining", pool.draining);
    out.int64("last_seen_ms", pool.last_seen_ms);  // last: encoded_entries patches it in place
  });
}

void pack_constraints(packer& pk, const Constraints& constraints) {
  pk.pack_map(static_cast<uint32_t>(constraints.size()));
  for (const auto& [key, values] : constraints) {
    pack_string(pk, key);
    pk.pack_array(static_cast<uint32_t>(values.size()));
    for (const auto& value : values) pack_string(pk, value);
  }
}

void pack_queue_entry(packer& pk, const queue_entry& entry) {
  pack_fields(pk, [&](auto& out) {
    out.text("id", entry.id);
    if (!entry.owner.empty()) out.text("owner", entry.owner);
    out.field("min", [&](packer& p) { pack_resources(p, entry.min); });
    out.int64("width", entry.width);
    out.int64("count", entry.count);
    out.int64("priority", entry.priority);
    out.field("constraints", [&](packer& p) { pack_constraints(p, entry.constraints); });
    out.int64("queued_ms", entry.queued_ms);
    out.int64("deadline_ms", entry.deadline_ms);
  });
}

void pack_quota_usage(packer& pk, const quota_usage& usage) {
  pack_fields(pk, [&](auto& out) {
    out.text("owner", usage.owner);
    out.field("quota", [&](packer& p) { pack_resources(p, usage.quota); });
    out.field("used", [&](packer& p) { pack_resources(p, usage.used); });
  });
}

void pack_pool_error(packer& pk, const pool_error& error) {
  pack_fields(pk, [&](auto& out) {
    out.text("kind", to_string(error.kind));
    out.text("message", error.message);
  });
}

std::string repack(const msgpack::object& object) {
  msgpack::sbuffer buffer(first_body_buffer_bytes);
  msgpack::pack(buffer, object);
  return std::string(buffer.data(), buffer.size());
}

// ---------------------------------------------------------------- decoding

void fail(const std::string& path, const std::string& problem) {
  throw decode_failure(make_pool_error(error_kind::invalid, (path.empty() ? "body" : path) + ": " + problem));
}

std::string join_path(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out = path;
  out += '.';
  out += key;
  return out;
}

msgpack::object_handle unpack_body(std::string_view body, size_t max_bytes) {
  if (body.size() > max_bytes) fail("", "larger than " + std::to_string(max_bytes) + " bytes");
  if (body.empty()) fail("", "empty");
  const msgpack::unpack_limit limits(container_limit(max_bytes), container_limit(max_bytes), max_string_bytes,
                                     max_bin_bytes, max_string_bytes, max_nesting_depth);
  size_t offset = 0;
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(body.data(), body.size(), offset, nullptr, nullptr, limits);
  } catch (const msgpack::insufficient_bytes&) {
    fail("", "not MessagePack (truncated)");
  } catch (const msgpack::size_overflow& e) {
    fail("", std::string("over a size limit (") + e.what() + ")");
  } catch (const std::bad_alloc&) {
    fail("", "too large to decode");
  } catch (const std::exception& e) {
    fail("", std::string("not MessagePack (") + e.what() + ")");
  }
  if (offset != body.size()) fail("", std::to_string(body.size() - offset) + " trailing bytes after the message");
  return handle;
}

int64_t read_int(const msgpack::object& object, const std::string& path) {
  switch (object.type) {
    case msgpack::type::POSITIVE_INTEGER:
      if (object.via.u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(path, "integer out of range");
      return static_cast<int64_t>(object.via.u64);
    case msgpack::type::NEGATIVE_INTEGER: return object.via.i64;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: {
      double v = object.via.f64;
      if (!std::isfinite(v) || std::trunc(v) != v) fail(path, "not an integer");
      if (v < -int64_bound || v >= int64_bound) fail(path, "integer out of range");
      return static_cast<int64_t>(v);
    }
    default: fail(path, "not an integer");
  }
}

namespace {
// A number's value, or why it is none: what read_number checks, without a path.
const char* number_problem(const msgpack::object& object, double* v) {
  switch (object.type) {
    case msgpack::type::POSITIVE_INTEGER: *v = static_cast<double>(object.via.u64); break;
    case msgpack::type::NEGATIVE_INTEGER: *v = static_cast<double>(object.via.i64); break;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: *v = object.via.f64; break;
    default: return "not a number";
  }
  return std::isfinite(*v) ? nullptr : "not finite";
}
}  // namespace

double read_number(const msgpack::object& object, const std::string& path) {
  double v = 0;
  if (const char* problem = number_problem(object, &v)) fail(path, problem);
  return v;
}

std::string read_string(const msgpack::object& object, const std::string& path) {
  if (object.type != msgpack::type::STR) fail(path, "not a string");
  return std::string(view_of(object));
}

bool read_bool(const msgpack::object& object, const std::string& path) {
  if (object.type != msgpack::type::BOOLEAN) fail(path, "not a bool");
  return object.via.boolean;
}

// Resources::value_problem's checks, without a map in between; a label's
// path is only spelled out for the error.
Resources read_resources(const msgpack::object& object, const std::string& path) {
  if (object.type != msgpack::type::MAP) fail(path, "not a map");
  Resources resources;
  for (uint32_t i = 0; i < object.via.map.size; ++i) {
    const auto& entry = object.via.map.ptr[i];
    if (entry.key.type != msgpack::type::STR) fail(path, "resource name is not a string");
    std::string key(view_of(entry.key));
    if (key.empty()) fail(path, "resource name is empty");
    double v = 0;
    const char* problem = number_problem(entry.val, &v);
    if (!problem) problem = Resources::value_problem(v);
    if (problem) fail(join_path(path, key), problem);
    resources.set(key, v);
  }
  return resources;
}

Labels read_labels(const msgpack::object& object, const std::string& path) {
  map_view view(object, path);
  Labels labels;
  for (uint32_t i = 0; i < object.via.map.size; ++i) {
    const auto& entry = object.via.map.ptr[i];
    std::string key(view_of(entry.key));
    labels[key] = read_string(entry.val, join_path(path, key));
  }
  return labels;
}

AllocMeta read_alloc_meta(const msgpack::object& object, const std::string& path) {
  map_view view(object, path);
  AllocMeta meta;
  meta.want = view.read("want", read_resources);
  meta.owner = view.optional_string("owner").value_or("");
  if (auto labels = view.read_optional("labels", read_labels)) meta.labels = std::move(*labels);
  return meta;
}

AllocInspect read_alloc_inspect(const msgpack::object& object, const std::string& path) {
  map_view view(object, path);
  AllocInspect alloc;
  alloc.id = view.require_string("id");
  alloc.pool = view.require_string("pool");
  alloc.taskdb_alloc_id = view.optional_string("taskdb_alloc_id").value_or("");
  alloc.resources = view.read("resources", read_resources);
  alloc.meta = view.read("meta", read_alloc_meta);
  alloc.created_ms = view.require_int("created_ms");
  alloc.last_keepalive_ms = view.require_int("last_keepalive_ms");
  alloc.expires_ms = view.require_int("expires_ms");
  return alloc;
}

OfferInfo read_offer_info(const msgpack::object& object, const std::string& path) {
  map_view view(object, path);
  OfferInfo offer;
  offer.id = view.require_string("id");
  offer.pool = view.require_string("pool");
  offer.available = view.read("available", read_resources);
  return offer;
}

PoolStatus read_pool_status(const msgpack::object& object, const std::string& path) {
  map_view view(object, path);
  PoolStatus pool;
  pool.id = view.require_string("id");
  pool.resources = view.read("resources", read_resources);
  pool.available = view.read("available", read_resources);
  pool.allocs = view.require_int("allocs");
  if (auto labels = view.read_optional("labels", read_labels)) pool.labels = std::move(*labels);
  if (auto draining = view.read_optional("draining", read_bool)) pool.draining = *draining;
  pool.last_seen_ms = view.require_int("last_seen_ms");
  return pool;
}

Constraints read_constraints(const msgpack::object& object, const std::string& path) {
  map_view view(object, path);
  Constraints constraints;
  for (uint32_t i = 0; i < object.via.map.size; ++i) {
    const auto& entry = object.via.map.ptr[i];
    std::string key(view_of(entry.key));
    auto value_path = join_path(path, key);
    std::vector<std::string> values;
    if (entry.val.type == msgpack::type::STR) {
      values.push_back(read_string(entry.val, value_path));
    } else if (entry.val.type == msgpack::type::ARRAY) {
      values = read_list(entry.val, value_path, read_string);
      if (values.empty()) fail(value_path, "an empty list matches no pool");
    } else {
      fail(value_path, "not a string or a list of strings");
    }
    constraints[key] = std::move(values);
  }
  return constraints;
}

queue_entry read_queue_entry(const msgpack::object& object, const std::string& path) {
  map_view view(object, path);
  queue_entry entry;
  entry.id = view.require_string("id");
  entry.owner = view.optional_string("owner").value_or("");
  entry.min = view.read("min", read_resources);
  entry.width = view.require_int("width");
  entry.count = view.require_int("count");
  entry.priority = view.require_int("priority");
  if (auto c = view.read_optional("constraints", read_constraints)) entry.constraints = std::move(*c);
  entry.queued_ms = view.require_int("queued_ms");
  entry.deadline_ms = view.require_int("deadline_ms");
  return entry;
}

quota_usage read_quota_usage(const msgpack::object& object, const std::string& path) {
  map_view view(object, path);
  quota_usage usage;
  usage.owner = view.require_string("owner");
  usage.quota = view.read("quota", read_resources);
  usage.used = view.read("used", read_resources);
  return usage;
}

pool_error read_pool_error(const msgpack::object& object, const std::string& path) {
  map_view view(object, path);
  std::string kind_name = view.require_string("kind");
  auto kind = error_kind_from_string(kind_name);
  if (!kind) fail(view.path_of("kind"), "unknown error kind \"" + kind_name + "\"");
  return make_pool_error(*kind, view.optional_string("message").value_or(""));
}

// ---------------------------------------------------------------- map_view

map_view::map_view(const msgpack::object& object, std::string path) : path_(std::move(path)) {
  if (object.type != msgpack::type::MAP) fail(path_, "not a map");
  entries_ = object.via.map.ptr;
  size_ = object.via.map.size;
  for (uint32_t i = 0; i < size_; ++i)
    if (entries_[i].key.type != msgpack::type::STR) fail(path_, "a key is not a string");
}

const msgpack::object* map_view::find(std::string_view key) const {
  for (uint32_t i = 0; i < size_; ++i) {
    if (view_of(entries_[i].key) == key) return entries_[i].val.type == msgpack::type::NIL ? nullptr : &entries_[i].val;
  }
  return nullptr;
}

const msgpack::object& map_view::require(std::string_view key) const {
  const msgpack::object* value = find(key);
  if (value == nullptr) fail(path_of(key), "missing");
  return *value;
}

int64_t map_view::require_int(std::string_view key) const { return read(key, read_int); }

std::optional<int64_t> map_view::optional_int(std::string_view key) const { return read_optional(key, read_int); }

double map_view::require_number(std::string_view key) const { return read(key, read_number); }

std::string map_view::require_string(std::string_view key) const { return read(key, read_string); }

std::optional<std::string> map_view::optional_string(std::string_view key) const {
  return read_optional(key, read_string);
}

bool map_view::require_bool(std::string_view key) const { return read(key, read_bool); }

map_view map_view::require_map(std::string_view key) const { return map_view(require(key), path_of(key)); }

void check_version(const map_view& view) {
  const msgpack::object* version = view.find("v");
  if (version == nullptr) return;
  int64_t v = read_int(*version, view.path_of("v"));
  if (v != 1) fail(view.path_of("v"), "unsupported v " + std::to_string(v) + " (only 1 is spoken)");
}

}  // namespace codec

// ---------------------------------------------------------------- whole bodies

namespace {

template <class T, class PackOne>
std::string encode_one(const T& value, PackOne pack_one) {
  return codec::pack_body([&](msgpack::sbuffer&, codec::packer& pk) { pack_one(pk, value); });
}

template <class ReadOne>
auto decode_one(std::string_view body, ReadOne read_one) {
  return codec::guarded([&] {
    auto handle = codec::unpack_body(body);
    return read_one(handle.get(), std::string());
  });
}

}  // namespace

std::string encode_resources(const Resources& r) { return encode_one(r, codec::pack_resources); }
outcome<Resources> decode_resources(std::string_view body) { return decode_one(body, codec::read_resources); }
std::string encode_alloc_meta(const AllocMeta& m) { return encode_one(m, codec::pack_alloc_meta); }
outcome<AllocMeta> decode_alloc_meta(std::string_view body) { return decode_one(body, codec::read_alloc_meta); }
std::string encode_alloc_inspect(const AllocInspect& a) { return encode_one(a, codec::pack_alloc_inspect); }
outcome<AllocInspect> decode_alloc_inspect(std::string_view body) {
  return decode_one(body, codec::read_alloc_inspect);
}
std::string encode_offer_info(const OfferInfo& o) { return encode_one(o, codec::pack_offer_info); }
outcome<OfferInfo> decode_offer_info(std::string_view body) { return decode_one(body, codec::read_offer_info); }
std::string encode_pool_status(const PoolStatus& p) { return encode_one(p, codec::pack_pool_status); }
outcome<PoolStatus> decode_pool_status(std::string_view body) { return decode_one(body, codec::read_pool_status); }

}  // namespace poolbus

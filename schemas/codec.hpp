// The MessagePack codec of the value types (Resources, AllocMeta, AllocInspect,
// OfferInfo, PoolStatus, pool_error) and the strict field readers every message
// codec shares. Invariant: a decode either yields a fully valid value or an
// `invalid` pool_error whose message names the field path ("meta.want.cpu: negative").
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/placement.hpp"

namespace poolbus {
namespace codec {

// Limits on anything decoded from outside, enforced by msgpack's unpack_limit
// before it allocates, so a forged length prefix cannot reserve gigabytes.
constexpr size_t max_container_elements = 10000;
constexpr size_t max_string_bytes = 64 * 1024;
constexpr size_t max_bin_bytes = 1 << 20;
constexpr size_t max_nesting_depth = 32;
// Requests are capped at 1 MiB (protocol.md); replies and announcements we
// decode ourselves may be larger (long alloc lists).
constexpr size_t max_body_bytes = 1 << 20;
constexpr size_t max_reply_bytes = 64 << 20;
// A reply lists every pool, offer or alloc: its containers may hold more
// than a request's (a broker with 10,001 pools must still answer `pools`).
constexpr size_t max_reply_container_elements = 1 << 20;
// The container limit for a body of at most max_bytes: replies get the larger one.
constexpr size_t container_limit(size_t max_bytes) {
  return max_bytes > max_body_bytes ? max_reply_container_elements : max_container_elements;
}

using packer = msgpack::packer<msgpack::sbuffer>;

// ---------------------------------------------------------------- packing
void pack_string(packer& pk, std::string_view text);
// Always the 9-byte float64 form: msgpack-c 4's pack_double writes whole
// values as ints, but replies must carry resources as float64.
void pack_float64(packer& pk, double value);
// Appends already-packed MessagePack bytes (an echoed id) as one value.
void pack_raw(packer& pk, std::string_view packed);
void pack_resources(packer& pk, const Resources& resources);  // values as float64
void pack_labels(packer& pk, const Labels& labels);
void pack_alloc_meta(packer& pk, const AllocMeta& meta);  // owner/labels only when set
void pack_alloc_inspect(packer& pk, const AllocInspect& alloc);
void pack_offer_info(packer& pk, const OfferInfo& offer);
void pack_pool_status(packer& pk, const PoolStatus& pool);
void pack_pool_error(packer& pk, const pool_error& error);
void pack_constraints(packer& pk, const Constraints& constraints);  // every value as a list
void pack_queue_entry(packer& pk, const queue_entry& entry);        // owner only when set
void pack_quota_usage(packer& pk, const quota_usage& usage);

template <class T, class PackOne>
void pack_list(packer& pk, const std::vector<T>& items, PackOne pack_one) {
  pk.pack_array(static_cast<uint32_t>(items.size()));
  for (const auto& item : items) pack_one(pk, item);
}

// The bytes of a msgpack::object packed on its own (how an "id" is echoed).
std::string repack(const msgpack::object& object);

// ---------------------------------------------------------------- decoding
// Readers below throw decode_failure; `guarded` (or the public decode_*
// functions) turn it into an outcome at the edge, so no exception leaves the codec.
struct decode_failure : std::exception {
  pool_error error;
  explicit decode_failure(pool_error e) : error(std::move(e)) {}
  const char* what() const noexcept override { return error.message.c_str(); }
};

// Throws decode_failure{invalid, "<path>: <problem>"} ("body" for the root).
[[noreturn]] void fail(const std::string& path, const std::string& problem);
// "meta" + "want" -> "meta.want"; "" + "want" -> "want".
std::string join_path(const std::string& path, std::string_view key);

// Unpacks exactly one object spanning the whole body, within the limits above.
// Not MessagePack, truncated, over a limit or trailing bytes: decode_failure.
msgpack::object_handle unpack_body(std::string_view body, size_t max_bytes = max_body_bytes);

// Typed reads of one object; `path` names it in errors.
int64_t read_int(const msgpack::object& object, const std::string& path);    // whole floats too
double read_number(const msgpack::object& object, const std::string& path);  // finite
std::string read_string(const msgpack::object& object, const std::string& path);
bool read_bool(const msgpack::object& object, const std::string& path);
Resources read_resources(const msgpack::object& object, const std::string& path);
Labels read_labels(const msgpack::object& object, const std::string& path);
AllocMeta read_alloc_meta(const msgpack::object& object, const std::string& path);
AllocInspect read_alloc_inspect(const msgpack::object& object, const std::string& path);
OfferInfo read_offer_info(const msgpack::object& object, const std::string& path);
PoolStatus read_pool_status(const msgpack::object& object, const std::string& path);
// {label: str | [str, ...]}: anything else, or an empty list, is invalid.
Constraints read_constraints(const msgpack::object& object, const std::string& path);
queue_entry read_queue_entry(const msgpack::object& object, const std::string& path);
quota_usage read_quota_usage(const msgpack::object& object, const std::string& path);
// {"kind", "message"}; an unknown kind is itself invalid.
pool_error read_pool_error(const msgpack::object& object, const std::string& path);

// A list whose elements are read by read_one(object, "path[i]").
template <class ReadOne>
auto read_list(const msgpack::object& object, const std::string& path, ReadOne read_one)
    -> std::vector<decltype(read_one(object, path))> {
  if (object.type != msgpack::type::ARRAY) fail(path, "not an array");
  std::vector<decltype(read_one(object, path))> out;
  out.reserve(object.via.array.size);
  for (uint32_t i = 0; i < object.via.array.size; ++i)
    out.push_back(read_one(object.via.array.ptr[i], path + "[" + std::to_string(i) + "]"));
  return out;
}

// A map with string keys, read field by field. A nil value counts as absent,
// so optional fields may be sent as nil. Unknown keys are simply never asked for.
class map_view {
 public:
  // Throws unless `object` is a map whose keys are all strings.
  map_view(const msgpack::object& object, std::string path);

  const std::string& path() const { return path_; }
  std::string path_of(std::string_view key) const { return join_path(path_, key); }

  // nullptr when absent or nil.
  const msgpack::object* find(std::string_view key) const;
  // decode_failure "<path>.<key>: missing" when absent or nil.
  const msgpack::object& require(std::string_view key) const;

  int64_t require_int(std::string_view key) const;
  std::optional<int64_t> optional_int(std::string_view key) const;
  double require_number(std::string_view key) const;
  std::string require_string(std::string_view key) const;
  std::optional<std::string> optional_string(std::string_view key) const;
  bool require_bool(std::string_view key) const;
  map_view require_map(std::string_view key) const;

  // Reads a field with one of the read_* functions: view.read(key, read_resources).
  template <class Read>
  auto read(std::string_view key, Read read_one) const {
    return read_one(require(key), path_of(key));
  }
  template <class Read>
  auto read_optional(std::string_view key, Read read_one) const
      -> std::optional<decltype(read_one(std::declval<const msgpack::object&>(), std::string()))> {
    const msgpack::object* value = find(key);
    if (value == nullptr) return std::nullopt;
    return read_one(*value, path_of(key));
  }

 private:
  const msgpack::object_kv* entries_;
  uint32_t size_;
  std::string path_;
};

// "v" is optional, but when present it must be 1 ("v: unsupported v 2").
void check_version(const map_view& view);

// A request's "op": one `from_string` names (it returns an optional op), or
// decode_failure naming the unknown op.
template <class FromString>
auto read_op(const map_view& view, FromString from_string) {
  std::string name = view.require_string("op");
  auto op = from_string(name);
  if (!op) fail("op", "unknown op \"" + name + "\"");
  return *op;
}

// Runs a throwing decode; decode_failure becomes its pool_error, any other
// exception (msgpack's own, bad_alloc) an `invalid` error.
template <class Decode>
auto guarded(Decode decode) -> outcome<decltype(decode())> {
  try {
    return decode();
  } catch (const decode_failure& failure) {
    return failure.error;
  } catch (const std::exception& e) {
    return make_pool_error(error_kind::invalid, std::string("body: ") + e.what());
  }
}

// A body's first buffer: most bodies are a few hundred bytes, and a buffer
// this small comes from malloc's per-thread cache, where msgpack's default
// 8 KiB made every free merge into the heap's top and consolidate it.
constexpr size_t first_body_buffer_bytes = 1000;

// Packs a body with `write(packer&)` and returns its bytes.
template <class Write>
std::string pack_body(Write write) {
  msgpack::sbuffer buffer(first_body_buffer_bytes);
  packer pk(&buffer);
  write(buffer, pk);
  return std::string(buffer.data(), buffer.size());
}

}  // namespace codec

// Whole bodies of one value type each (tests, state files, tools).
std::string encode_resources(const Resources& resources);
outcome<Resources> decode_resources(std::string_view body);
std::string encode_alloc_meta(const AllocMeta& meta);
outcome<AllocMeta> decode_alloc_meta(std::string_view body);
std::string encode_alloc_inspect(const AllocInspect& alloc);
outcome<AllocInspect> decode_alloc_inspect(std::string_view body);
std::string encode_offer_info(const OfferInfo& offer);
outcome<OfferInfo> decode_offer_info(std::string_view body);
std::string encode_pool_status(const PoolStatus& pool);
outcome<PoolStatus> decode_pool_status(std::string_view body);
// (pool_error travels inside replies only: see read_pool_error.)

}  // namespace poolbus

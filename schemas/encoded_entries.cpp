#include "schemas/encoded_entries.hpp"

#include "schemas/codec.hpp"

namespace poolbus {
namespace {

// msgpack-c's packer over a std::string, so an int lands in `out` with the
// very encoding codec's packer gives it (smallest form).
struct string_sink {
  std::string& out;
  void write(const char* bytes, size_t size) { out.append(bytes, size); }
};

// Every pushed pool's entry is a few hundred bytes at most: packing it into
// a fresh sbuffer (8 KiB initial) each time would cost more than the packing.
constexpr size_t entry_buffer_bytes = 512;

template <class Pack>
void append_packed(std::string& out, Pack pack) {
  msgpack::sbuffer buffer(entry_buffer_bytes);
  codec::packer pk(&buffer);
  pack(pk);
  out.append(buffer.data(), buffer.size());
}

}  // namespace

void append_offer_entry(std::string& out, const OfferInfo& offer) {
  append_packed(out, [&](codec::packer& pk) { codec::pack_offer_info(pk, offer); });
}

std::string pool_status_head(const PoolStatus& status) {
  // Encoded by the real encoder with last_seen_ms 0, whose value is the one
  // byte 0x00 at the very end: dropping it leaves the head.
  PoolStatus zero_seen = status;
  zero_seen.last_seen_ms = 0;
  std::string head;
  append_packed(head, [&](codec::packer& pk) { codec::pack_pool_status(pk, zero_seen); });
  head.pop_back();
  return head;
}

last_seen_slot append_pool_status_entry(std::string& out, std::string_view head, int64_t last_seen_ms) {
  out.append(head.data(), head.size());
  last_seen_slot slot{out.size(), 0};
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  pk.pack_int64(last_seen_ms);
  slot.width = out.size() - slot.offset;
  return slot;
}

bool patch_last_seen(std::string& bytes, const last_seen_slot& slot, int64_t last_seen_ms) {
  std::string value;
  string_sink sink{value};
  msgpack::packer<string_sink> pk(sink);
  pk.pack_int64(last_seen_ms);
  if (value.size() != slot.width || slot.offset + slot.width > bytes.size()) return false;
  bytes.replace(slot.offset, slot.width, value);
  return true;
}

namespace {

template <class T, class PackOne>
encoded_array encode_entries(const std::vector<T>& items, PackOne pack_one) {
  encoded_array array;
  array.count = static_cast<int64_t>(items.size());
  msgpack::sbuffer buffer;
  codec::packer pk(&buffer);
  for (const auto& item : items) pack_one(pk, item);
  array.bytes.assign(buffer.data(), buffer.size());
  return array;
}

}  // namespace

encoded_array encode_offer_entries(const std::vector<OfferInfo>& offers) {
  return encode_entries(offers, codec::pack_offer_info);
}

encoded_array encode_pool_status_entries(const std::vector<PoolStatus>& pools) {
  return encode_entries(pools, codec::pack_pool_status);
}

encoded_array encode_alloc_entries(const std::vector<AllocInspect>& allocs) {
  return encode_entries(allocs, codec::pack_alloc_inspect);
}

outcome<std::vector<AllocInspect>> decode_alloc_entries(const encoded_array& entries) {
  return codec::guarded([&] {
    if (entries.count < 0 || static_cast<uint64_t>(entries.count) > codec::max_reply_container_elements)
      codec::fail("allocs", "entry count " + std::to_string(entries.count) + " out of range");
    msgpack::sbuffer array;
    codec::packer pk(&array);
    pk.pack_array(static_cast<uint32_t>(entries.count));
    array.write(entries.bytes.data(), entries.bytes.size());
    auto handle = codec::unpack_body(std::string_view(array.data(), array.size()), codec::max_reply_bytes);
    return codec::read_list(handle.get(), "allocs", codec::read_alloc_inspect);
  });
}

void append_entries(encoded_array& into, encoded_array&& part) {
  if (into.count == 0 && into.bytes.empty()) {
    into = std::move(part);
    return;
  }
  into.count += part.count;
  into.bytes += part.bytes;
}

}  // namespace poolbus

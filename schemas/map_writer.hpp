// map_fields: the one writer of the MessagePack maps of named fields the codecs
// send. A map's fields are listed once, by one generic function list(out),
// which pack_fields runs twice: with a map_fields<false> that counts, then
// with a map_fields<true> that writes. Invariant: the map header's count is
// the number of fields then written, since both come from the same list
// (which must only read its message, so both runs list alike).
// No buffer, no allocation; the counting run packs nothing, and for a list
// of fixed fields it compiles down to a constant.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "schemas/codec.hpp"

namespace poolbus {
namespace codec {

template <bool writing>
class map_fields {
 public:
  // A field: its key, then the one value write(packer&) packs.
  template <class Write>
  void field(std::string_view key, Write&& write) {
    if constexpr (writing) {
      pack_string(*pk_, key);
      write(*pk_);
    } else {
      ++count_;
    }
  }

  void text(std::string_view key, std::string_view value) {
    field(key, [&](packer& pk) { pack_string(pk, value); });
  }
  void int64(std::string_view key, int64_t value) {
    field(key, [&](packer& pk) { pk.pack_int64(value); });
  }
  void uint64(std::string_view key, uint64_t value) {
    field(key, [&](packer& pk) { pk.pack_uint64(value); });
  }
  void boolean(std::string_view key, bool value) {
    field(key, [&](packer& pk) { value ? pk.pack_true() : pk.pack_false(); });
  }
  // A value already packed (an echoed id): see pack_raw.
  void raw(std::string_view key, std::string_view packed) {
    field(key, [&](packer& pk) { pack_raw(pk, packed); });
  }

 private:
  template <class List>
  friend void pack_fields(packer& pk, List&& list);

  map_fields() = default;
  explicit map_fields(packer& pk) : pk_(&pk) {}

  packer* pk_ = nullptr;  // the writing run's
  uint32_t count_ = 0;    // the counting run's
};

// Packs the map whose fields list(auto& out) lists, in its order.
template <class List>
void pack_fields(packer& pk, List&& list) {
  map_fields<false> counting;
  list(counting);
  pk.pack_map(counting.count_);
  map_fields<true> writing(pk);
  list(writing);
}

// A whole body that is one such map.
template <class List>
std::string map_body(List&& list) {
  return pack_body([&](msgpack::sbuffer&, packer& pk) { pack_fields(pk, list); });
}

}  // namespace codec
}  // namespace poolbus

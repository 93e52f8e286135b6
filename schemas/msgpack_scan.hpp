// msgpack_scan: the one hand-written reader of MessagePack bytes
// (msgpack_cursor), and the walks over it that find one field of a top-level
// map without decoding the rest (no object tree, no allocation).
// Invariant: never reads past the end of the bytes; anything malformed,
// truncated or nested deeper than the caller could ever send is "not found".
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace poolbus {

// A position in MessagePack bytes that reads the next object when it has the
// expected type, checking the bytes left before every read. A false return
// means "not that type, or truncated" and leaves the position anywhere: the
// caller then gives up on the bytes. The readers are inline: reply_lists
// reads ~100,000 values per reply with them.
class msgpack_cursor {
 public:
  enum class kind { none, nil, boolean, integer, floating, str, bin, array, map, ext };

  explicit msgpack_cursor(std::string_view bytes)
      : begin_(reinterpret_cast<const uint8_t*>(bytes.data())), at_(begin_), end_(begin_ + bytes.size()) {}

  std::size_t position() const { return static_cast<std::size_t>(at_ - begin_); }
  std::size_t left() const { return static_cast<std::size_t>(end_ - at_); }
  bool at_end() const { return at_ == end_; }
  // The bytes read since position `start`.
  std::string_view since(std::size_t start) const {
    return std::string_view(reinterpret_cast<const char*>(begin_ + start), position() - start);
  }

  // The kind of the next object, read from its type byte (none: at the end, or 0xc1).
  kind next() const;

  // Container headers. Every element takes at least one byte: a count larger
  // than the bytes left is refused as truncated.
  bool map_header(uint32_t& pairs) { return container_header(0x80, 0xde, pairs); }
  bool array_header(uint32_t& elements) { return container_header(0x90, 0xdc, elements); }

  bool str(std::string_view& text) {
    if (at_ == end_) return false;
    uint8_t type = *at_;
    uint64_t size = 0;
    if ((type & 0xe0) == 0xa0) {
      size = type & 0x1f;
      ++at_;
    } else if (type < 0xd9 || type > 0xdb || !sized(std::size_t{1} << (type - 0xd9), size)) {
      return false;  // str8, str16, str32 above
    }
    if (left() < size) return false;
    text = std::string_view(reinterpret_cast<const char*>(at_), static_cast<std::size_t>(size));
    at_ += size;
    return true;
  }

  // An integer that fits int64 (not a float).
  bool int64(int64_t& value) {
    if (at_ == end_) return false;
    uint8_t type = *at_;
    if (type <= 0x7f || type >= 0xe0) {  // fixints
      value = static_cast<int8_t>(type);
      ++at_;
      return true;
    }
    uint64_t raw = 0;
    if (type < 0xcc || type > 0xd3 || !sized(std::size_t{1} << ((type - 0xcc) & 3), raw)) return false;
    switch (type) {
      case 0xcf:
        if (raw > static_cast<uint64_t>(INT64_MAX)) return false;
        [[fallthrough]];
      case 0xcc:
      case 0xcd:
      case 0xce: value = static_cast<int64_t>(raw); return true;
      case 0xd0: value = static_cast<int8_t>(raw); return true;
      case 0xd1: value = static_cast<int16_t>(raw); return true;
      case 0xd2: value = static_cast<int32_t>(raw); return true;
      default: value = static_cast<int64_t>(raw); return true;
    }
  }

  // A float64 (0xcb) only: the one form codec::pack_float64 writes.
  bool float64(double& value) {
    if (left() < 9 || *at_ != 0xcb) return false;
    uint64_t bits;
    std::memcpy(&bits, at_ + 1, sizeof bits);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    bits = __builtin_bswap64(bits);
#endif
    std::memcpy(&value, &bits, sizeof value);
    at_ += 9;
    return true;
  }

  bool boolean(bool& value) {
    if (at_ == end_ || (*at_ != 0xc2 && *at_ != 0xc3)) return false;
    value = *at_++ == 0xc3;
    return true;
  }

  // Skips `objects` whole objects of any kind, iteratively (a container adds
  // its elements to the count), so no input can recurse deep.
  bool skip(uint64_t objects);

  // Whether the next bytes are exactly `object`'s, skipping them if so.
  // MessagePack is prefix-free: an object's bytes fix where it ends, so the
  // next object then *is* one equal to `object`.
  bool skip_same(std::string_view object) {
    if (object.empty() || left() < object.size() || std::memcmp(at_, object.data(), object.size()) != 0) return false;
    at_ += object.size();
    return true;
  }

 private:
  // A big-endian unsigned of `width` bytes after the type byte; skips both.
  bool sized(std::size_t width, uint64_t& out) {
    if (left() < 1 + width) return false;
    out = 0;
    for (std::size_t i = 1; i <= width; ++i) out = (out << 8) | at_[i];
    at_ += 1 + width;
    return true;
  }

  bool advance(uint64_t count) {
    if (left() < count) return false;
    at_ += count;
    return true;
  }

  // A fix form (`fix` | count < 16), or `type16`/`type16 + 1` with a 16/32-bit count.
  bool container_header(uint8_t fix, uint8_t type16, uint32_t& count) {
    if (at_ == end_) return false;
    uint8_t type = *at_;
    uint64_t size = 0;
    if ((type & 0xf0) == fix) {
      size = type & 0x0f;
      ++at_;
    } else if ((type != type16 && type != type16 + 1) || !sized(type == type16 ? 2 : 4, size)) {
      return false;
    }
    count = static_cast<uint32_t>(size);
    return size <= left();
  }

  const uint8_t* begin_;
  const uint8_t* at_;
  const uint8_t* end_;
};

// Where an integer value sits in the bytes: its type byte and payload.
struct int_field_span {
  std::size_t offset = 0;  // of the value's first (type) byte
  std::size_t length = 0;  // type byte included
  int64_t value = 0;
};

// The integer value of `key` in the map that makes up all of `bytes`; nullopt
// when bytes are not exactly one well-formed map, the key is missing, or its
// value is not an integer that fits int64.
std::optional<int_field_span> find_int_field(std::string_view bytes, std::string_view key);

// Where an array value sits in the bytes: its header and its elements.
struct array_field_span {
  std::size_t header_offset = 0;    // of the array's first (type) byte
  std::size_t elements_offset = 0;  // of its first element (header_offset + header size)
  std::size_t elements_length = 0;  // the elements' bytes, back to back
  uint64_t count = 0;
};

// The array value of `key` in the map that makes up all of `bytes`, as
// find_int_field finds an integer: nullopt when bytes are not exactly one
// well-formed map, the key is missing, or its value is not an array (whose
// elements are then well-formed MessagePack objects, skipped, not decoded).
std::optional<array_field_span> find_array_field(std::string_view bytes, std::string_view key);

// The integer encoded at bytes[offset] (its type byte first), as
// find_int_field reads it; nullopt when it is not a complete int64 integer.
std::optional<int64_t> read_int_at(std::string_view bytes, std::size_t offset);

}  // namespace poolbus

#include "schemas/msgpack_scan.hpp"

#include <cstring>

namespace poolbus {
namespace {

class cursor {
 public:
  explicit cursor(std::string_view bytes) : bytes_(bytes) {}

  std::size_t position() const { return at_; }
  bool at_end() const { return at_ == bytes_.size(); }
  std::size_t left() const { return bytes_.size() - at_; }

  bool byte(uint8_t& out) {
    if (left() < 1) return false;
    out = static_cast<uint8_t>(bytes_[at_++]);
    return true;
  }

  // A big-endian unsigned of `width` bytes.
  bool big_endian(std::size_t width, uint64_t& out) {
    if (left() < width) return false;
    out = 0;
    for (std::size_t i = 0; i < width; ++i) out = (out << 8) | static_cast<uint8_t>(bytes_[at_ + i]);
    at_ += width;
    return true;
  }

  bool skip(uint64_t count) {
    if (left() < count) return false;
    at_ += static_cast<std::size_t>(count);
    return true;
  }

  std::string_view view(std::size_t count) const { return bytes_.substr(at_, count); }

 private:
  std::string_view bytes_;
  std::size_t at_ = 0;
};

// Skips `count` whole objects, iteratively (a container adds its elements to
// the count), so no input can recurse deep.
bool skip_objects(cursor& in, uint64_t count) {
  while (count > 0) {
    // Each object takes at least one byte: more pending than bytes is malformed.
    if (count > in.left()) return false;
    --count;
    uint8_t type = 0;
    if (!in.byte(type)) return false;
    uint64_t size = 0;
    if (type <= 0x7f || type >= 0xe0) continue;                         // fixint
    if (type <= 0x8f) { count += 2ull * (type & 0x0f); continue; }      // fixmap
    if (type <= 0x9f) { count += type & 0x0f; continue; }               // fixarray
    if (type <= 0xbf) { if (!in.skip(type & 0x1f)) return false; continue; }  // fixstr
    switch (type) {
      case 0xc0: case 0xc2: case 0xc3: continue;                       // nil, false, true
      case 0xc4: case 0xd9: if (!in.big_endian(1, size) || !in.skip(size)) return false; continue;
      case 0xc5: case 0xda: if (!in.big_endian(2, size) || !in.skip(size)) return false; continue;
      case 0xc6: case 0xdb: if (!in.big_endian(4, size) || !in.skip(size)) return false; continue;
      case 0xc7: if (!in.big_endian(1, size) || !in.skip(size + 1)) return false; continue;  // ext8
      case 0xc8: if (!in.big_endian(2, size) || !in.skip(size + 1)) return false; continue;
      case 0xc9: if (!in.big_endian(4, size) || !in.skip(size + 1)) return false; continue;
      case 0xca: case 0xce: case 0xd2: if (!in.skip(4)) return false; continue;
      case 0xcb: case 0xcf: case 0xd3: if (!in.skip(8)) return false; continue;
      case 0xcc: case 0xd0: if (!in.skip(1)) return false; continue;
      case 0xcd: case 0xd1: if (!in.skip(2)) return false; continue;
      case 0xd4: if (!in.skip(2)) return false; continue;                // fixext 1..16
      case 0xd5: if (!in.skip(3)) return false; continue;
      case 0xd6: if (!in.skip(5)) return false; continue;
      case 0xd7: if (!in.skip(9)) return false; continue;
      case 0xd8: if (!in.skip(17)) return false; continue;
      case 0xdc: if (!in.big_endian(2, size)) return false; count += size; continue;
      case 0xdd: if (!in.big_endian(4, size)) return false; count += size; continue;
      case 0xde: if (!in.big_endian(2, size)) return false; count += 2 * size; continue;
      case 0xdf: if (!in.big_endian(4, size)) return false; count += 2 * size; continue;
      default: return false;                                             // 0xc1: never used
    }
  }
  return true;
}

// A string object's bytes, or nullopt when the next object is not a string.
std::optional<std::string_view> read_str(cursor& in) {
  uint8_t type = 0;
  if (!in.byte(type)) return std::nullopt;
  uint64_t size = 0;
  if (type >= 0xa0 && type <= 0xbf)
    size = type & 0x1f;
  else if (type == 0xd9 ? !in.big_endian(1, size) : type == 0xda ? !in.big_endian(2, size)
                                                  : type == 0xdb ? !in.big_endian(4, size)
                                                                 : true)
    return std::nullopt;
  if (in.left() < size) return std::nullopt;
  auto text = in.view(static_cast<std::size_t>(size));
  in.skip(size);
  return text;
}

std::optional<int64_t> read_int(cursor& in) {
  uint8_t type = 0;
  if (!in.byte(type)) return std::nullopt;
  if (type <= 0x7f) return static_cast<int64_t>(type);
  if (type >= 0xe0) return static_cast<int64_t>(static_cast<int8_t>(type));
  uint64_t raw = 0;
  switch (type) {
    case 0xcc: if (!in.big_endian(1, raw)) return std::nullopt; return static_cast<int64_t>(raw);
    case 0xcd: if (!in.big_endian(2, raw)) return std::nullopt; return static_cast<int64_t>(raw);
    case 0xce: if (!in.big_endian(4, raw)) return std::nullopt; return static_cast<int64_t>(raw);
    case 0xcf:
      if (!in.big_endian(8, raw) || raw > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<int64_t>(raw);
    case 0xd0: if (!in.big_endian(1, raw)) return std::nullopt; return static_cast<int8_t>(raw);
    case 0xd1: if (!in.big_endian(2, raw)) return std::nullopt; return static_cast<int16_t>(raw);
    case 0xd2: if (!in.big_endian(4, raw)) return std::nullopt; return static_cast<int32_t>(raw);
    case 0xd3: if (!in.big_endian(8, raw)) return std::nullopt; return static_cast<int64_t>(raw);
    default: return std::nullopt;
  }
}

bool read_map_size(cursor& in, uint64_t& pairs) {
  uint8_t type = 0;
  if (!in.byte(type)) return false;
  if (type >= 0x80 && type <= 0x8f) {
    pairs = type & 0x0f;
    return true;
  }
  if (type == 0xde) return in.big_endian(2, pairs);
  if (type == 0xdf) return in.big_endian(4, pairs);
  return false;
}

bool read_array_size(cursor& in, uint64_t& elements) {
  uint8_t type = 0;
  if (!in.byte(type)) return false;
  if (type >= 0x90 && type <= 0x9f) {
    elements = type & 0x0f;
    return true;
  }
  if (type == 0xdc) return in.big_endian(2, elements);
  if (type == 0xdd) return in.big_endian(4, elements);
  return false;
}

// Walks the one top-level map of `bytes`; `at_key(in)` reads the first
// value named `key` (false: not what is wanted), every other value is skipped.
template <class AtKey>
bool walk_map(std::string_view bytes, std::string_view key, AtKey at_key) {
  cursor in(bytes);
  uint64_t pairs = 0;
  if (!read_map_size(in, pairs)) return false;
  bool found = false;
  for (uint64_t i = 0; i < pairs; ++i) {
    auto name = read_str(in);
    if (!name) return false;  // our maps have string keys only
    if (*name == key && !found) {
      if (!at_key(in)) return false;
      found = true;
    } else if (!skip_objects(in, 1)) {
      return false;
    }
  }
  return found && in.at_end();  // trailing bytes: not one map
}

}  // namespace

std::optional<array_field_span> find_array_field(std::string_view bytes, std::string_view key) {
  array_field_span span;
  bool ok = walk_map(bytes, key, [&](cursor& in) {
    span.header_offset = in.position();
    if (!read_array_size(in, span.count)) return false;
    span.elements_offset = in.position();
    if (!skip_objects(in, span.count)) return false;
    span.elements_length = in.position() - span.elements_offset;
    return true;
  });
  if (!ok) return std::nullopt;
  return span;
}

std::optional<int_field_span> find_int_field(std::string_view bytes, std::string_view key) {
  cursor in(bytes);
  uint64_t pairs = 0;
  if (!read_map_size(in, pairs)) return std::nullopt;
  std::optional<int_field_span> found;
  for (uint64_t i = 0; i < pairs; ++i) {
    auto name = read_str(in);
    if (!name) return std::nullopt;  // our maps have string keys only
    if (*name == key && !found) {
      std::size_t start = in.position();
      auto value = read_int(in);
      if (!value) return std::nullopt;
      found = int_field_span{start, in.position() - start, *value};
    } else if (!skip_objects(in, 1)) {
      return std::nullopt;
    }
  }
  if (!in.at_end()) return std::nullopt;  // trailing bytes: not one map
  return found;
}

std::optional<int64_t> read_int_at(std::string_view bytes, std::size_t offset) {
  if (offset >= bytes.size()) return std::nullopt;
  cursor in(bytes.substr(offset));
  return read_int(in);
}

}  // namespace poolbus

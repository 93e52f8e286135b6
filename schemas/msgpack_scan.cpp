#include "schemas/msgpack_scan.hpp"

namespace poolbus {

msgpack_cursor::kind msgpack_cursor::next() const {
  if (at_ == end_) return kind::none;
  uint8_t type = *at_;
  if (type <= 0x7f || type >= 0xe0) return kind::integer;  // fixints
  if (type <= 0x8f) return kind::map;
  if (type <= 0x9f) return kind::array;
  if (type <= 0xbf) return kind::str;
  switch (type) {
    case 0xc0: return kind::nil;
    case 0xc2:
    case 0xc3: return kind::boolean;
    case 0xc4:
    case 0xc5:
    case 0xc6: return kind::bin;
    case 0xca:
    case 0xcb: return kind::floating;
    case 0xd9:
    case 0xda:
    case 0xdb: return kind::str;
    case 0xdc:
    case 0xdd: return kind::array;
    case 0xde:
    case 0xdf: return kind::map;
    default: break;
  }
  if (type >= 0xcc && type <= 0xd3) return kind::integer;
  if ((type >= 0xc7 && type <= 0xc9) || (type >= 0xd4 && type <= 0xd8)) return kind::ext;
  return kind::none;  // 0xc1: never used
}

bool msgpack_cursor::skip(uint64_t objects) {
  while (objects > 0) {
    // Each object takes at least one byte: more pending than bytes is malformed.
    if (objects > left()) return false;
    --objects;
    uint8_t type = *at_;
    uint64_t size = 0;
    if (type <= 0x7f || type >= 0xe0) {
      ++at_;
      continue;
    }  // fixint
    if (type <= 0x8f) {
      ++at_;
      objects += 2ull * (type & 0x0f);
      continue;
    }  // fixmap
    if (type <= 0x9f) {
      ++at_;
      objects += type & 0x0f;
      continue;
    }  // fixarray
    if (type <= 0xbf) {
      if (!advance(1 + (type & 0x1f))) return false;
      continue;
    }  // fixstr
    switch (type) {
      case 0xc0:
      case 0xc2:
      case 0xc3: ++at_; continue;  // nil, false, true
      case 0xc4:
      case 0xd9:
        if (!sized(1, size) || !advance(size)) return false;
        continue;
      case 0xc5:
      case 0xda:
        if (!sized(2, size) || !advance(size)) return false;
        continue;
      case 0xc6:
      case 0xdb:
        if (!sized(4, size) || !advance(size)) return false;
        continue;
      case 0xc7:
        if (!sized(1, size) || !advance(size + 1)) return false;
        continue;  // ext8
      case 0xc8:
        if (!sized(2, size) || !advance(size + 1)) return false;
        continue;
      case 0xc9:
        if (!sized(4, size) || !advance(size + 1)) return false;
        continue;
      case 0xca:
      case 0xce:
      case 0xd2:
        if (!advance(1 + 4)) return false;
        continue;
      case 0xcb:
      case 0xcf:
      case 0xd3:
        if (!advance(1 + 8)) return false;
        continue;
      case 0xcc:
      case 0xd0:
        if (!advance(1 + 1)) return false;
        continue;
      case 0xcd:
      case 0xd1:
        if (!advance(1 + 2)) return false;
        continue;
      case 0xd4:
        if (!advance(1 + 2)) return false;
        continue;  // fixext 1..16
      case 0xd5:
        if (!advance(1 + 3)) return false;
        continue;
      case 0xd6:
        if (!advance(1 + 5)) return false;
        continue;
      case 0xd7:
        if (!advance(1 + 9)) return false;
        continue;
      case 0xd8:
        if (!advance(1 + 17)) return false;
        continue;
      case 0xdc:
        if (!sized(2, size)) return false;
        objects += size;
        continue;
      case 0xdd:
        if (!sized(4, size)) return false;
        objects += size;
        continue;
      case 0xde:
        if (!sized(2, size)) return false;
        objects += 2 * size;
        continue;
      case 0xdf:
        if (!sized(4, size)) return false;
        objects += 2 * size;
        continue;
      default: return false;  // 0xc1: never used
    }
  }
  return true;
}

namespace {

// Walks the one top-level map of `bytes`; at_key(in, span) reads the first
// value named `key` into `span` (false: not what is wanted), every other
// value is skipped.
template <class Span, class AtKey>
std::optional<Span> find_field(std::string_view bytes, std::string_view key, AtKey at_key) {
  msgpack_cursor in(bytes);
  uint32_t pairs = 0;
  if (!in.map_header(pairs)) return std::nullopt;
  std::optional<Span> found;
  for (uint32_t i = 0; i < pairs; ++i) {
    std::string_view name;
    if (!in.str(name)) return std::nullopt;  // our maps have string keys only
    if (name == key && !found) {
      if (!at_key(in, found.emplace())) return std::nullopt;
    } else if (!in.skip(1)) {
      return std::nullopt;
    }
  }
  if (!in.at_end()) return std::nullopt;  // trailing bytes: not one map
  return found;
}

}  // namespace

std::optional<array_field_span> find_array_field(std::string_view bytes, std::string_view key) {
  return find_field<array_field_span>(bytes, key, [](msgpack_cursor& in, array_field_span& span) {
    span.header_offset = in.position();
    uint32_t count = 0;
    if (!in.array_header(count)) return false;
    span.count = count;
    span.elements_offset = in.position();
    if (!in.skip(span.count)) return false;
    span.elements_length = in.position() - span.elements_offset;
    return true;
  });
}

std::optional<int_field_span> find_int_field(std::string_view bytes, std::string_view key) {
  return find_field<int_field_span>(bytes, key, [](msgpack_cursor& in, int_field_span& span) {
    span.offset = in.position();
    if (!in.int64(span.value)) return false;
    span.length = in.position() - span.offset;
    return true;
  });
}

std::optional<int64_t> read_int_at(std::string_view bytes, std::size_t offset) {
  if (offset >= bytes.size()) return std::nullopt;
  msgpack_cursor in(bytes.substr(offset));
  int64_t value = 0;
  if (!in.int64(value)) return std::nullopt;
  return value;
}

}  // namespace poolbus

#include "schemas/reply_lists.hpp"

#include <msgpack.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "schemas/codec.hpp"

namespace poolbus {
namespace {

using byte = unsigned char;

// Reads the next object when it has one expected shape. Every read checks
// the bytes left first; a false return means "not that shape" (or truncated)
// and leaves the cursor anywhere, since the caller then gives up.
class reply_cursor {
 public:
  explicit reply_cursor(std::string_view bytes)
      : at_(reinterpret_cast<const byte*>(bytes.data())), end_(at_ + bytes.size()) {}

  bool at_end() const { return at_ == end_; }
  size_t left() const { return static_cast<size_t>(end_ - at_); }
  const byte* at() const { return at_; }

  // Whether the next bytes are exactly `object`'s, skipping them if so.
  // MessagePack is prefix-free: an object's bytes fix where it ends, so the
  // next object then *is* one equal to `object`.
  bool skip_same(std::string_view object) {
    if (object.empty() || left() < object.size() || std::memcmp(at_, object.data(), object.size()) != 0)
      return false;
    at_ += object.size();
    return true;
  }

  // A map or array header within unpack_body's container limit for replies.
  bool map_header(uint32_t& pairs) { return container_header(0x80, 0xde, pairs); }
  bool array_header(uint32_t& elements) { return container_header(0x90, 0xdc, elements); }

  // A str within unpack_body's string limit.
  bool str(std::string_view& text) {
    if (left() < 1) return false;
    byte type = *at_;
    size_t size = 0;
    if ((type & 0xe0) == 0xa0) {
      size = type & 0x1f;
      at_ += 1;
    } else if (type == 0xd9 || type == 0xda || type == 0xdb) {
      size_t width = type == 0xd9 ? 1 : type == 0xda ? 2 : 4;
      if (left() < 1 + width) return false;
      size = static_cast<size_t>(big_endian(at_ + 1, width));
      at_ += 1 + width;
    } else {
      return false;
    }
    if (size > codec::max_string_bytes || left() < size) return false;
    text = std::string_view(reinterpret_cast<const char*>(at_), size);
    at_ += size;
    return true;
  }

  // An integer that fits int64, as codec::read_int takes it (not a float).
  bool int64(int64_t& value) {
    if (left() < 1) return false;
    byte type = *at_;
    if (type <= 0x7f || type >= 0xe0) {
      value = static_cast<int8_t>(type);
      at_ += 1;
      return true;
    }
    size_t width = 0;
    switch (type) {
      case 0xcc: case 0xd0: width = 1; break;
      case 0xcd: case 0xd1: width = 2; break;
      case 0xce: case 0xd2: width = 4; break;
      case 0xcf: case 0xd3: width = 8; break;
      default: return false;
    }
    if (left() < 1 + width) return false;
    uint64_t raw = big_endian(at_ + 1, width);
    at_ += 1 + width;
    if (type <= 0xcf) {  // unsigned
      if (raw > static_cast<uint64_t>(INT64_MAX)) return false;
      value = static_cast<int64_t>(raw);
    } else if (width == 1) {
      value = static_cast<int8_t>(raw);
    } else if (width == 2) {
      value = static_cast<int16_t>(raw);
    } else if (width == 4) {
      value = static_cast<int32_t>(raw);
    } else {
      value = static_cast<int64_t>(raw);
    }
    return true;
  }

  // A float64 (0xcb), the only form pack_resources writes.
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

  // Skips one scalar (nil, bool, int, float, str): what a request id may be.
  bool scalar() {
    if (left() < 1) return false;
    byte type = *at_;
    if (type <= 0x7f || type >= 0xe0 || type == 0xc0 || type == 0xc2 || type == 0xc3) {
      at_ += 1;
      return true;
    }
    std::string_view text;
    if ((type & 0xe0) == 0xa0 || type == 0xd9 || type == 0xda || type == 0xdb) return str(text);
    int64_t whole = 0;
    if ((type >= 0xcc && type <= 0xce) || (type >= 0xd0 && type <= 0xd3)) return int64(whole);
    size_t width = type == 0xcf || type == 0xcb ? 8 : type == 0xca ? 4 : 0;
    if (width == 0 || left() < 1 + width) return false;
    at_ += 1 + width;  // uint64 (any value), float32, float64
    return true;
  }

 private:
  static uint64_t big_endian(const byte* from, size_t width) {
    uint64_t out = 0;
    for (size_t i = 0; i < width; ++i) out = (out << 8) | from[i];
    return out;
  }

  bool container_header(byte fix, byte type16, uint32_t& count) {
    if (left() < 1) return false;
    byte type = *at_;
    if ((type & 0xf0) == fix) {
      count = type & 0x0f;
      at_ += 1;
    } else if (type == type16 || type == type16 + 1) {
      size_t width = type == type16 ? 2 : 4;
      if (left() < 1 + width) return false;
      count = static_cast<uint32_t>(big_endian(at_ + 1, width));
      at_ += 1 + width;
    } else {
      return false;
    }
    // Every element takes at least one byte: more than are left is truncated.
    return count <= codec::container_limit(codec::max_reply_bytes) && count <= left();
  }

  const byte* at_;
  const byte* end_;
};

// A key compared with a literal of known length: an inlined compare, not a
// memcmp call per key (there are ~15 keys per pool entry).
template <size_t N>
bool is(std::string_view text, const char (&literal)[N]) {
  return text.size() == N - 1 && std::memcmp(text.data(), literal, N - 1) == 0;
}

// Each key at most once, each value of the one type the encoder writes.
class list_reader {
 public:
  list_reader(reply_cursor& in, bool build) : in_(in), build_(build) {}

  // The last Resources map read for one field, by its bytes. Pools often
  // repeat the previous pool's totals (and idle ones their availability):
  // copying a read map costs half of reading one.
  struct resources_memo {
    std::string_view bytes;
    const Resources* value = nullptr;  // in the output list (reserved, so it stays put); null when not building
  };

  // A Resources map: non-empty string names, float64 values that
  // codec::read_resources accepts (finite, >= 0, <= max_value), converted as
  // it converts them (Resources::set; a repeated name keeps its last value).
  bool resources(Resources& out, resources_memo& memo) {
    if (in_.skip_same(memo.bytes)) {
      if (build_) out = *memo.value;
      return true;
    }
    const byte* start = in_.at();
    if (!resources(out)) return false;
    memo.bytes = std::string_view(reinterpret_cast<const char*>(start), static_cast<size_t>(in_.at() - start));
    memo.value = build_ ? &out : nullptr;
    return true;
  }

  bool resources(Resources& out) {
    uint32_t pairs = 0;
    if (!in_.map_header(pairs)) return false;
    for (uint32_t i = 0; i < pairs; ++i) {
      std::string_view name;
      double value = 0;
      if (!in_.str(name) || name.empty() || !in_.float64(value)) return false;
      if (!std::isfinite(value) || value < 0 || value > Resources::max_value) return false;
      if (build_) out.set(std::string(name), value);
    }
    return true;
  }

  bool text(std::string& out) {
    std::string_view view;
    if (!in_.str(view)) return false;
    if (build_) out.assign(view.data(), view.size());
    return true;
  }

  // A map of exactly the fields `read_field` knows, each once, in any order.
  // read_field(key, read) reads a known key's value (setting `read`) and
  // returns its bit; an unknown key returns 0.
  template <class ReadField>
  bool exact_fields(unsigned all_fields, ReadField read_field) {
    uint32_t pairs = 0;
    if (!in_.map_header(pairs)) return false;
    unsigned seen = 0;
    for (uint32_t i = 0; i < pairs; ++i) {
      std::string_view key;
      if (!in_.str(key)) return false;
      bool read = false;
      unsigned field = read_field(key, read);
      if (!read || (seen & field) != 0) return false;  // unknown, wrong type or repeated
      seen |= field;
    }
    return seen == all_fields;
  }

  // {"id", "resources", "available", "allocs", "last_seen_ms"}, any order.
  bool pool_status(PoolStatus& pool) {
    return exact_fields(31, [&](std::string_view key, bool& read) -> unsigned {
      if (is(key, "id")) { read = text(pool.id); return 1; }
      if (is(key, "resources")) { read = resources(pool.resources, totals_memo_); return 2; }
      if (is(key, "available")) { read = resources(pool.available, available_memo_); return 4; }
      if (is(key, "allocs")) { read = in_.int64(pool.allocs); return 8; }
      if (is(key, "last_seen_ms")) { read = in_.int64(pool.last_seen_ms); return 16; }
      return 0;
    });
  }

  // {"id", "pool", "available"}, any order.
  bool offer_info(OfferInfo& offer) {
    return exact_fields(7, [&](std::string_view key, bool& read) -> unsigned {
      if (is(key, "id")) { read = text(offer.id); return 1; }
      if (is(key, "pool")) { read = text(offer.pool); return 2; }
      if (is(key, "available")) { read = resources(offer.available, available_memo_); return 4; }
      return 0;
    });
  }

  template <class T, class ReadOne>
  bool list(std::vector<T>& out, ReadOne read_one) {
    uint32_t count = 0;
    if (!in_.array_header(count)) return false;
    // Entries take 20+ bytes: a forged count reserves no more than the body
    // could hold, and the list never reallocates (resources_memo points into it).
    if (count > in_.left() / 16) return false;
    if (!build_) {
      T scratch;  // read into and dropped: only the shape is checked
      for (uint32_t i = 0; i < count; ++i)
        if (!(this->*read_one)(scratch)) return false;
      return true;
    }
    out.reserve(out.size() + count);
    // The memos point into the list being read: a second list (or a repeated
    // key, refused only after it is read) may have reallocated the first.
    totals_memo_ = {};
    available_memo_ = {};
    for (uint32_t i = 0; i < count; ++i) {
      out.emplace_back();
      if (!(this->*read_one)(out.back())) return false;
    }
    return true;
  }

 private:
  reply_cursor& in_;
  bool build_;
  resources_memo totals_memo_;
  resources_memo available_memo_;
};

// Reads the whole body as a list reply; false when it is not exactly that.
bool read_reply(std::string_view body, bool build, api_reply& reply) {
  if (body.empty() || body.size() > codec::max_reply_bytes) return false;
  reply_cursor in(body);
  list_reader read(in, build);
  uint32_t pairs = 0;
  if (!in.map_header(pairs)) return false;
  enum : unsigned { v = 1, id = 2, ok = 4, pools = 8, offers = 16 };
  unsigned seen = 0;
  const byte* id_start = nullptr;
  const byte* id_end = nullptr;
  for (uint32_t i = 0; i < pairs; ++i) {
    std::string_view key;
    if (!in.str(key)) return false;
    unsigned field = 0;
    bool read_ok = false;
    if (is(key, "v")) {
      int64_t version = 0;
      field = v, read_ok = in.int64(version) && version == 1;
    } else if (is(key, "id")) {
      id_start = in.at();
      field = id, read_ok = in.scalar();
      id_end = in.at();
    } else if (is(key, "ok")) {
      // "ok": false is an error reply: the strict path reads its error.
      field = ok, read_ok = in.left() >= 1 && *in.at() == 0xc3 && in.scalar();
    } else if (is(key, "pools")) {
      field = pools, read_ok = read.list(reply.pools, &list_reader::pool_status);
    } else if (is(key, "offers")) {
      field = offers, read_ok = read.list(reply.offers, &list_reader::offer_info);
    }
    if (!read_ok || (seen & field) != 0) return false;
    seen |= field;
  }
  if (!in.at_end() || (seen & ok) == 0 || (seen & (pools | offers)) == 0) return false;
  if (id_start != nullptr) {
    // Re-packed as the strict path echoes it (a uint32 5 becomes fixint 5):
    // one scalar, well within every unpack limit.
    auto handle = msgpack::unpack(reinterpret_cast<const char*>(id_start), static_cast<size_t>(id_end - id_start));
    reply.id_raw = codec::repack(handle.get());
  } else {
    reply.id_raw = nil_id_raw;
  }
  return true;
}

}  // namespace

std::optional<api_reply> read_list_reply(std::string_view body) {
  api_reply reply;
  if (!read_reply(body, true, reply)) return std::nullopt;
  return reply;
}

std::optional<std::string> list_reply_id(std::string_view body) {
  api_reply reply;
  if (!read_reply(body, false, reply)) return std::nullopt;
  return std::move(reply.id_raw);
}

}  // namespace poolbus

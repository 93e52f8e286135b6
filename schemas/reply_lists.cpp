#include "schemas/reply_lists.hpp"

#include <msgpack.hpp>

#include <cstdint>
#include <cstring>

#include "schemas/codec.hpp"
#include "schemas/msgpack_scan.hpp"

namespace poolbus {
namespace {

// Reads within unpack_body's limits for a reply: what is longer or larger
// there is refused, so it is refused here too.
inline bool str(msgpack_cursor& in, std::string_view& text) {
  return in.str(text) && text.size() <= codec::max_string_bytes;
}
inline bool within_limit(uint32_t count) { return count <= codec::container_limit(codec::max_reply_bytes); }
inline bool map_header(msgpack_cursor& in, uint32_t& pairs) { return in.map_header(pairs) && within_limit(pairs); }
inline bool array_header(msgpack_cursor& in, uint32_t& elements) {
  return in.array_header(elements) && within_limit(elements);
}

// One scalar (nil, bool, number, str), skipped: what a request id may be.
bool scalar(msgpack_cursor& in) {
  std::string_view text;
  switch (in.next()) {
    case msgpack_cursor::kind::nil:
    case msgpack_cursor::kind::boolean:
    case msgpack_cursor::kind::integer:
    case msgpack_cursor::kind::floating: return in.skip(1);
    case msgpack_cursor::kind::str: return str(in, text);
    default: return false;
  }
}

// A key compared with a literal of known length: an inlined compare, not a
// memcmp call per key (there are ~15 keys per pool entry).
template <size_t N>
bool is(std::string_view text, const char (&literal)[N]) {
  return text.size() == N - 1 && std::memcmp(text.data(), literal, N - 1) == 0;
}

// Each key at most once, each value of the one type the encoder writes.
class list_reader {
 public:
  list_reader(msgpack_cursor& in, bool build) : in_(in), build_(build) {}

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
    size_t start = in_.position();
    if (!resources(out)) return false;
    memo.bytes = in_.since(start);
    memo.value = build_ ? &out : nullptr;
    return true;
  }

  // Out of line, so that the memo check above inlines into each entry reader.
  [[gnu::noinline]] bool resources(Resources& out) {
    uint32_t pairs = 0;
    if (!map_header(in_, pairs)) return false;
    for (uint32_t i = 0; i < pairs; ++i) {
      std::string_view name;
      double value = 0;
      if (!str(in_, name) || name.empty() || !in_.float64(value)) return false;
      if (Resources::value_problem(value)) return false;
      if (build_) out.set(std::string(name), value);
    }
    return true;
  }

  bool text(std::string& out) {
    std::string_view view;
    if (!str(in_, view)) return false;
    if (build_) out.assign(view.data(), view.size());
    return true;
  }

  // A map of only the fields `read_field` knows, each once, in any order,
  // with every one of `required_fields` among them. read_field(key, read)
  // reads a known key's value (setting `read`) and returns its bit; an
  // unknown key returns 0.
  template <class ReadField>
  bool exact_fields(unsigned required_fields, ReadField read_field) {
    uint32_t pairs = 0;
    if (!map_header(in_, pairs)) return false;
    unsigned seen = 0;
    for (uint32_t i = 0; i < pairs; ++i) {
      std::string_view key;
      if (!str(in_, key)) return false;
      bool read = false;
      unsigned field = read_field(key, read);
      if (!read || (seen & field) != 0) return false;  // unknown, wrong type or repeated
      seen |= field;
    }
    return (seen & required_fields) == required_fields;
  }

  // {str: str}, as codec::pack_labels writes it.
  bool labels(Labels& out) {
    uint32_t pairs = 0;
    if (!map_header(in_, pairs)) return false;
    for (uint32_t i = 0; i < pairs; ++i) {
      std::string_view key, value;
      if (!str(in_, key) || !str(in_, value)) return false;
      if (build_) out[std::string(key)] = std::string(value);
    }
    return true;
  }

  // {"id", "resources", "available", "allocs", "last_seen_ms"} and the
  // optional "labels" and "draining" (a first-wave broker has none), any order.
  bool pool_status(PoolStatus& pool) {
    return exact_fields(31, [&](std::string_view key, bool& read) -> unsigned {
      if (is(key, "id")) {
        read = text(pool.id);
        return 1;
      }
      if (is(key, "resources")) {
        read = resources(pool.resources, totals_memo_);
        return 2;
      }
      if (is(key, "available")) {
        read = resources(pool.available, available_memo_);
        return 4;
      }
      if (is(key, "allocs")) {
        read = in_.int64(pool.allocs);
        return 8;
      }
      if (is(key, "last_seen_ms")) {
        read = in_.int64(pool.last_seen_ms);
        return 16;
      }
      if (is(key, "labels")) {
        read = labels(pool.labels);
        return 32;
      }
      if (is(key, "draining")) {
        read = in_.boolean(pool.draining);
        return 64;
      }
      return 0;
    });
  }

  // {"id", "pool", "available"}, any order.
  bool offer_info(OfferInfo& offer) {
    return exact_fields(7, [&](std::string_view key, bool& read) -> unsigned {
      if (is(key, "id")) {
        read = text(offer.id);
        return 1;
      }
      if (is(key, "pool")) {
        read = text(offer.pool);
        return 2;
      }
      if (is(key, "available")) {
        read = resources(offer.available, available_memo_);
        return 4;
      }
      return 0;
    });
  }

  template <class T, class ReadOne>
  bool list(std::vector<T>& out, ReadOne read_one) {
    uint32_t count = 0;
    if (!array_header(in_, count)) return false;
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
  msgpack_cursor& in_;
  bool build_;
  resources_memo totals_memo_;
  resources_memo available_memo_;
};

// Reads the whole body as a list reply; false when it is not exactly that.
bool read_reply(std::string_view body, bool build, api_reply& reply) {
  if (body.empty() || body.size() > codec::max_reply_bytes) return false;
  msgpack_cursor in(body);
  list_reader read(in, build);
  uint32_t pairs = 0;
  if (!map_header(in, pairs)) return false;
  enum : unsigned { v = 1, id = 2, ok = 4, pools = 8, offers = 16 };
  unsigned seen = 0;
  std::string_view id_bytes;
  for (uint32_t i = 0; i < pairs; ++i) {
    std::string_view key;
    if (!str(in, key)) return false;
    unsigned field = 0;
    bool read_ok = false;
    if (is(key, "v")) {
      int64_t version = 0;
      field = v, read_ok = in.int64(version) && version == 1;
    } else if (is(key, "id")) {
      size_t id_start = in.position();
      field = id, read_ok = scalar(in);
      id_bytes = in.since(id_start);
    } else if (is(key, "ok")) {
      // "ok": false is an error reply: the strict path reads its error.
      bool value = false;
      field = ok, read_ok = in.boolean(value) && value;
    } else if (is(key, "pools")) {
      field = pools, read_ok = read.list(reply.pools, &list_reader::pool_status);
    } else if (is(key, "offers")) {
      field = offers, read_ok = read.list(reply.offers, &list_reader::offer_info);
    }
    if (!read_ok || (seen & field) != 0) return false;
    seen |= field;
  }
  if (!in.at_end() || (seen & ok) == 0 || (seen & (pools | offers)) == 0) return false;
  if (!id_bytes.empty()) {
    // Re-packed as the strict path echoes it (a uint32 5 becomes fixint 5):
    // one scalar, well within every unpack limit.
    auto handle = msgpack::unpack(id_bytes.data(), id_bytes.size());
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

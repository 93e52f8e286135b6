#include "schemas/json.hpp"

#include <msgpack.hpp>

#include <cmath>
#include <cstdio>

#include "schemas/codec.hpp"

namespace poolbus {
namespace {

void write_string(std::string& out, const char* p, size_t n) {
  out += '"';
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(p[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void write_value(std::string& out, const msgpack::object& o, int depth) {
  if (depth > 64) {
    out += "null";
    return;
  }
  char buf[64];
  switch (o.type) {
    case msgpack::type::NIL: out += "null"; break;
    case msgpack::type::BOOLEAN: out += o.via.boolean ? "true" : "false"; break;
    case msgpack::type::POSITIVE_INTEGER:
      std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(o.via.u64));
      out += buf;
      break;
    case msgpack::type::NEGATIVE_INTEGER:
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(o.via.i64));
      out += buf;
      break;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      if (!std::isfinite(o.via.f64)) {
        out += "null";
      } else {
        // 15 significant digits: 0.1 prints as 0.1 and 4.0 as 4.
        std::snprintf(buf, sizeof buf, "%.15g", o.via.f64);
        out += buf;
      }
      break;
    case msgpack::type::STR: write_string(out, o.via.str.ptr, o.via.str.size); break;
    case msgpack::type::BIN: {
      std::string hex;
      static const char digits[] = "0123456789abcdef";
      for (uint32_t i = 0; i < o.via.bin.size; ++i) {
        auto b = static_cast<unsigned char>(o.via.bin.ptr[i]);
        hex += digits[b >> 4];
        hex += digits[b & 15];
      }
      write_string(out, hex.data(), hex.size());
      break;
    }
    case msgpack::type::ARRAY:
      out += '[';
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        if (i) out += ',';
        write_value(out, o.via.array.ptr[i], depth + 1);
      }
      out += ']';
      break;
    case msgpack::type::MAP:
      out += '{';
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        if (i) out += ',';
        const auto& key = o.via.map.ptr[i].key;
        if (key.type == msgpack::type::STR) {
          write_string(out, key.via.str.ptr, key.via.str.size);
        } else {
          std::string rendered;
          write_value(rendered, key, depth + 1);
          write_string(out, rendered.data(), rendered.size());
        }
        out += ':';
        write_value(out, o.via.map.ptr[i].val, depth + 1);
      }
      out += '}';
      break;
    default: out += "null"; break;
  }
}

}  // namespace

outcome<std::string> msgpack_to_json(std::string_view body) {
  // The codec's limits (one object, bounded containers and depth), so a forged
  // length prefix is `invalid` instead of a multi-gigabyte allocation.
  return codec::guarded([&] {
    auto handle = codec::unpack_body(body, codec::max_reply_bytes);
    std::string out;
    write_value(out, handle.get(), 0);
    return out;
  });
}

}  // namespace poolbus

// msgpack_scan: read-only walks over MessagePack bytes that find one field of
// a top-level map without decoding the rest (no object tree, no allocation).
// Invariant: never reads past the end of the bytes; anything malformed,
// truncated or nested deeper than the caller could ever send is "not found".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace poolbus {

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

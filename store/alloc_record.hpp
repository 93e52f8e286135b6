// alloc_record: what the state store keeps of an alloc beside its lease
// columns, as one BLOB (schema 2: one row, one statement per alloc change).
// The bytes are a MessagePack array [resources, want, labels]: two maps of
// resource name to integer fixed-point units, and a map of label to value.
// Invariant: decode(encode(r)) == r, and decode accepts nothing but that shape
// (a negative or fractional amount, a wrong type, trailing bytes: an error).
#pragma once

#include <string>
#include <string_view>

#include "schemas/alloc.hpp"
#include "schemas/outcome.hpp"

namespace poolbus {

struct alloc_record {
  Resources resources;
  Resources want;
  Labels labels;
};

std::string encode_alloc_record(const Resources& resources, const Resources& want, const Labels& labels);
// Errors are invalid, the message naming the part ("want.cpu: negative").
outcome<alloc_record> decode_alloc_record(std::string_view bytes);

}  // namespace poolbus

#include "store/alloc_record.hpp"

#include "schemas/codec.hpp"

namespace poolbus {
namespace {

void pack_units(codec::packer& pk, const Resources& resources) {
  pk.pack_map(static_cast<uint32_t>(resources.amounts().size()));
  for (const auto& [name, units] : resources.amounts()) {
    codec::pack_string(pk, name);
    pk.pack_int64(units);
  }
}

// Units are stored as integers: a float here would mean the row was not ours.
Resources read_units(const msgpack::object& object, const std::string& path) {
  if (object.type != msgpack::type::MAP) codec::fail(path, "not a map");
  Resources out;
  for (uint32_t i = 0; i < object.via.map.size; ++i) {
    const auto& entry = object.via.map.ptr[i];
    auto name = codec::read_string(entry.key, path);
    auto where = codec::join_path(path, name);
    if (entry.val.type == msgpack::type::NEGATIVE_INTEGER) codec::fail(where, "negative");
    if (entry.val.type != msgpack::type::POSITIVE_INTEGER) codec::fail(where, "not an integer");
    if (entry.val.via.u64 > static_cast<uint64_t>(INT64_MAX)) codec::fail(where, "out of range");
    out.set_units(name, static_cast<Resources::amount>(entry.val.via.u64));
  }
  return out;
}

}  // namespace

std::string encode_alloc_record(const Resources& resources, const Resources& want, const Labels& labels) {
  return codec::pack_body([&](msgpack::sbuffer&, codec::packer& pk) {
    pk.pack_array(3);
    pack_units(pk, resources);
    pack_units(pk, want);
    codec::pack_labels(pk, labels);
  });
}

outcome<alloc_record> decode_alloc_record(std::string_view bytes) {
  return codec::guarded([&] {
    auto handle = codec::unpack_body(bytes);
    const auto& root = handle.get();
    if (root.type != msgpack::type::ARRAY || root.via.array.size != 3)
      codec::fail("record", "not an array of 3 (resources, want, labels)");
    const auto* part = root.via.array.ptr;
    return alloc_record{read_units(part[0], "resources"), read_units(part[1], "want"),
                        codec::read_labels(part[2], "labels")};
  });
}

}  // namespace poolbus

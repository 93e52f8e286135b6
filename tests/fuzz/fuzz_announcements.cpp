// Fuzz target: the announce SUB's bodies, each decoder on the same bytes
// (offers.*, allocs.*, pools.* announcements). Invariants: no crash; a failure
// is `invalid`; a success re-encodes to an equal announcement.
#include "fuzz_invariants.hpp"

using namespace poolbus;

namespace {

template <class T, class Encode, class Decode>
void check_decoder(std::string_view body, Encode encode, Decode decode, const char* what) {
  outcome<T> decoded = decode(body);
  if (!decoded) {
    fuzz::check_invalid(decoded.error());
    return;
  }
  fuzz::check_round_trip(*decoded, encode, decode, what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto body = fuzz::bytes_of(data, size);
  check_decoder<offer_announcement>(body, encode_offer_announcement, decode_offer_announcement,
                                    "offer_announcement");
  check_decoder<alloc_event>(body, encode_alloc_event, decode_alloc_event, "alloc_event");
  check_decoder<pool_event>(body, encode_pool_event, decode_pool_event, "pool_event");
  return 0;
}

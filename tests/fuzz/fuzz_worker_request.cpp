// Fuzz target: decode_worker_request, what a worker does with the broker's
// requests. Invariants: no crash; a failure is `invalid`; the rid reported on
// success is the request's; a success re-encodes to an equal request.
#include "fuzz_invariants.hpp"

using namespace poolbus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint64_t rid = 12345;
  auto request = decode_worker_request(fuzz::bytes_of(data, size), &rid);
  if (!request) {
    fuzz::check_invalid(request.error());
    return 0;
  }
  FUZZ_CHECK(rid == request->rid, "rid_out is the decoded rid");
  FUZZ_CHECK(request->offer_id.find('/') == std::string::npos && request->alloc_id.find('/') == std::string::npos,
             "local ids have no '/'");
  fuzz::check_round_trip(
      *request, encode_worker_request, [](std::string_view body) { return decode_worker_request(body, nullptr); },
      "worker_request");
  return 0;
}

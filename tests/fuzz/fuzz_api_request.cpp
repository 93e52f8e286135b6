// Fuzz target: decode_api_request, the broker's first contact with any client
// bytes. Invariants: no crash; a failure is `invalid` and still leaves a
// well-formed id to echo; a success re-encodes to an equal request.
#include "fuzz_invariants.hpp"

using namespace poolbus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string id_raw = "unset";
  auto request = decode_api_request(fuzz::bytes_of(data, size), &id_raw);
  // Whatever happened, the id is MessagePack the error reply can embed.
  FUZZ_CHECK(!id_raw.empty() && id_raw != "unset", "id_raw is always set");
  auto error_reply = decode_api_reply(encode_error_reply(id_raw, {error_kind::invalid, "x"}));
  FUZZ_CHECK(!error_reply.ok() && error_reply.error().kind == error_kind::invalid,
             "an error reply echoing the id is itself well-formed");
  if (!request) {
    fuzz::check_invalid(request.error());
    return 0;
  }
  FUZZ_CHECK(request->id_raw == id_raw, "the decoded request carries the echoed id");
  fuzz::check_round_trip(
      *request, encode_api_request, [](std::string_view body) { return decode_api_request(body, nullptr); },
      "api_request");
  return 0;
}

// Fuzz target: decode_worker_message, the broker's workers ROUTER input (a
// worker's reply or hello), and decode_worker_message_relaying, which the
// broker really uses. Invariants: no crash; a failure is `invalid`; a hello
// names a usable pool id; a success re-encodes to an equal message; allocs
// entries the relaying decode passes on decode as Inspect values.
#include "fuzz_invariants.hpp"

using namespace poolbus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto relayed = decode_worker_message_relaying(fuzz::bytes_of(data, size));
  if (!relayed) {
    fuzz::check_invalid(relayed.error());
  } else if (auto* r = std::get_if<worker_reply>(&*relayed); r != nullptr && r->allocs_entries.count > 0) {
    FUZZ_CHECK(r->ok && r->allocs.empty(), "relayed entries only in an ok reply, instead of decoded ones");
    FUZZ_CHECK(decode_alloc_entries(r->allocs_entries).ok(), "relayed allocs entries decode");
  }
  auto message = decode_worker_message(fuzz::bytes_of(data, size));
  if (!message) {
    fuzz::check_invalid(message.error());
    return 0;
  }
  if (auto* hello = std::get_if<worker_hello>(&*message)) {
    FUZZ_CHECK(!hello->pool.empty() && hello->pool.find('/') == std::string::npos, "hello pool id is usable");
    fuzz::check_round_trip(
        *hello, encode_worker_hello,
        [](std::string_view body) -> outcome<worker_hello> {
          auto again = decode_worker_message(body);
          if (!again) return again.error();
          auto* h = std::get_if<worker_hello>(&*again);
          if (h == nullptr) return pool_error{error_kind::internal, "hello came back as a reply"};
          return *h;
        },
        "worker_hello");
    return 0;
  }
  const auto& reply = std::get<worker_reply>(*message);
  if (!reply.ok) FUZZ_CHECK(reply.allocs.empty() && reply.offers.empty(), "an error reply carries no results");
  fuzz::check_round_trip(
      reply, encode_worker_reply,
      [](std::string_view body) -> outcome<worker_reply> {
        auto again = decode_worker_message(body);
        if (!again) return again.error();
        auto* r = std::get_if<worker_reply>(&*again);
        if (r == nullptr) return pool_error{error_kind::internal, "reply came back as a hello"};
        return *r;
      },
      "worker_reply");
  return 0;
}

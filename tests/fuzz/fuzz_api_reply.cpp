// Fuzz target: decode_api_reply and reply_id_raw, what clients (poolctl, the
// api client) do with the broker's bytes. Invariants: no crash; a malformed
// reply is `internal`; a remote error and every decoded result re-encode, with
// the reply encoders, to bodies that decode to the same thing.
#include "fuzz_invariants.hpp"

using namespace poolbus;

namespace {

bool same_pools(const std::vector<PoolStatus>& a, const std::vector<PoolStatus>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!fuzz::same(a[i], b[i])) return false;
  return true;
}

api_reply decode_ok(const std::string& body, const char* what) {
  auto reply = decode_api_reply(body);
  FUZZ_CHECK(reply.ok(), std::string(what) + ": re-encoded reply does not decode: " + reply.error().to_string());
  return std::move(reply).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto body = fuzz::bytes_of(data, size);
  std::string id_raw = reply_id_raw(body);
  FUZZ_CHECK(!id_raw.empty(), "reply_id_raw is never empty");
  auto reply = decode_api_reply(body);
  if (!reply) {
    const pool_error& error = reply.error();
    if (error.kind == error_kind::internal && error.message.rfind("malformed reply: ", 0) == 0) return 0;
    // Otherwise it is the remote error, carried unchanged: it re-encodes as such.
    auto again = decode_api_reply(encode_error_reply(id_raw, error));
    FUZZ_CHECK(!again.ok() && again.error() == error, "a remote error survives re-encoding");
    return 0;
  }
  FUZZ_CHECK(reply->id_raw == id_raw, "the decoded reply carries reply_id_raw's id");
  FUZZ_CHECK(same_pools(decode_ok(encode_pools_reply(id_raw, reply->pools), "pools").pools, reply->pools),
             "pools round trip");
  FUZZ_CHECK(decode_ok(encode_offers_reply(id_raw, reply->offers), "offers").offers == reply->offers,
             "offers round trip");
  FUZZ_CHECK(decode_ok(encode_offer_reply(id_raw, reply->offer), "offer").offer == reply->offer, "offer round trip");
  FUZZ_CHECK(decode_ok(encode_alloc_reply(id_raw, reply->alloc), "alloc").alloc == reply->alloc, "alloc round trip");
  FUZZ_CHECK(decode_ok(encode_allocs_reply(id_raw, reply->allocs), "allocs").allocs == reply->allocs,
             "allocs round trip");
  auto keepalive = decode_ok(encode_keepalive_reply(id_raw, reply->interval_ms), "keepalive");
  FUZZ_CHECK(keepalive.interval_ms == reply->interval_ms && keepalive.id_raw == id_raw, "keepalive round trip");
  return 0;
}

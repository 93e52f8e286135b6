#include "bus/pool_client.hpp"

#include <msgpack.hpp>

#include <algorithm>

#include "bus/endpoints.hpp"

namespace poolbus {
namespace {

std::string pack_id(uint64_t id) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_uint64(id);
  return std::string(buffer.data(), buffer.size());
}

api_request request_of(api_op op) {
  api_request r;
  r.op = op;
  return r;
}

}  // namespace

pool_client::pool_client(std::vector<std::unique_ptr<api_client>> brokers, int64_t timeout_ms,
                         std::optional<curve_client_keys> curve)
    : brokers_(std::move(brokers)), timeout_ms_(timeout_ms), curve_(std::move(curve)) {}

outcome<std::unique_ptr<pool_client>> pool_client::connect(const std::string& api_endpoints, int64_t timeout_ms,
                                                           const std::optional<curve_client_keys>& curve) {
  std::vector<std::unique_ptr<api_client>> brokers;
  for (const std::string& endpoint : split_endpoints(api_endpoints)) {
    auto api = api_client::connect(endpoint, curve);
    if (!api) return api.error();
    brokers.push_back(std::move(*api));
  }
  return std::unique_ptr<pool_client>(new pool_client(std::move(brokers), timeout_ms, curve));
}

outcome<std::string> pool_client::call_raw(api_request request, int64_t extra_ms) {
  outcome<std::string> reply = make_pool_error(error_kind::internal, "no broker");
  for (size_t tried = 0; tried < brokers_.size(); ++tried) {
    if (tried > 0) current_ = (current_ + 1) % brokers_.size();  // the last one did not answer
    request.id_raw = pack_id(next_id_++);  // a fresh id: a late answer of the last one is never taken
    reply = brokers_[current_]->call(encode_api_request(request), timeout_ms_ + extra_ms);
    if (reply || reply.error().kind != error_kind::timeout) return reply;
    // A fresh connection: the request must not wait in the old one's queue
    // and reach the broker later, after we told the caller it timed out.
    if (auto fresh = api_client::connect(brokers_[current_]->endpoint(), curve_))
      brokers_[current_] = std::move(*fresh);
  }
  return reply;
}

outcome<api_reply> pool_client::call(api_request request, int64_t extra_ms) {
  auto body = call_raw(std::move(request), extra_ms);
  if (!body) return body.error();
  return decode_api_reply(*body);
}

outcome<void> pool_client::ping() {
  auto reply = call(request_of(api_op::ping));
  if (!reply) return reply.error();
  return {};
}

outcome<std::vector<PoolStatus>> pool_client::pools() {
  auto reply = call(request_of(api_op::pools));
  if (!reply) return reply.error();
  return std::move(reply->pools);
}

outcome<std::vector<OfferInfo>> pool_client::offers() {
  auto reply = call(request_of(api_op::offers));
  if (!reply) return reply.error();
  return std::move(reply->offers);
}

outcome<OfferInfo> pool_client::offer(const std::string& uri) {
  auto r = request_of(api_op::offer);
  r.uri = uri;
  auto reply = call(std::move(r));
  if (!reply) return reply.error();
  return std::move(reply->offer);
}

outcome<AllocInspect> pool_client::accept(const std::string& offer_uri, const AllocMeta& meta) {
  auto r = request_of(api_op::accept);
  r.uri = offer_uri;
  r.meta = meta;
  auto reply = call(std::move(r));
  if (!reply) return reply.error();
  return std::move(reply->alloc);
}

outcome<AllocInspect> pool_client::allocate(const Resources& min, int64_t width, const std::string& owner,
                                            const Labels& labels) {
  auto r = request_of(api_op::allocate);
  r.meta = AllocMeta{{}, owner, labels};
  r.place.min = min;
  r.place.width = width;
  auto reply = call(std::move(r));
  if (!reply) return reply.error();
  return std::move(reply->alloc);
}

outcome<std::vector<AllocInspect>> pool_client::place(const placement& request, const std::string& owner,
                                                      const Labels& labels) {
  auto r = request_of(api_op::allocate);
  r.meta = AllocMeta{{}, owner, labels};
  r.place = request;
  r.place.gang = true;  // the reply lists every alloc
  auto reply = call(std::move(r), std::max<int64_t>(request.wait_ms, 0));
  if (!reply) return reply.error();
  return std::move(reply->allocs);
}

outcome<std::vector<queue_entry>> pool_client::queue() {
  auto reply = call(request_of(api_op::queue));
  if (!reply) return reply.error();
  return std::move(reply->queue);
}

outcome<std::vector<quota_usage>> pool_client::quotas() {
  auto reply = call(request_of(api_op::quotas));
  if (!reply) return reply.error();
  return std::move(reply->quotas);
}

outcome<PoolStatus> pool_client::drain(const std::string& pool, bool drain) {
  auto r = request_of(api_op::drain);
  r.pool = pool;
  r.drain = drain;
  auto reply = call(std::move(r));
  if (!reply) return reply.error();
  return std::move(reply->pool);
}

outcome<exec_answer> pool_client::exec(exec_call call) {
  api_request r = request_of(*api_op_from_string(to_string(call.op)));
  r.uri = call.alloc;
  const int64_t extra_ms = call.op == exec_op::wait ? call.timeout_ms : 0;
  r.exec = std::move(call);
  auto reply = this->call(std::move(r), extra_ms);
  if (!reply) return reply.error();
  return std::move(reply->exec);
}

outcome<std::vector<AllocInspect>> pool_client::allocs(const std::string& pool) {
  auto r = request_of(api_op::allocs);
  r.pool = pool;
  auto reply = call(std::move(r));
  if (!reply) return reply.error();
  return std::move(reply->allocs);
}

outcome<AllocInspect> pool_client::inspect(const std::string& alloc_uri) {
  auto r = request_of(api_op::inspect);
  r.uri = alloc_uri;
  auto reply = call(std::move(r));
  if (!reply) return reply.error();
  return std::move(reply->alloc);
}

outcome<int64_t> pool_client::keepalive(const std::string& alloc_uri, int64_t interval_ms) {
  auto r = request_of(api_op::keepalive);
  r.uri = alloc_uri;
  r.interval_ms = interval_ms;
  auto reply = call(std::move(r));
  if (!reply) return reply.error();
  return reply->interval_ms;
}

outcome<void> pool_client::free(const std::string& alloc_uri) {
  auto r = request_of(api_op::free);
  r.uri = alloc_uri;
  auto reply = call(std::move(r));
  if (!reply) return reply.error();
  return {};
}

}  // namespace poolbus

// pool_client: the C++ client library's synchronous calls, one per op of the
// client API (protocol.md), over an api_client. Every result is an outcome:
// the broker's error kind arrives unchanged.
//
// Several brokers: given "EP1,EP2,...", it keeps one connection per broker
// and uses one at a time. A call that gets no answer within its timeout is
// sent to the next broker, and so on once round; the one that answered is
// used from then on. After a timeout the connection is made anew, so the
// unanswered request never reaches that broker later. A broker's own error reply (even `timeout`: its worker
// did not answer) is an answer, not a failover.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bus/api_client.hpp"
#include "schemas/api_messages.hpp"

namespace poolbus {

class pool_client {
 public:
  // `api_endpoints`: one endpoint, or several separated by commas (failover order).
  static outcome<std::unique_ptr<pool_client>> connect(const std::string& api_endpoints, int64_t timeout_ms = 10000,
                                                       const std::optional<curve_client_keys>& curve = std::nullopt);

  outcome<void> ping();
  outcome<std::vector<PoolStatus>> pools();
  outcome<std::vector<OfferInfo>> offers();
  outcome<OfferInfo> offer(const std::string& uri);
  outcome<AllocInspect> accept(const std::string& offer_uri, const AllocMeta& meta);
  outcome<AllocInspect> allocate(const Resources& min, int64_t width, const std::string& owner = "",
                                 const Labels& labels = {});
  // allocate with the second wave's arguments (constraints, wait, priority,
  // gangs): every alloc placed. A wait extends this call's timeout by wait_ms.
  outcome<std::vector<AllocInspect>> place(const placement& request, const std::string& owner = "",
                                           const Labels& labels = {});
  outcome<std::vector<queue_entry>> queue();
  outcome<std::vector<quota_usage>> quotas();
  outcome<PoolStatus> drain(const std::string& pool, bool drain = true);
  outcome<std::vector<AllocInspect>> allocs(const std::string& pool = "");
  outcome<AllocInspect> inspect(const std::string& alloc_uri);
  outcome<int64_t> keepalive(const std::string& alloc_uri, int64_t interval_ms);
  outcome<void> free(const std::string& alloc_uri);
  // Any exec op in an alloc (exec_put, execs, exec_logs, ...; call.alloc is
  // the alloc URI): its answer. An exec_wait extends the timeout by its own.
  outcome<exec_answer> exec(exec_call call);

  // The raw reply body (ok or not) for a request; its id is set here.
  outcome<std::string> call_raw(api_request request, int64_t extra_ms = 0);

  // The endpoint calls go to now (the last one that answered).
  const std::string& endpoint() const { return brokers_[current_]->endpoint(); }

 private:
  pool_client(std::vector<std::unique_ptr<api_client>> brokers, int64_t timeout_ms,
              std::optional<curve_client_keys> curve);
  outcome<api_reply> call(api_request request, int64_t extra_ms = 0);

  std::vector<std::unique_ptr<api_client>> brokers_;  // never empty
  size_t current_ = 0;
  int64_t timeout_ms_;
  std::optional<curve_client_keys> curve_;  // to connect again after a timeout
  uint64_t next_id_ = 1;
};

}  // namespace poolbus

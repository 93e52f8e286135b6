// metrics_text: a writer of the Prometheus text exposition format (0.0.4).
// Invariant: each family's HELP and TYPE lines come once, before its samples,
// and every label value is escaped (\\, \", \n), so any pool id or label
// from outside still yields a page Prometheus parses.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace poolbus {

class metrics_text {
 public:
  using label_list = std::vector<std::pair<std::string_view, std::string_view>>;

  // type: "gauge", "counter" or "histogram".
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const label_list& labels, double value);
  void sample(std::string_view name, double value) { sample(name, {}, value); }

  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// latency_histogram: request latencies by op, in seconds, over fixed buckets;
// safe to observe from any thread.
class latency_histogram {
 public:
  latency_histogram();
  void observe(const std::string& op, double seconds);
  // The family `name` with its _bucket/_sum/_count samples, label `op`.
  void write(metrics_text& out, std::string_view name, std::string_view help) const;

 private:
  struct series {
    std::vector<uint64_t> counts;  // per bucket, not cumulative
    double sum = 0;
    uint64_t count = 0;
  };
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::map<std::string, series> by_op_;
};

}  // namespace poolbus

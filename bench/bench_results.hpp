// bench_results: what pool-bench measured: one row per figure (beside its raw
// ZeroMQ baseline, the ratio and the target), latency samples for the
// distribution plot, and the pools-scaling points; printed as a table and
// written as CSV and JSON.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace poolbus::bench {

// Percentile (0..100) of samples (sorted on the way).
double percentile(std::vector<double>& samples, double pct);

struct result_row {
  std::string scenario;
  std::string figure;  // what is measured, e.g. "p99 latency"
  std::string unit;    // "us", "ops/s", "%core", ...
  double value = 0;
  std::optional<double> baseline;  // the raw ZeroMQ figure, when there is one
  std::string target;              // e.g. "<= 1.5x", ">= 50000", "" = none
  std::optional<bool> pass;        // unset when there is no target
  double ratio() const { return baseline && *baseline != 0 ? value / *baseline : 0; }
};

struct scaling_point {
  int pools = 0;
  double offers_p50_us = 0, offers_p99_us = 0, pools_p50_us = 0, pools_p99_us = 0;
  double broker_cpu_pct = 0;  // of one core, while every pool heartbeats
  double broker_rss_mb = 0;
};

class bench_results {
 public:
  void add(result_row row) { rows_.push_back(std::move(row)); }
  // Latency samples in microseconds under a series name ("accept+free", "raw 2-hop", ...).
  void add_samples(const std::string& series, const std::vector<double>& us) { samples_[series] = us; }
  void add_scaling(scaling_point point) { scaling_.push_back(point); }

  void print_table() const;
  // results.csv, results.json, latency_samples.csv, scaling.csv into dir.
  void write(const std::string& dir) const;

 private:
  std::vector<result_row> rows_;
  std::map<std::string, std::vector<double>> samples_;
  std::vector<scaling_point> scaling_;
};

}  // namespace poolbus::bench

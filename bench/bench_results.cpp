#include "bench/bench_results.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace poolbus::bench {

double percentile(std::vector<double>& samples, double pct) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  auto rank = static_cast<size_t>(std::ceil(pct / 100.0 * static_cast<double>(samples.size())));
  return samples[std::min(samples.size() - 1, rank == 0 ? 0 : rank - 1)];
}

namespace {

std::string number(double v) {
  char buf[64];
  if (std::fabs(v) >= 1000 || v == std::floor(v))
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string verdict(const result_row& r) { return r.pass ? (*r.pass ? "pass" : "MISS") : "-"; }

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

void bench_results::print_table() const {
  std::printf("%-22s %-34s %12s %12s %8s %-16s %s\n", "scenario", "figure", "value", "raw zmq", "ratio", "target", "");
  for (const auto& r : rows_) {
    std::string figure = r.figure + " (" + r.unit + ")";
    std::printf("%-22s %-34s %12s %12s %8s %-16s %s\n", r.scenario.c_str(), figure.c_str(), number(r.value).c_str(),
                r.baseline ? number(*r.baseline).c_str() : "-", r.baseline ? (number(r.ratio()) + "x").c_str() : "-",
                r.target.empty() ? "-" : r.target.c_str(), verdict(r).c_str());
  }
  std::fflush(stdout);
}

void bench_results::write(const std::string& dir) const {
  std::filesystem::create_directories(dir);
  {
    std::ofstream csv(dir + "/results.csv");
    csv << "scenario,figure,unit,value,baseline,ratio,target,result\n";
    for (const auto& r : rows_)
      csv << r.scenario << ',' << r.figure << ',' << r.unit << ',' << r.value << ','
          << (r.baseline ? std::to_string(*r.baseline) : "") << ',' << (r.baseline ? std::to_string(r.ratio()) : "")
          << ',' << r.target << ',' << verdict(r) << '\n';
  }
  {
    std::ofstream csv(dir + "/latency_samples.csv");
    csv << "series,us\n";
    for (const auto& [series, us] : samples_)
      for (double v : us) csv << series << ',' << v << '\n';
  }
  {
    std::ofstream csv(dir + "/scaling.csv");
    csv << "pools,offers_p50_us,offers_p99_us,pools_p50_us,pools_p99_us,broker_cpu_pct,broker_rss_mb\n";
    for (const auto& p : scaling_)
      csv << p.pools << ',' << p.offers_p50_us << ',' << p.offers_p99_us << ',' << p.pools_p50_us << ','
          << p.pools_p99_us << ',' << p.broker_cpu_pct << ',' << p.broker_rss_mb << '\n';
  }
  std::ofstream json(dir + "/results.json");
  json << "{\n  \"rows\": [\n";
  for (size_t i = 0; i < rows_.size(); ++i) {
    const auto& r = rows_[i];
    json << "    {\"scenario\": " << json_string(r.scenario) << ", \"figure\": " << json_string(r.figure)
         << ", \"unit\": " << json_string(r.unit) << ", \"value\": " << r.value
         << ", \"baseline\": " << (r.baseline ? std::to_string(*r.baseline) : "null")
         << ", \"ratio\": " << (r.baseline ? std::to_string(r.ratio()) : "null")
         << ", \"target\": " << json_string(r.target) << ", \"result\": " << json_string(verdict(r)) << "}"
         << (i + 1 < rows_.size() ? "," : "") << "\n";
  }
  json << "  ],\n  \"scaling\": [\n";
  for (size_t i = 0; i < scaling_.size(); ++i) {
    const auto& p = scaling_[i];
    json << "    {\"pools\": " << p.pools << ", \"offers_p50_us\": " << p.offers_p50_us
         << ", \"offers_p99_us\": " << p.offers_p99_us << ", \"pools_p50_us\": " << p.pools_p50_us
         << ", \"pools_p99_us\": " << p.pools_p99_us << ", \"broker_cpu_pct\": " << p.broker_cpu_pct
         << ", \"broker_rss_mb\": " << p.broker_rss_mb << "}" << (i + 1 < scaling_.size() ? "," : "") << "\n";
  }
  json << "  ],\n  \"latency_percentiles_us\": {\n";
  size_t n = 0;
  for (const auto& [series, us] : samples_) {
    auto copy = us;
    json << "    " << json_string(series) << ": {\"count\": " << copy.size() << ", \"p50\": " << percentile(copy, 50)
         << ", \"p99\": " << percentile(copy, 99) << ", \"p99.9\": " << percentile(copy, 99.9) << "}"
         << (++n < samples_.size() ? "," : "") << "\n";
  }
  json << "  }\n}\n";
}

}  // namespace poolbus::bench

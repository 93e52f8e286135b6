#include "dash/metrics_text.hpp"

#include <cmath>
#include <cstdio>

namespace poolbus {
namespace {

std::string number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", value);
  return buf;
}

void append_escaped(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

}  // namespace

void metrics_text::family(std::string_view name, std::string_view type, std::string_view help) {
  text_.append("# HELP ").append(name).append(" ");
  for (char c : help) text_ += c == '\n' ? ' ' : c;
  text_.append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
}

void metrics_text::sample(std::string_view name, const label_list& labels, double value) {
  text_.append(name);
  if (!labels.empty()) {
    text_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) text_ += ',';
      text_.append(labels[i].first).append("=\"");
      append_escaped(text_, labels[i].second);
      text_ += '"';
    }
    text_ += '}';
  }
  text_.append(" ").append(number(value)).append("\n");
}

// From 100 us (a local round trip) to 10 s (twice the broker's request timeout).
latency_histogram::latency_histogram()
    : bounds_{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10} {}

void latency_histogram::observe(const std::string& op, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  series& s = by_op_[op];
  if (s.counts.empty()) s.counts.assign(bounds_.size() + 1, 0);
  size_t bucket = 0;
  while (bucket < bounds_.size() && seconds > bounds_[bucket]) ++bucket;
  ++s.counts[bucket];
  s.sum += seconds;
  ++s.count;
}

void latency_histogram::write(metrics_text& out, std::string_view name, std::string_view help) const {
  std::lock_guard<std::mutex> lock(mutex_);
  out.family(name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  for (const auto& [op, s] : by_op_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += s.counts[i];
      const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
      out.sample(bucket, {{"op", op}, {"le", le}}, static_cast<double>(cumulative));
    }
    out.sample(std::string(name) + "_sum", {{"op", op}}, s.sum);
    out.sample(std::string(name) + "_count", {{"op", op}}, static_cast<double>(s.count));
  }
}

}  // namespace poolbus

#include "apps/poolctl/tables.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

#include "schemas/units.hpp"

namespace poolbus {
namespace {

using row = std::vector<std::string>;

void print_table(std::ostream& out, const row& header, const std::vector<row>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  auto emit = [&](const row& r) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    out << line << "\n";
  };
  emit(header);
  for (const auto& r : rows) emit(r);
}

std::string expiry_text(int64_t expires_ms, int64_t now_ms) {
  if (expires_ms > now_ms) return "in " + format_duration(expires_ms - now_ms);
  return "expired " + format_duration(now_ms - expires_ms) + " ago";
}

}  // namespace

std::string format_duration(int64_t ms) {
  char buf[64];
  if (ms < 0) ms = 0;
  if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>((ms % 60'000) / 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>((ms % 3'600'000) / 60'000));
  }
  return buf;
}

// "zone=eu-1,gpu=a100", or "-" for none.
std::string format_labels(const Labels& labels) {
  std::string out;
  for (const auto& [key, value] : labels) out += (out.empty() ? "" : ",") + key + "=" + value;
  return out.empty() ? "-" : out;
}

void print_pools(std::ostream& out, const std::vector<PoolStatus>& pools, int64_t now_ms) {
  std::vector<row> rows;
  for (const auto& p : pools)
    rows.push_back({p.id + (p.draining ? " (draining)" : ""), format_resources(p.resources),
                    format_resources(p.available), std::to_string(p.allocs), format_labels(p.labels),
                    format_duration(now_ms - p.last_seen_ms) + " ago"});
  print_table(out, {"POOL", "RESOURCES", "AVAILABLE", "ALLOCS", "LABELS", "LAST SEEN"}, rows);
}

void print_queue(std::ostream& out, const std::vector<queue_entry>& queue, int64_t now_ms) {
  std::vector<row> rows;
  for (const auto& q : queue) {
    std::string constraints;
    for (const auto& [key, values] : q.constraints) {
      std::string joined;
      for (const auto& v : values) joined += (joined.empty() ? "" : ",") + v;
      constraints += (constraints.empty() ? "" : " ") + key + "=" + joined;
    }
    rows.push_back({q.id, q.owner.empty() ? "-" : q.owner, format_resources(q.min) + " x" + std::to_string(q.count),
                    std::to_string(q.priority), constraints.empty() ? "-" : constraints,
                    format_duration(now_ms - q.queued_ms),
                    format_duration(std::max<int64_t>(q.deadline_ms - now_ms, 0))});
  }
  print_table(out, {"REQUEST", "OWNER", "MIN", "PRIORITY", "CONSTRAINTS", "WAITED", "LEFT"}, rows);
}

void print_quotas(std::ostream& out, const std::vector<quota_usage>& quotas) {
  std::vector<row> rows;
  for (const auto& q : quotas)
    rows.push_back({q.owner.empty() ? "\"\"" : q.owner, format_resources(q.quota), format_resources(q.used)});
  print_table(out, {"OWNER", "QUOTA", "USED"}, rows);
}

void print_offers(std::ostream& out, const std::vector<OfferInfo>& offers) {
  std::vector<row> rows;
  for (const auto& o : offers) rows.push_back({o.id, format_resources(o.available)});
  print_table(out, {"OFFER", "AVAILABLE"}, rows);
}

void print_allocs(std::ostream& out, const std::vector<AllocInspect>& allocs, int64_t now_ms) {
  std::vector<row> rows;
  for (const auto& a : allocs)
    rows.push_back({a.id, format_resources(a.resources), a.meta.owner.empty() ? "-" : a.meta.owner,
                    expiry_text(a.expires_ms, now_ms)});
  print_table(out, {"ALLOC", "RESOURCES", "OWNER", "EXPIRES"}, rows);
}

void print_alloc(std::ostream& out, const AllocInspect& a, int64_t now_ms) {
  out << "alloc      " << a.id << "\n"
      << "pool       " << a.pool << "\n"
      << "resources  " << format_resources(a.resources) << "\n";
  if (!a.meta.owner.empty()) out << "owner      " << a.meta.owner << "\n";
  for (const auto& [k, v] : a.meta.labels) out << "label      " << k << "=" << v << "\n";
  out << "created    " << format_duration(now_ms - a.created_ms) << " ago\n"
      << "keepalive  " << (a.last_keepalive_ms == 0 ? "never" : format_duration(now_ms - a.last_keepalive_ms) + " ago")
      << "\n"
      << "expires    " << expiry_text(a.expires_ms, now_ms) << "\n";
  if (!a.taskdb_alloc_id.empty()) out << "taskdb id  " << a.taskdb_alloc_id << "\n";
}

}  // namespace poolbus

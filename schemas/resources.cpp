#include "schemas/resources.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace poolbus {
namespace {

Resources::amount to_units(double value) {
  return static_cast<Resources::amount>(std::llround(value * Resources::units_per_one));
}

// op over the union of both sides' labels (a missing one counting as 0): one
// merge of the two sorted lists.
template <class Op>
Resources combine(const Resources& a, const Resources& b, Op op) {
  Resources out;
  auto i = a.amounts().begin(), a_end = a.amounts().end();
  auto j = b.amounts().begin(), b_end = b.amounts().end();
  while (i != a_end || j != b_end) {
    if (j == b_end || (i != a_end && i->first < j->first)) {
      out.set_units(i->first, op(i->second, 0));
      ++i;
    } else if (i == a_end || j->first < i->first) {
      out.set_units(j->first, op(0, j->second));
      ++j;
    } else {
      out.set_units(i->first, op(i->second, j->second));
      ++i, ++j;
    }
  }
  return out;
}

std::string format_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

Resources::Resources(std::initializer_list<std::pair<const std::string, double>> values) {
  for (const auto& [k, v] : values) set(k, v);
}

const char* Resources::value_problem(double value) {
  if (!std::isfinite(value)) return "not finite";
  if (value < 0) return "negative";
  if (value > max_value) return "too large";
  return nullptr;
}

outcome<Resources> Resources::from_values(const std::map<std::string, double>& values) {
  Resources out;
  for (const auto& [k, v] : values) {
    if (k.empty()) return make_pool_error(error_kind::invalid, "resource name is empty");
    if (const char* problem = value_problem(v))
      return make_pool_error(error_kind::invalid, "resource " + k + " is " + problem);
    out.set(k, v);
  }
  return out;
}

double Resources::get(const std::string& key) const { return value_of(units(key)); }

const Resources::amount* Resources::find(const std::string& key) const {
  for (const auto& [k, v] : amounts_) {
    if (k == key) return &v;
    if (key < k) break;  // sorted: it is not further on
  }
  return nullptr;
}

Resources::amount Resources::units(const std::string& key) const {
  const amount* found = find(key);
  return found ? *found : 0;
}

void Resources::set(const std::string& key, double value) { set_units(key, to_units(value)); }

// Appending in label order (a merge, a decode of a sorted map) is the common
// case and costs no search.
void Resources::set_units(const std::string& key, amount units) {
  if (amounts_.empty() || amounts_.back().first < key) {
    amounts_.emplace_back(key, units);
    return;
  }
  auto at = std::lower_bound(amounts_.begin(), amounts_.end(), key,
                             [](const entry& e, const std::string& k) { return e.first < k; });
  if (at != amounts_.end() && at->first == key)
    at->second = units;
  else
    amounts_.emplace(at, key, units);
}

bool Resources::is_zero() const {
  for (const auto& [_, v] : amounts_)
    if (v != 0) return false;
  return true;
}

std::map<std::string, double> Resources::values() const {
  std::map<std::string, double> out;
  for (const auto& [k, v] : amounts_) out[k] = value_of(v);
  return out;
}

bool Resources::available(const Resources& need) const {
  for (const auto& [k, v] : need.amounts_)
    if (units(k) < v) return false;
  return true;
}

Resources Resources::sub(const Resources& other) const {
  return combine(*this, other, [](amount a, amount b) { return a - b; });
}
Resources Resources::add(const Resources& other) const {
  return combine(*this, other, [](amount a, amount b) { return a + b; });
}
// reflow's Min/Max start from a copy of the receiver and only let the other
// side's keys replace a value (a missing one counting as 0). So a key only in
// *this keeps its value: {mem:10, gpu:1}.min({mem:5}) is {mem:5, gpu:1}.
Resources Resources::min(const Resources& other) const {
  Resources out = *this;
  for (const auto& [k, v] : other.amounts_)
    if (v < out.units(k)) out.set_units(k, v);
  return out;
}
Resources Resources::max(const Resources& other) const {
  Resources out = *this;
  for (const auto& [k, v] : other.amounts_)
    if (v > out.units(k)) out.set_units(k, v);
  return out;
}

Resources Resources::scale(double factor) const {
  Resources out = *this;
  for (auto& [k, v] : out.amounts_) v = static_cast<amount>(std::llround(static_cast<double>(v) * factor));
  return out;
}

double Resources::scaled_distance(const Resources& other) const {
  constexpr double mem_scaling = 1.0 / (8 * GiB);
  constexpr double cpu_scaling = 1.0;
  return std::fabs(get("mem") - other.get("mem")) * mem_scaling +
         std::fabs(get("cpu") - other.get("cpu")) * cpu_scaling;
}

bool Resources::equal(const Resources& other) const {
  for (const auto& [k, v] : amounts_)
    if (other.units(k) != v) return false;
  for (const auto& [k, v] : other.amounts_)
    if (units(k) != v) return false;
  return true;
}

// reflow's String: mem, cpu and disk always (when any of them is non-zero),
// then every other non-zero label by name.
std::string Resources::to_string() const {
  std::string out = "{";
  if (units("mem") != 0 || units("cpu") != 0 || units("disk") != 0)
    out += "mem:" + format_size(get("mem")) + " cpu:" + format_number(get("cpu")) + " disk:" + format_size(get("disk"));
  for (const auto& [k, v] : amounts_) {
    if (k == "mem" || k == "cpu" || k == "disk" || v == 0) continue;
    out += " " + k + ":" + format_number(value_of(v));
  }
  return out + "}";
}

// As reflow's data.Size: whole bytes (truncated, it is an int64 there) below
// 1 KiB, else one decimal in the largest unit that fits; the sign is kept.
std::string format_size(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int i = 0;
  double v = std::trunc(bytes);
  while (std::fabs(v) >= 1024 && i < 6) {
    v /= 1024;
    ++i;
  }
  char buf[64];
  if (i == 0)
    std::snprintf(buf, sizeof buf, "%lldB", static_cast<long long>(v));
  else
    std::snprintf(buf, sizeof buf, "%.1f%s", v, units[i]);
  return buf;
}

int64_t copies_that_fit(const Resources& available, const Resources& min) {
  int64_t copies = -1;
  for (const auto& [key, need] : min.amounts()) {
    if (need <= 0) continue;
    int64_t here = available.units(key) / need;
    copies = copies < 0 ? here : std::min(copies, here);
  }
  return std::max<int64_t>(copies, 0);
}

}  // namespace poolbus

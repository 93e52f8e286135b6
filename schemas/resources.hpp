// Resources: labelled amounts (cpu in cores, mem and disk in bytes, any other
// label a plain count), reflow's reflow.Resources.
//
// Invariant: amounts are fixed-point integers in thousandths of a unit
// (`units_per_one`), so any sequence of add/sub returns exactly to where it
// started: a pool's availability never drifts from its total. Doubles appear
// only at the edges (wire, scale, distance). The amounts are one vector
// sorted by label, each label once: a pool has a handful of labels, and every
// call copies, adds and compares them, which a tree of nodes made costly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "schemas/outcome.hpp"

namespace poolbus {

class Resources {
 public:
  using amount = int64_t;  // thousandths of a unit
  using entry = std::pair<std::string, amount>;
  using amount_list = std::vector<entry>;  // sorted by label, each label once
  static constexpr amount units_per_one = 1000;
  // Largest amount accepted from outside: ~9.2e15 units, i.e. 8 PiB of mem.
  static constexpr double max_value = 9.0e15;

  Resources() = default;
  // Literal construction for tests and code: {{"cpu", 4}, {"mem", 8 * GiB}}.
  // Values must be finite and within range (asserted by rounding; use parse for input).
  Resources(std::initializer_list<std::pair<const std::string, double>> values);

  // Why an outside value is no amount ("not finite", "negative", "too
  // large"), or null when it is one: the one rule every decoder applies.
  static const char* value_problem(double value);
  // Validating construction from outside values: finite, >= 0, <= max_value.
  static outcome<Resources> from_values(const std::map<std::string, double>& values);

  static double value_of(amount units) { return static_cast<double>(units) / units_per_one; }

  double get(const std::string& key) const;  // 0 when absent
  amount units(const std::string& key) const;
  void set(const std::string& key, double value);
  void set_units(const std::string& key, amount units);
  bool has(const std::string& key) const { return find(key) != nullptr; }
  bool empty() const { return amounts_.empty(); }
  // True when every amount is zero (or there are none).
  bool is_zero() const;
  const amount_list& amounts() const { return amounts_; }
  std::map<std::string, double> values() const;

  // reflow: r.Available(s): whether r has enough of every resource in s.
  bool available(const Resources& need) const;
  // reflow: Sub/Add over the union of keys (missing keys count as 0).
  Resources sub(const Resources& other) const;
  Resources add(const Resources& other) const;
  // reflow: Min/Max(r, other): r's keys keep their value unless other's
  // (a missing one counting as 0) is smaller/larger; so not symmetric.
  Resources min(const Resources& other) const;
  Resources max(const Resources& other) const;
  // reflow: Scale(s, factor): every amount multiplied by factor.
  Resources scale(double factor) const;
  // reflow: ScaledDistance: |Δmem| / 8 GiB + |Δcpu|.
  double scaled_distance(const Resources& other) const;
  // Same amounts for every key; a missing key equals 0.
  bool equal(const Resources& other) const;
  friend bool operator==(const Resources& a, const Resources& b) { return a.equal(b); }
  friend bool operator!=(const Resources& a, const Resources& b) { return !a.equal(b); }

  // reflow's human-readable form: {mem:8.0GiB cpu:4 disk:100.0GiB gpu:1};
  // mem/cpu/disk unless all three are 0, other labels only when non-zero.
  std::string to_string() const;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, Resources& x) {
    return f(x.amounts_);
  }

 private:
  const amount* find(const std::string& key) const;
  amount_list amounts_;
};

// How many allocs of `min` fit side by side in `available` (0 when min is zero).
int64_t copies_that_fit(const Resources& available, const Resources& min);

constexpr double KiB = 1024.0;
constexpr double MiB = 1024.0 * KiB;
constexpr double GiB = 1024.0 * MiB;
constexpr double TiB = 1024.0 * GiB;

// "8.0GiB"-style size, as reflow's data.Size prints.
std::string format_size(double bytes);

}  // namespace poolbus

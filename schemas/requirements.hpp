// Requirements: reflow's reflow.Requirements, a minimum amount of resources
// plus a width. Width 0 is a "narrow" request (min is exactly what is needed);
// width w > 0 asks for up to (1 + w) times min.
// Invariant: width >= 0; max() is always min scaled by (1 + width).
#pragma once

#include <cstdint>
#include <string>

#include "schemas/resources.hpp"

namespace poolbus {

struct Requirements {
  Resources min;
  int64_t width = 0;

  // reflow Wide: more than the minimum would be useful.
  bool wide() const { return width > 0; }
  // reflow Max: the most this request can use, min * (1 + width).
  Resources max() const;
  // reflow AddSerial: a step that runs after the others needs only the larger of the two.
  void add_serial(const Resources& step);
  // reflow AddParallel: a step that runs beside the others raises min to the larger
  // of the two and widens the request by one, except when it is the first step
  // (an empty min): one step alone is not parallel.
  void add_parallel(const Resources& step);
  // reflow Add: min becomes the larger of the two; widths add up.
  void add(const Requirements& other);
  bool equal(const Requirements& other) const { return min.equal(other.min) && width == other.width; }
  friend bool operator==(const Requirements& a, const Requirements& b) { return a.equal(b); }
  friend bool operator!=(const Requirements& a, const Requirements& b) { return !a.equal(b); }
  // reflow String: min, followed by "#<width>" when width > 1.
  std::string to_string() const;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, Requirements& x) {
    return f(x.min, x.width);
  }
};

}  // namespace poolbus

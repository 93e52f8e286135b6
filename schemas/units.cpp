#include "schemas/units.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <utility>

namespace poolbus {
namespace {

pool_error bad(std::string_view what, std::string_view text, std::string_view problem) {
  return make_pool_error(error_kind::invalid,
                         std::string(what) + " \"" + std::string(text) + "\": " + std::string(problem));
}

// Reads a non-negative decimal number ("4", "1.5", ".5") at the front of
// `rest`, advancing it. False when there is none.
bool take_number(std::string_view& rest, double* out) {
  size_t end = 0;
  bool digits = false;
  while (end < rest.size() && std::isdigit(static_cast<unsigned char>(rest[end]))) ++end, digits = true;
  if (end < rest.size() && rest[end] == '.') {
    ++end;
    while (end < rest.size() && std::isdigit(static_cast<unsigned char>(rest[end]))) ++end, digits = true;
  }
  if (!digits) return false;
  *out = std::strtod(std::string(rest.substr(0, end)).c_str(), nullptr);
  rest.remove_prefix(end);
  return true;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

std::string format_plain(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

outcome<int64_t> parse_duration_ms(std::string_view text) {
  static const std::pair<std::string_view, double> units[] = {
      {"ms", 1.0}, {"s", 1000.0}, {"m", 60000.0}, {"h", 3600000.0}};
  std::string_view rest = trim(text);
  if (rest.empty()) return bad("duration", text, "empty");
  double total = 0;
  while (!rest.empty()) {
    double number = 0;
    if (!take_number(rest, &number)) return bad("duration", text, "expected a number");
    size_t unit_end = 0;
    while (unit_end < rest.size() && std::isalpha(static_cast<unsigned char>(rest[unit_end]))) ++unit_end;
    std::string_view unit = rest.substr(0, unit_end);
    if (unit.empty()) return bad("duration", text, "missing unit (ms, s, m or h)");
    bool known = false;
    for (const auto& [name, ms] : units)
      if (name == unit) {
        total += number * ms;
        known = true;
      }
    if (!known) return bad("duration", text, "unknown unit \"" + std::string(unit) + "\"");
    rest.remove_prefix(unit_end);
  }
  if (total > 9.0e15) return bad("duration", text, "too long");
  return static_cast<int64_t>(std::llround(total));
}

outcome<double> parse_size_bytes(std::string_view text) {
  static const std::pair<std::string_view, double> units[] = {{"B", 1.0},   {"KiB", KiB}, {"MiB", MiB},
                                                              {"GiB", GiB}, {"TiB", TiB}, {"KB", 1e3},
                                                              {"MB", 1e6},  {"GB", 1e9},  {"TB", 1e12}};
  std::string_view rest = trim(text);
  if (rest.empty()) return bad("size", text, "empty");
  double number = 0;
  if (!take_number(rest, &number)) return bad("size", text, "expected a number");
  if (rest.empty()) return number;
  for (const auto& [name, scale] : units)
    if (name == rest) return number * scale;
  return bad("size", text, "unknown unit \"" + std::string(rest) + "\" (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)");
}

outcome<Resources> parse_resources(std::string_view text) {
  std::string_view rest = trim(text);
  if (rest.empty()) return bad("resources", text, "empty");
  std::map<std::string, double> values;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view part = trim(rest.substr(0, comma));
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) return bad("resources", part, "expected name=value");
    std::string key(trim(part.substr(0, eq)));
    std::string_view value_text = trim(part.substr(eq + 1));
    if (key.empty()) return bad("resources", part, "empty name");
    if (values.count(key)) return bad("resources", part, "\"" + key + "\" given twice");
    double value = 0;
    if (key == "mem" || key == "disk") {
      auto size = parse_size_bytes(value_text);
      if (!size) return bad("resources", part, size.error().message);
      value = *size;
    } else {
      std::string_view number_text = value_text;
      if (!take_number(number_text, &value) || !number_text.empty()) return bad("resources", part, "not a number");
    }
    if (value > Resources::max_value) return bad("resources", part, "too large");
    values[key] = value;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  auto out = Resources::from_values(values);
  if (!out) return bad("resources", text, out.error().message);
  return out;
}

std::string format_bytes(double bytes) {
  static const char* names[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  double v = bytes;
  while (std::fabs(v) >= 1024 && unit < 6) {
    v /= 1024;
    ++unit;
  }
  char buf[64];
  if (unit == 0)
    std::snprintf(buf, sizeof buf, "%lldB", static_cast<long long>(v));
  else if (std::fabs(v) >= 100)
    std::snprintf(buf, sizeof buf, "%.0f%s", v, names[unit]);
  else
    std::snprintf(buf, sizeof buf, "%.1f%s", v, names[unit]);
  return buf;
}

std::string format_resources(const Resources& resources) {
  if (resources.empty()) return "-";
  std::string out;
  auto append = [&](const std::string& key, const std::string& value) {
    if (!out.empty()) out += "  ";
    out += key + " " + value;
  };
  if (resources.has("cpu")) append("cpu", format_plain(resources.get("cpu")));
  if (resources.has("mem")) append("mem", format_bytes(resources.get("mem")));
  if (resources.has("disk")) append("disk", format_bytes(resources.get("disk")));
  for (const auto& [key, _] : resources.amounts()) {
    if (key == "cpu" || key == "mem" || key == "disk") continue;
    append(key, format_plain(resources.get(key)));
  }
  return out;
}

}  // namespace poolbus

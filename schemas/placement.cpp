#include "schemas/placement.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace poolbus {
namespace {

bool label_char(char c, std::string_view extra) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || extra.find(c) != std::string_view::npos;
}

std::optional<std::string> label_text_problem(std::string_view what, std::string_view text, std::size_t max,
                                              std::string_view extra) {
  if (text.empty()) return std::string(what) + " is empty";
  if (text.size() > max) return std::string(what) + " is longer than " + std::to_string(max) + " bytes";
  for (char c : text)
    if (!label_char(c, extra))
      return std::string(what) + " \"" + std::string(text) + "\" may hold only letters, digits and " +
             std::string(extra);
  return std::nullopt;
}

// "KEY=REST" split and the key checked.
outcome<std::pair<std::string, std::string>> split_key(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos)
    return pool_error{error_kind::invalid, "\"" + std::string(text) + "\": not KEY=VALUE"};
  auto key = text.substr(0, eq);
  if (auto problem = label_key_problem(key)) return pool_error{error_kind::invalid, *problem};
  return std::make_pair(std::string(key), std::string(text.substr(eq + 1)));
}

constexpr std::array<std::pair<demand_event_kind, std::string_view>, 3> demand_names{{
    {demand_event_kind::queued, "queued"},
    {demand_event_kind::placed, "placed"},
    {demand_event_kind::expired, "expired"},
}};

}  // namespace

bool satisfies(const PoolLabels& labels, const Constraints& constraints) {
  for (const auto& [key, accepted] : constraints) {
    auto label = labels.find(key);
    if (label == labels.end()) return false;
    if (std::find(accepted.begin(), accepted.end(), label->second) == accepted.end()) return false;
  }
  return true;
}

std::optional<std::string> label_key_problem(std::string_view key) {
  if (auto problem = label_text_problem("label key", key, 63, "-_./")) return problem;
  if (std::isalnum(static_cast<unsigned char>(key.front())) == 0)
    return "label key \"" + std::string(key) + "\" must start with a letter or digit";
  return std::nullopt;
}

std::optional<std::string> label_value_problem(std::string_view value) {
  return label_text_problem("label value", value, 255, "-_./:@+");
}

outcome<std::pair<std::string, std::string>> parse_label(std::string_view text) {
  auto split = split_key(text);
  if (!split) return split;
  if (auto problem = label_value_problem(split->second)) return pool_error{error_kind::invalid, *problem};
  return split;
}

outcome<std::pair<std::string, std::vector<std::string>>> parse_constraint(std::string_view text) {
  auto split = split_key(text);
  if (!split) return split.error();
  std::vector<std::string> values;
  std::string_view rest = split->second;
  for (;;) {
    auto comma = rest.find(',');
    auto value = rest.substr(0, comma);
    if (auto problem = label_value_problem(value)) return pool_error{error_kind::invalid, *problem};
    values.emplace_back(value);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return std::make_pair(split->first, std::move(values));
}

pool_error nothing_asked(const std::string& what, const Resources& r) {
  return pool_error{error_kind::precondition,
                    what + " " + r.to_string() +
                        " is empty or rounds to zero in every resource (resources count in thousandths of a unit)"};
}

std::optional<pool_error> placement_refusal(const placement& p) {
  if (p.width < 0) return pool_error{error_kind::invalid, "allocate: width must be >= 0"};
  if (p.count < 1) return pool_error{error_kind::invalid, "allocate: count must be >= 1"};
  if (p.wait_ms < 0) return pool_error{error_kind::invalid, "allocate: wait_ms must be >= 0"};
  if (p.wait_ms > max_wait_ms) return pool_error{error_kind::invalid, "allocate: wait_ms is at most 24 h"};
  for (const auto& [key, values] : p.constraints)
    if (values.empty()) return pool_error{error_kind::invalid, "allocate: constraint " + key + " lists no value"};
  if (p.min.is_zero()) return nothing_asked("allocate: min", p.min);
  return std::nullopt;
}

std::string_view to_string(demand_event_kind kind) {
  for (const auto& [k, name] : demand_names)
    if (k == kind) return name;
  return "unknown";
}

std::optional<demand_event_kind> demand_event_kind_from_string(std::string_view name) {
  for (const auto& [k, n] : demand_names)
    if (n == name) return k;
  return std::nullopt;
}

}  // namespace poolbus

#include "schemas/announcements.hpp"

#include <array>
#include <utility>

namespace poolbus {
namespace {

constexpr std::array<std::pair<alloc_event_kind, std::string_view>, 4> alloc_event_names{{
    {alloc_event_kind::created, "created"},
    {alloc_event_kind::freed, "freed"},
    {alloc_event_kind::expired, "expired"},
    {alloc_event_kind::collected, "collected"},
}};

constexpr std::array<std::pair<pool_event_kind, std::string_view>, 5> pool_event_names{{
    {pool_event_kind::joined, "joined"},
    {pool_event_kind::left, "left"},
    {pool_event_kind::stopped, "stopped"},
    {pool_event_kind::draining, "draining"},
    {pool_event_kind::undrained, "undrained"},
}};

template <class Kind, size_t N>
std::string_view name_of(const std::array<std::pair<Kind, std::string_view>, N>& names, Kind kind) {
  for (const auto& [k, name] : names)
    if (k == kind) return name;
  return "unknown";
}

template <class Kind, size_t N>
std::optional<Kind> kind_of(const std::array<std::pair<Kind, std::string_view>, N>& names, std::string_view name) {
  for (const auto& [k, n] : names)
    if (n == name) return k;
  return std::nullopt;
}

std::string topic(std::string_view prefix, std::string_view pool) {
  std::string out(prefix);
  out += pool;
  return out;
}

}  // namespace

std::string_view to_string(alloc_event_kind kind) { return name_of(alloc_event_names, kind); }
std::optional<alloc_event_kind> alloc_event_kind_from_string(std::string_view name) {
  return kind_of(alloc_event_names, name);
}
std::string_view to_string(pool_event_kind kind) { return name_of(pool_event_names, kind); }
std::optional<pool_event_kind> pool_event_kind_from_string(std::string_view name) {
  return kind_of(pool_event_names, name);
}

bool supersedes(const offer_announcement& newer, const offer_announcement& held) {
  return newer.run != held.run || newer.seq >= held.seq;
}

std::string offers_topic(std::string_view pool) { return topic("offers.", pool); }
std::string allocs_topic(std::string_view pool) { return topic("allocs.", pool); }
std::string pools_topic(std::string_view pool) { return topic("pools.", pool); }

}  // namespace poolbus

#include "dash/query_string.hpp"

#include "dash/utf8_text.hpp"

namespace poolbus {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

outcome<std::string> decode_component(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      const int hi = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
      const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) return make_pool_error(error_kind::invalid, "query: bad %-escape");
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return make_pool_error(error_kind::invalid, "query: control character");
    out += c;
  }
  if (!valid_utf8(out)) return make_pool_error(error_kind::invalid, "query: not UTF-8");
  return out;
}

}  // namespace

outcome<std::map<std::string, std::string>> parse_query(std::string_view target, const std::set<std::string>& known) {
  std::map<std::string, std::string> out;
  const size_t mark = target.find('?');
  if (mark == std::string_view::npos) return out;
  std::string_view query = target.substr(mark + 1);
  if (query.size() > max_query_bytes)
    return make_pool_error(error_kind::invalid, "query: over " + std::to_string(max_query_bytes) + " bytes");
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto name = decode_component(pair.substr(0, eq));
    if (!name) return name.error();
    auto value = decode_component(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!value) return value.error();
    if (!known.count(*name)) return make_pool_error(error_kind::invalid, "query: unknown parameter \"" + *name + "\"");
    if (!out.emplace(std::move(*name), std::move(*value)).second)
      return make_pool_error(error_kind::invalid, "query: a parameter given twice");
  }
  return out;
}

}  // namespace poolbus

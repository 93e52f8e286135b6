// Fuzz target: msgpack_to_json (`poolctl --json`, `watch`). Invariants: no
// crash; a failure is `invalid`; a success is always one valid JSON value
// (checked by the strict RFC 8259 reader below) with nothing after it.
#include <cctype>
#include <cstring>

#include "fuzz_invariants.hpp"
#include "schemas/json.hpp"

using namespace poolbus;

namespace {

// A strict JSON reader that only says whether `text` is exactly one value.
class json_checker {
 public:
  explicit json_checker(std::string_view text) : text_(text) {}

  bool whole_value() {
    skip_space();
    if (!value(0)) return false;
    skip_space();
    return pos_ == text_.size();
  }

 private:
  bool value(int depth) {
    if (depth > 512 || pos_ >= text_.size()) return false;
    switch (text_[pos_]) {
      case '{': return object(depth);
      case '[': return array(depth);
      case '"': return string();
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number();
    }
  }

  bool object(int depth) {
    ++pos_;
    skip_space();
    if (take('}')) return true;
    do {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '"' || !string()) return false;
      skip_space();
      if (!take(':')) return false;
      skip_space();
      if (!value(depth + 1)) return false;
      skip_space();
    } while (take(','));
    return take('}');
  }

  bool array(int depth) {
    ++pos_;
    skip_space();
    if (take(']')) return true;
    do {
      skip_space();
      if (!value(depth + 1)) return false;
      skip_space();
    } while (take(','));
    return take(']');
  }

  bool string() {
    ++pos_;
    while (pos_ < text_.size()) {
      auto c = static_cast<unsigned char>(text_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (pos_ >= text_.size()) return false;
      char escape = text_[pos_++];
      if (escape == 'u') {
        for (int i = 0; i < 4; ++i, ++pos_)
          if (pos_ >= text_.size() || !std::isxdigit(static_cast<unsigned char>(text_[pos_]))) return false;
      } else if (std::strchr("\"\\/bfnrt", escape) == nullptr || escape == '\0') {
        return false;
      }
    }
    return false;
  }

  bool number() {
    take('-');
    if (take('0')) {
    } else if (!digits()) {
      return false;
    }
    if (take('.') && !digits()) return false;
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (!take('+')) take('-');
      if (!digits()) return false;
    }
    return true;
  }

  bool digits() {
    size_t start = pos_;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    return pos_ > start;
  }

  bool literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool take(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void skip_space() {
    while (pos_ < text_.size() && std::strchr(" \t\r\n", text_[pos_]) != nullptr && text_[pos_] != '\0') ++pos_;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto json = msgpack_to_json(fuzz::bytes_of(data, size));
  if (!json) {
    fuzz::check_invalid(json.error());
    return 0;
  }
  FUZZ_CHECK(json_checker(*json).whole_value(), "not valid JSON: " + json->substr(0, 200));
  return 0;
}

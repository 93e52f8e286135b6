// sha256: the SHA-256 digest of FIPS 180-4, fed incrementally (update) and
// read once (finish). Used for taskdb alloc ids and content-addressed files.
// Invariant: finish() is called at most once; update after finish is a bug.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace poolbus {

class sha256 {
 public:
  using digest = std::array<uint8_t, 32>;

  sha256();
  void update(const void* bytes, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  digest finish();
  std::string finish_hex();  // 64 lower-case hex digits

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> block_{};
  size_t block_used_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lower-case hex of SHA-256(bytes).
std::string sha256_hex(std::string_view bytes);

}  // namespace poolbus

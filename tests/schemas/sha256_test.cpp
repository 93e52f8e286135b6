#include <catch2/catch.hpp>

#include "schemas/alloc.hpp"
#include "schemas/sha256.hpp"

using namespace poolbus;

TEST_CASE("sha256: NIST FIPS 180-4 example vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  sha256 million;
  std::string thousand(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(thousand);
  CHECK(million.finish_hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: any split of the input gives the same digest") {
  std::string text;
  for (int i = 0; i < 300; ++i) text += static_cast<char>(i * 7 + 3);
  std::string whole = sha256_hex(text);
  for (size_t chunk : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 128u, 299u}) {
    sha256 hasher;
    for (size_t at = 0; at < text.size(); at += chunk) hasher.update(std::string_view(text).substr(at, chunk));
    CHECK(hasher.finish_hex() == whole);
  }
  // Lengths around the padding boundary (55/56/64 bytes) match one-shot hashing.
  CHECK(sha256_hex(std::string(55, 'a')) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  CHECK(sha256_hex(std::string(56, 'a')) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  CHECK(sha256_hex(std::string(64, 'a')) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST_CASE("sha256: taskdb_alloc_id is sha256:<hex> of the alloc URI") {
  CHECK(taskdb_alloc_id("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(taskdb_alloc_id("w1/a1") != taskdb_alloc_id("w1/a2"));
  CHECK(taskdb_alloc_id("w1/a1").size() == 7 + 64);
}

// content_repository: an alloc's content-addressed store of exec outputs, files
// at <alloc dir>/repo/sha256/<hex>. Invariant: a file named <hex> holds exactly
// the bytes whose SHA-256 is <hex>; it appears whole (written to a temp file,
// then renamed) and is never modified after.
#pragma once

#include <string>

#include "schemas/exec.hpp"
#include "store/exec_records.hpp"

namespace poolbus {

class content_repository {
 public:
  explicit content_repository(std::string root);

  // Hashes the file at `path` into the repository; its digest and size.
  // not_exist when `path` is missing or not a regular file.
  outcome<ExecResultFile> put_file(const std::string& path);
  // Up to max_bytes of the object `digest` ("sha256:<hex>") from `offset`;
  // not_exist when the repository has no such object.
  outcome<file_chunk> read(const std::string& digest, int64_t offset, int64_t max_bytes) const;
  std::string path_of(const std::string& digest) const;

 private:
  std::string root_;
};

}  // namespace poolbus

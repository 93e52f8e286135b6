// content_repository: an alloc's content-addressed store of exec outputs, files
// at <alloc dir>/repo/sha256/<hex>. Invariant: a file named <hex> holds exactly
// the bytes whose SHA-256 is <hex>; it appears whole (written to a temp file,
// then renamed) and is never modified after.
#pragma once

#include <string>

#include "schemas/exec.hpp"
#include "store/exec_records.hpp"

namespace poolbus {

// Bytes that the tree at `root` holds: a regular file counts its size even
// where sparse (it would cost that much as an output), a directory its blocks.
// Never follows a symlink; stops counting past `stop_at` (enough to say "over").
int64_t bytes_under(const std::string& root, int64_t stop_at);

class content_repository {
 public:
  explicit content_repository(std::string root);

  // Hashes the file `relative` beneath `dir` (an exec's working directory)
  // into the repository; its digest and size. The path is walked component by
  // component without following a symlink anywhere, the file is opened without
  // blocking (a FIFO cannot stall the caller) and must be a regular file, owned
  // by `owner_uid` when that is >= 0. not_exist when it is missing or not such a
  // file; precondition (message "disk") when it is larger than max_bytes (0:
  // unbounded). Messages name `relative`, never a host path. Blocking file I/O:
  // call it off any actor's thread.
  outcome<ExecResultFile> put_beneath(const std::string& dir, const std::string& relative, int64_t owner_uid,
                                      int64_t max_bytes);
  // Up to max_bytes of the object `digest` ("sha256:<hex>") from `offset`;
  // not_exist when the repository has no such object.
  outcome<file_chunk> read(const std::string& digest, int64_t offset, int64_t max_bytes) const;
  std::string path_of(const std::string& digest) const;

 private:
  std::string root_;
};

}  // namespace poolbus

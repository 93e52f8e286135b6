// exec_records: the durable records of one alloc's execs, one file per exec at
// <alloc dir>/execs/e-<id>/record (beside the exec's working directory and its
// stdout/stderr), so they live and die with the alloc's directory and survive a
// worker restart. Invariant: a record file is replaced whole (temp + fsync +
// rename), so a crash leaves the old record or the new one, never a mix.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "schemas/exec.hpp"

namespace poolbus {

struct exec_record {
  ExecInspect inspect;
  ExecConfig config;
  int64_t pid = 0;          // the process (group leader) while it runs; 0 = none
  int64_t start_time = -1;  // its /proc start time, to recognise it after a restart
};

class exec_records {
 public:
  explicit exec_records(std::string alloc_dir);

  const std::string& alloc_dir() const { return alloc_dir_; }
  // <alloc dir>/execs/e-<id>: the exec's own directory (ids are checked, so
  // the "e-" prefix keeps even "." and ".." plain names).
  std::string exec_dir(const std::string& id) const;
  std::string work_dir(const std::string& id) const { return exec_dir(id) + "/work"; }
  std::string log_path(const std::string& id, const std::string& stream) const { return exec_dir(id) + "/" + stream; }

  // Creates the exec's directory and its empty working directory.
  outcome<void> create(const std::string& id);
  outcome<void> save(const exec_record& record);
  // Every readable record, oldest first; unreadable ones are listed in *skipped.
  std::vector<exec_record> load_all(std::vector<std::string>* skipped = nullptr) const;
  // Removes the exec's directory with its logs and files.
  outcome<void> remove(const std::string& id);

 private:
  std::string alloc_dir_;
};

std::string encode_exec_record(const exec_record& record);
outcome<exec_record> decode_exec_record(std::string_view body);

// Up to max_bytes of the file at `path` from `offset`: (bytes, reached the end).
struct file_chunk {
  std::string data;
  bool at_end = false;
};
outcome<file_chunk> read_file_chunk(const std::string& path, int64_t offset, int64_t max_bytes);

}  // namespace poolbus

// Execs inside allocs (protocol.md "Execs inside allocs", reflow's Executor):
// ExecConfig (what to run), ExecInspect (what became of it), the exec_call an
// exec op is carried in from client to alloc, and its exec_answer. Plain data
// and their MessagePack codecs; no CAF. Invariant: a decoded exec id is 1-128
// bytes of [A-Za-z0-9-_.:], and a decoded config has a non-empty argv.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/codec.hpp"

namespace poolbus {

constexpr size_t max_exec_id_bytes = 128;
// The most one exec_logs / repo_get reply carries (bin limit of the decoder is 1 MiB).
constexpr int64_t max_exec_chunk_bytes = 512 * 1024;
constexpr int64_t default_exec_chunk_bytes = 65536;
// The longest exec_wait: 24 h. A longer timeout_ms is `invalid` (no deadline
// sum can then overflow; a client that waits longer asks again).
constexpr int64_t max_exec_wait_ms = 24LL * 60 * 60 * 1000;

// `invalid` unless 1-128 bytes of letters, digits, '-', '_', '.', ':'.
outcome<void> check_exec_id(std::string_view id);

struct ExecConfig {
  std::vector<std::string> cmd;  // argv, non-empty
  std::map<std::string, std::string> env;
  Resources resources;
  std::vector<std::string> outputs;  // relative paths inside the exec's directory

  friend bool operator==(const ExecConfig& a, const ExecConfig& b) {
    return a.cmd == b.cmd && a.env == b.env && a.resources == b.resources && a.outputs == b.outputs;
  }
  friend bool operator!=(const ExecConfig& a, const ExecConfig& b) { return !(a == b); }
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, ExecConfig& x) {
    return f(x.cmd, x.env, x.resources, x.outputs);
  }
};

enum class exec_state : uint8_t { waiting, running, complete, lost };
std::string_view to_string(exec_state state);
std::optional<exec_state> exec_state_from_string(std::string_view name);

struct ExecProfile {
  int64_t max_rss_bytes = 0;
  int64_t cpu_user_ms = 0;
  int64_t cpu_sys_ms = 0;

  friend bool operator==(const ExecProfile& a, const ExecProfile& b) {
    return a.max_rss_bytes == b.max_rss_bytes && a.cpu_user_ms == b.cpu_user_ms && a.cpu_sys_ms == b.cpu_sys_ms;
  }
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, ExecProfile& x) {
    return f(x.max_rss_bytes, x.cpu_user_ms, x.cpu_sys_ms);
  }
};

struct ExecResultFile {
  std::string digest;  // "sha256:<hex>"
  int64_t size = 0;

  friend bool operator==(const ExecResultFile& a, const ExecResultFile& b) {
    return a.digest == b.digest && a.size == b.size;
  }
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, ExecResultFile& x) {
    return f(x.digest, x.size);
  }
};

// Optional wire fields are flagged (has_*) rather than std::optional, so the
// type stays a CAF message type.
struct ExecInspect {
  std::string id;
  std::string alloc;  // the alloc's URI
  exec_state state = exec_state::waiting;
  bool has_exit_code = false;
  int64_t exit_code = 0;
  bool has_signal = false;
  int64_t signal = 0;
  std::string error;  // empty = none
  int64_t created_ms = 0;
  int64_t started_ms = 0;   // 0 = not started
  int64_t finished_ms = 0;  // 0 = not finished
  Resources resources;
  bool has_profile = false;
  ExecProfile profile;
  bool has_result = false;
  std::map<std::string, ExecResultFile> files;  // result.files

  friend bool operator==(const ExecInspect& a, const ExecInspect& b) {
    return a.id == b.id && a.alloc == b.alloc && a.state == b.state && a.has_exit_code == b.has_exit_code &&
           a.exit_code == b.exit_code && a.has_signal == b.has_signal && a.signal == b.signal && a.error == b.error &&
           a.created_ms == b.created_ms && a.started_ms == b.started_ms && a.finished_ms == b.finished_ms &&
           a.resources == b.resources && a.has_profile == b.has_profile && a.profile == b.profile &&
           a.has_result == b.has_result && a.files == b.files;
  }
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, ExecInspect& x) {
    return f(x.id, x.alloc, x.state, x.has_exit_code, x.exit_code, x.has_signal, x.signal, x.error, x.created_ms,
             x.started_ms, x.finished_ms, x.resources, x.has_profile, x.profile, x.has_result, x.files);
  }
};

// The exec ops of the client API, as one call routed by its alloc.
enum class exec_op : uint8_t { put, inspect, list, wait, logs, remove, repo_get };
// Wire op names: exec_put, exec_inspect, execs, exec_wait, exec_logs, exec_remove, repo_get.
std::string_view to_string(exec_op op);
std::optional<exec_op> exec_op_from_string(std::string_view name);

struct exec_call {
  exec_op op = exec_op::inspect;
  std::string alloc;                             // client API: the alloc URI; worker protocol: the local id
  std::string exec;                              // every op but list and repo_get
  ExecConfig config;                             // put
  std::string stream = "stdout";                 // logs: "stdout" | "stderr"
  int64_t offset = 0;                            // logs, repo_get
  int64_t max_bytes = default_exec_chunk_bytes;  // logs, repo_get
  int64_t timeout_ms = 0;                        // wait
  std::string digest;                            // repo_get: "sha256:<hex>"

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, exec_call& x) {
    return f(x.op, x.alloc, x.exec, x.config, x.stream, x.offset, x.max_bytes, x.timeout_ms, x.digest);
  }
};
// A call of `op` on an exec of an alloc (client API: `alloc` is the alloc URI).
exec_call make_exec_call(exec_op op, std::string alloc, std::string exec = "");


// What an exec op answers; `kind` says which fields are its results.
struct exec_answer {
  enum class shape : uint8_t { none, one, many, chunk };
  shape kind = shape::none;
  ExecInspect exec;                // one: put, inspect, wait
  std::vector<ExecInspect> execs;  // many: execs
  std::string data;                // chunk: logs, repo_get (bytes)
  int64_t offset = 0;              // chunk: the next offset
  bool eof = false;                // chunk

  static exec_answer of(ExecInspect e) {
    exec_answer a;
    a.kind = shape::one;
    a.exec = std::move(e);
    return a;
  }
  static exec_answer of(std::vector<ExecInspect> list) {
    exec_answer a;
    a.kind = shape::many;
    a.execs = std::move(list);
    return a;
  }
  static exec_answer chunk(std::string bytes, int64_t next_offset, bool eof) {
    exec_answer a;
    a.kind = shape::chunk;
    a.data = std::move(bytes);
    a.offset = next_offset;
    a.eof = eof;
    return a;
  }
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, exec_answer& x) {
    return f(x.kind, x.exec, x.execs, x.data, x.offset, x.eof);
  }
};

// Topic `execs.<pool>`: an exec's life event.
enum class exec_event_kind : uint8_t { started, completed, lost };
std::string_view to_string(exec_event_kind kind);
struct exec_event {
  std::string pool;
  exec_event_kind event = exec_event_kind::started;
  ExecInspect exec;
  int64_t ts_ms = 0;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, exec_event& x) {
    return f(x.pool, x.event, x.exec, x.ts_ms);
  }
};
std::string execs_topic(std::string_view pool);
std::string encode_exec_event(const exec_event& e);
outcome<exec_event> decode_exec_event(std::string_view body);

// Whole bodies (the exec records a worker keeps on disk, tests).
std::string encode_exec_inspect(const ExecInspect& e);
outcome<ExecInspect> decode_exec_inspect(std::string_view body);
std::string encode_exec_config(const ExecConfig& c);
outcome<ExecConfig> decode_exec_config(std::string_view body);

namespace codec {
template <bool writing>
class map_fields;
void pack_exec_config(packer& pk, const ExecConfig& config);
ExecConfig read_exec_config(const msgpack::object& object, const std::string& path);
void pack_exec_inspect(packer& pk, const ExecInspect& exec);
ExecInspect read_exec_inspect(const msgpack::object& object, const std::string& path);

// The argument fields of an exec call other than "alloc" (which the client API
// and the worker protocol read differently): listing them into a map being
// written (map_writer.hpp), and reading them for `op` (strictly: `invalid`
// naming the field).
template <bool writing>
void pack_exec_call_fields(map_fields<writing>& out, const exec_call& call);
void read_exec_call_fields(const map_view& view, exec_call& call);

// The result fields of an answer: listing them, and reading whichever a
// reply carries ("exec" -> one, "execs" -> many, "data" -> chunk).
template <bool writing>
void pack_exec_answer_fields(map_fields<writing>& out, const exec_answer& answer);
void read_exec_answer_fields(const map_view& view, exec_answer& answer);
}  // namespace codec

}  // namespace poolbus

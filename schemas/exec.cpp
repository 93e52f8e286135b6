#include "schemas/exec.hpp"

#include <array>
#include <utility>

namespace poolbus {
namespace {

using codec::map_view;
using codec::pack_string;
using codec::packer;

constexpr std::array<std::pair<exec_op, std::string_view>, 7> op_names{{
    {exec_op::put, "exec_put"},
    {exec_op::inspect, "exec_inspect"},
    {exec_op::list, "execs"},
    {exec_op::wait, "exec_wait"},
    {exec_op::logs, "exec_logs"},
    {exec_op::remove, "exec_remove"},
    {exec_op::repo_get, "repo_get"},
}};

constexpr std::array<std::pair<exec_state, std::string_view>, 4> state_names{{
    {exec_state::waiting, "waiting"},
    {exec_state::running, "running"},
    {exec_state::complete, "complete"},
    {exec_state::lost, "lost"},
}};

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == ':';
}

bool is_hex_digest(std::string_view digest) {
  if (digest.size() != 7 + 64 || digest.substr(0, 7) != "sha256:") return false;
  for (char c : digest.substr(7))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::vector<std::string> read_strings(const msgpack::object& o, const std::string& path) {
  return codec::read_list(o, path, codec::read_string);
}

// Bytes: a bin (what we write) or a str.
std::string read_bytes(const msgpack::object& o, const std::string& path) {
  if (o.type == msgpack::type::BIN) return std::string(o.via.bin.ptr, o.via.bin.size);
  if (o.type == msgpack::type::STR) return std::string(o.via.str.ptr, o.via.str.size);
  codec::fail(path, "not bytes");
}

std::vector<ExecInspect> read_inspects(const msgpack::object& o, const std::string& path) {
  return codec::read_list(o, path, codec::read_exec_inspect);
}

std::string read_exec_id(const map_view& view) {
  std::string id = view.require_string("exec");
  if (auto ok = check_exec_id(id); !ok) codec::fail(view.path_of("exec"), ok.error().message);
  return id;
}

}  // namespace

outcome<void> check_exec_id(std::string_view id) {
  if (id.empty()) return make_pool_error(error_kind::invalid, "exec id is empty");
  if (id.size() > max_exec_id_bytes)
    return make_pool_error(error_kind::invalid, "exec id longer than " + std::to_string(max_exec_id_bytes) + " bytes");
  for (char c : id)
    if (!id_char(c))
      return make_pool_error(error_kind::invalid, "exec id may hold only letters, digits, '-', '_', '.', ':'");
  return {};
}

std::string_view to_string(exec_op op) {
  for (const auto& [o, name] : op_names)
    if (o == op) return name;
  return "unknown";
}

std::optional<exec_op> exec_op_from_string(std::string_view name) {
  for (const auto& [o, n] : op_names)
    if (n == name) return o;
  return std::nullopt;
}

std::string_view to_string(exec_state state) {
  for (const auto& [s, name] : state_names)
    if (s == state) return name;
  return "unknown";
}

std::optional<exec_state> exec_state_from_string(std::string_view name) {
  for (const auto& [s, n] : state_names)
    if (n == name) return s;
  return std::nullopt;
}

std::string_view to_string(exec_event_kind kind) {
  switch (kind) {
    case exec_event_kind::started: return "started";
    case exec_event_kind::completed: return "completed";
    case exec_event_kind::lost: return "lost";
  }
  return "unknown";
}

std::string execs_topic(std::string_view pool) { return "execs." + std::string(pool); }

namespace codec {

void pack_exec_config(packer& pk, const ExecConfig& c) {
  pk.pack_map(4);
  pack_string(pk, "cmd");
  pk.pack_array(static_cast<uint32_t>(c.cmd.size()));
  for (const auto& arg : c.cmd) pack_string(pk, arg);
  pack_string(pk, "env");
  pack_labels(pk, c.env);
  pack_string(pk, "resources");
  pack_resources(pk, c.resources);
  pack_string(pk, "outputs");
  pk.pack_array(static_cast<uint32_t>(c.outputs.size()));
  for (const auto& out : c.outputs) pack_string(pk, out);
}

ExecConfig read_exec_config(const msgpack::object& object, const std::string& path) {
  map_view view(object, path);
  ExecConfig c;
  c.cmd = view.read("cmd", read_strings);
  if (c.cmd.empty()) fail(view.path_of("cmd"), "empty (argv needs at least the program)");
  if (auto env = view.read_optional("env", read_labels)) c.env = std::move(*env);
  if (auto res = view.read_optional("resources", read_resources)) c.resources = std::move(*res);
  if (auto outs = view.read_optional("outputs", read_strings)) c.outputs = std::move(*outs);
  return c;
}

void pack_exec_inspect(packer& pk, const ExecInspect& e) {
  uint32_t fields = 5 + e.has_exit_code + e.has_signal + !e.error.empty() + (e.started_ms != 0) +
                    (e.finished_ms != 0) + e.has_profile + e.has_result;
  pk.pack_map(fields);
  pack_string(pk, "id");
  pack_string(pk, e.id);
  pack_string(pk, "alloc");
  pack_string(pk, e.alloc);
  pack_string(pk, "state");
  pack_string(pk, to_string(e.state));
  if (e.has_exit_code) {
    pack_string(pk, "exit_code");
    pk.pack_int64(e.exit_code);
  }
  if (e.has_signal) {
    pack_string(pk, "signal");
    pk.pack_int64(e.signal);
  }
  if (!e.error.empty()) {
    pack_string(pk, "error");
    pack_string(pk, e.error);
  }
  pack_string(pk, "created_ms");
  pk.pack_int64(e.created_ms);
  if (e.started_ms != 0) {
    pack_string(pk, "started_ms");
    pk.pack_int64(e.started_ms);
  }
  if (e.finished_ms != 0) {
    pack_string(pk, "finished_ms");
    pk.pack_int64(e.finished_ms);
  }
  pack_string(pk, "resources");
  pack_resources(pk, e.resources);
  if (e.has_profile) {
    pack_string(pk, "profile");
    pk.pack_map(3);
    pack_string(pk, "max_rss_bytes");
    pk.pack_int64(e.profile.max_rss_bytes);
    pack_string(pk, "cpu_user_ms");
    pk.pack_int64(e.profile.cpu_user_ms);
    pack_string(pk, "cpu_sys_ms");
    pk.pack_int64(e.profile.cpu_sys_ms);
  }
  if (e.has_result) {
    pack_string(pk, "result");
    pk.pack_map(1);
    pack_string(pk, "files");
    pk.pack_map(static_cast<uint32_t>(e.files.size()));
    for (const auto& [name, file] : e.files) {
      pack_string(pk, name);
      pk.pack_map(2);
      pack_string(pk, "digest");
      pack_string(pk, file.digest);
      pack_string(pk, "size");
      pk.pack_int64(file.size);
    }
  }
}

ExecInspect read_exec_inspect(const msgpack::object& object, const std::string& path) {
  map_view view(object, path);
  ExecInspect e;
  e.id = view.require_string("id");
  e.alloc = view.require_string("alloc");
  std::string state = view.require_string("state");
  auto parsed = exec_state_from_string(state);
  if (!parsed) fail(view.path_of("state"), "unknown exec state \"" + state + "\"");
  e.state = *parsed;
  if (auto code = view.optional_int("exit_code")) {
    e.has_exit_code = true;
    e.exit_code = *code;
  }
  if (auto sig = view.optional_int("signal")) {
    e.has_signal = true;
    e.signal = *sig;
  }
  e.error = view.optional_string("error").value_or("");
  e.created_ms = view.require_int("created_ms");
  e.started_ms = view.optional_int("started_ms").value_or(0);
  e.finished_ms = view.optional_int("finished_ms").value_or(0);
  e.resources = view.read("resources", read_resources);
  if (view.find("profile") != nullptr) {
    auto profile = view.require_map("profile");
    e.has_profile = true;
    e.profile.max_rss_bytes = profile.require_int("max_rss_bytes");
    e.profile.cpu_user_ms = profile.require_int("cpu_user_ms");
    e.profile.cpu_sys_ms = profile.require_int("cpu_sys_ms");
  }
  if (view.find("result") != nullptr) {
    auto result = view.require_map("result");
    e.has_result = true;
    const auto& files = result.require("files");
    map_view files_view(files, result.path_of("files"));
    for (uint32_t i = 0; i < files.via.map.size; ++i) {
      const auto& entry = files.via.map.ptr[i];
      std::string name(entry.key.via.str.ptr, entry.key.via.str.size);
      map_view file(entry.val, join_path(files_view.path(), name));
      ExecResultFile out;
      out.digest = file.require_string("digest");
      out.size = file.require_int("size");
      e.files[name] = std::move(out);
    }
  }
  return e;
}

uint32_t exec_call_field_count(const exec_call& call) {
  switch (call.op) {
    case exec_op::put: return 2;
    case exec_op::inspect:
    case exec_op::remove: return 1;
    case exec_op::list: return 0;
    case exec_op::wait: return 2;
    case exec_op::logs: return 4;
    case exec_op::repo_get: return 3;
  }
  return 0;
}

void pack_exec_call_fields(packer& pk, const exec_call& call) {
  if (call.op != exec_op::list && call.op != exec_op::repo_get) {
    pack_string(pk, "exec");
    pack_string(pk, call.exec);
  }
  switch (call.op) {
    case exec_op::put:
      pack_string(pk, "config");
      pack_exec_config(pk, call.config);
      break;
    case exec_op::wait:
      pack_string(pk, "timeout_ms");
      pk.pack_int64(call.timeout_ms);
      break;
    case exec_op::logs:
      pack_string(pk, "stream");
      pack_string(pk, call.stream);
      [[fallthrough]];
    case exec_op::repo_get:
      if (call.op == exec_op::repo_get) {
        pack_string(pk, "digest");
        pack_string(pk, call.digest);
      }
      pack_string(pk, "offset");
      pk.pack_int64(call.offset);
      pack_string(pk, "max_bytes");
      pk.pack_int64(call.max_bytes);
      break;
    default:
      break;
  }
}

void read_exec_call_fields(const map_view& view, exec_call& call) {
  if (call.op != exec_op::list && call.op != exec_op::repo_get) call.exec = read_exec_id(view);
  auto read_window = [&] {
    call.offset = view.optional_int("offset").value_or(0);
    if (call.offset < 0) fail(view.path_of("offset"), "negative");
    call.max_bytes = view.optional_int("max_bytes").value_or(default_exec_chunk_bytes);
    if (call.max_bytes <= 0) fail(view.path_of("max_bytes"), "must be > 0");
  };
  switch (call.op) {
    case exec_op::put:
      call.config = view.read("config", read_exec_config);
      break;
    case exec_op::wait:
      call.timeout_ms = view.require_int("timeout_ms");
      if (call.timeout_ms <= 0) fail(view.path_of("timeout_ms"), "must be > 0");
      if (call.timeout_ms > max_exec_wait_ms)
        fail(view.path_of("timeout_ms"), "at most " + std::to_string(max_exec_wait_ms) + " (24 h)");
      break;
    case exec_op::logs:
      call.stream = view.optional_string("stream").value_or("stdout");
      if (call.stream != "stdout" && call.stream != "stderr")
        fail(view.path_of("stream"), "must be \"stdout\" or \"stderr\"");
      read_window();
      break;
    case exec_op::repo_get:
      call.digest = view.require_string("digest");
      if (!is_hex_digest(call.digest)) fail(view.path_of("digest"), "not \"sha256:<64 lower-case hex digits>\"");
      read_window();
      break;
    default:
      break;
  }
}

uint32_t exec_answer_field_count(const exec_answer& answer) {
  switch (answer.kind) {
    case exec_answer::shape::none: return 0;
    case exec_answer::shape::one:
    case exec_answer::shape::many: return 1;
    case exec_answer::shape::chunk: return 3;
  }
  return 0;
}

void pack_exec_answer_fields(packer& pk, const exec_answer& answer) {
  switch (answer.kind) {
    case exec_answer::shape::none:
      break;
    case exec_answer::shape::one:
      pack_string(pk, "exec");
      pack_exec_inspect(pk, answer.exec);
      break;
    case exec_answer::shape::many:
      pack_string(pk, "execs");
      pack_list(pk, answer.execs, pack_exec_inspect);
      break;
    case exec_answer::shape::chunk:
      pack_string(pk, "data");
      pk.pack_bin(static_cast<uint32_t>(answer.data.size()));
      pk.pack_bin_body(answer.data.data(), static_cast<uint32_t>(answer.data.size()));
      pack_string(pk, "offset");
      pk.pack_int64(answer.offset);
      pack_string(pk, "eof");
      if (answer.eof)
        pk.pack_true();
      else
        pk.pack_false();
      break;
  }
}

void read_exec_answer_fields(const map_view& view, exec_answer& answer) {
  if (auto one = view.read_optional("exec", read_exec_inspect)) {
    answer.kind = exec_answer::shape::one;
    answer.exec = std::move(*one);
  } else if (auto many = view.read_optional("execs", read_inspects)) {
    answer.kind = exec_answer::shape::many;
    answer.execs = std::move(*many);
  } else if (auto data = view.read_optional("data", read_bytes)) {
    answer.kind = exec_answer::shape::chunk;
    answer.data = std::move(*data);
    answer.offset = view.require_int("offset");
    answer.eof = view.require_bool("eof");
  }
}

}  // namespace codec

std::string encode_exec_event(const exec_event& e) {
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(5);
    pack_string(pk, "v");
    pk.pack_int(1);
    pack_string(pk, "pool");
    pack_string(pk, e.pool);
    pack_string(pk, "event");
    pack_string(pk, to_string(e.event));
    pack_string(pk, "exec");
    codec::pack_exec_inspect(pk, e.exec);
    pack_string(pk, "ts_ms");
    pk.pack_int64(e.ts_ms);
  });
}

outcome<exec_event> decode_exec_event(std::string_view body) {
  return codec::guarded([&] {
    auto handle = codec::unpack_body(body, codec::max_reply_bytes);
    map_view view(handle.get(), "");
    codec::check_version(view);
    exec_event e;
    e.pool = view.require_string("pool");
    std::string event = view.require_string("event");
    if (event == "started") e.event = exec_event_kind::started;
    else if (event == "completed") e.event = exec_event_kind::completed;
    else if (event == "lost") e.event = exec_event_kind::lost;
    else codec::fail("event", "unknown exec event \"" + event + "\"");
    e.exec = view.read("exec", codec::read_exec_inspect);
    e.ts_ms = view.require_int("ts_ms");
    return e;
  });
}

std::string encode_exec_inspect(const ExecInspect& e) {
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) { codec::pack_exec_inspect(pk, e); });
}

outcome<ExecInspect> decode_exec_inspect(std::string_view body) {
  return codec::guarded([&] {
    auto handle = codec::unpack_body(body, codec::max_reply_bytes);
    return codec::read_exec_inspect(handle.get(), std::string());
  });
}

std::string encode_exec_config(const ExecConfig& c) {
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) { codec::pack_exec_config(pk, c); });
}

outcome<ExecConfig> decode_exec_config(std::string_view body) {
  return codec::guarded([&] {
    auto handle = codec::unpack_body(body, codec::max_reply_bytes);
    return codec::read_exec_config(handle.get(), std::string());
  });
}

}  // namespace poolbus

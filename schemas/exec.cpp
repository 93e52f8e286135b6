#include "schemas/exec.hpp"

#include <array>
#include <utility>

#include "schemas/map_writer.hpp"

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
  pack_fields(pk, [&](auto& out) {
    out.field("cmd", [&](packer& p) { pack_list(p, c.cmd, pack_string); });
    out.field("env", [&](packer& p) { pack_labels(p, c.env); });
    out.field("resources", [&](packer& p) { pack_resources(p, c.resources); });
    out.field("outputs", [&](packer& p) { pack_list(p, c.outputs, pack_string); });
  });
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

namespace {

void pack_exec_profile(packer& pk, const ExecProfile& profile) {
  pack_fields(pk, [&](auto& out) {
    out.int64("max_rss_bytes", profile.max_rss_bytes);
    out.int64("cpu_user_ms", profile.cpu_user_ms);
    out.int64("cpu_sys_ms", profile.cpu_sys_ms);
  });
}

// {"files": {<name>: {"digest", "size"}}}
void pack_exec_result(packer& pk, const std::map<std::string, ExecResultFile>& files) {
  pack_fields(pk, [&](auto& result) {
    result.field("files", [&](packer& p) {
      p.pack_map(static_cast<uint32_t>(files.size()));
      for (const auto& [name, file] : files) {
        pack_string(p, name);
        pack_fields(p, [&](auto& out) {
          out.text("digest", file.digest);
          out.int64("size", file.size);
        });
      }
    });
  });
}

}  // namespace

void pack_exec_inspect(packer& pk, const ExecInspect& e) {
  pack_fields(pk, [&](auto& out) {
    out.text("id", e.id);
    out.text("alloc", e.alloc);
    out.text("state", to_string(e.state));
    if (e.has_exit_code) out.int64("exit_code", e.exit_code);
    if (e.has_signal) out.int64("signal", e.signal);
    if (!e.error.empty()) out.text("error", e.error);
    out.int64("created_ms", e.created_ms);
    if (e.started_ms != 0) out.int64("started_ms", e.started_ms);
    if (e.finished_ms != 0) out.int64("finished_ms", e.finished_ms);
    out.field("resources", [&](packer& p) { pack_resources(p, e.resources); });
    if (e.has_profile) out.field("profile", [&](packer& p) { pack_exec_profile(p, e.profile); });
    if (e.has_result) out.field("result", [&](packer& p) { pack_exec_result(p, e.files); });
  });
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

template <bool writing>
void pack_exec_call_fields(map_fields<writing>& out, const exec_call& call) {
  if (call.op != exec_op::list && call.op != exec_op::repo_get) out.text("exec", call.exec);
  switch (call.op) {
    case exec_op::put: out.field("config", [&](packer& pk) { pack_exec_config(pk, call.config); }); break;
    case exec_op::wait: out.int64("timeout_ms", call.timeout_ms); break;
    case exec_op::logs:
    case exec_op::repo_get:
      if (call.op == exec_op::logs)
        out.text("stream", call.stream);
      else
        out.text("digest", call.digest);
      out.int64("offset", call.offset);
      out.int64("max_bytes", call.max_bytes);
      break;
    default: break;
  }
}
// For both runs of a map's list (map_writer.hpp): counting and writing.
template void pack_exec_call_fields(map_fields<false>&, const exec_call&);
template void pack_exec_call_fields(map_fields<true>&, const exec_call&);

void read_exec_call_fields(const map_view& view, exec_call& call) {
  if (call.op != exec_op::list && call.op != exec_op::repo_get) call.exec = read_exec_id(view);
  auto read_window = [&] {
    call.offset = view.optional_int("offset").value_or(0);
    if (call.offset < 0) fail(view.path_of("offset"), "negative");
    call.max_bytes = view.optional_int("max_bytes").value_or(default_exec_chunk_bytes);
    if (call.max_bytes <= 0) fail(view.path_of("max_bytes"), "must be > 0");
  };
  switch (call.op) {
    case exec_op::put: call.config = view.read("config", read_exec_config); break;
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
    default: break;
  }
}

template <bool writing>
void pack_exec_answer_fields(map_fields<writing>& out, const exec_answer& answer) {
  switch (answer.kind) {
    case exec_answer::shape::none: break;
    case exec_answer::shape::one: out.field("exec", [&](packer& pk) { pack_exec_inspect(pk, answer.exec); }); break;
    case exec_answer::shape::many:
      out.field("execs", [&](packer& pk) { pack_list(pk, answer.execs, pack_exec_inspect); });
      break;
    case exec_answer::shape::chunk:
      out.field("data", [&](packer& pk) {
        pk.pack_bin(static_cast<uint32_t>(answer.data.size()));
        pk.pack_bin_body(answer.data.data(), static_cast<uint32_t>(answer.data.size()));
      });
      out.int64("offset", answer.offset);
      out.boolean("eof", answer.eof);
      break;
  }
}
// For both runs of a map's list, as above.
template void pack_exec_answer_fields(map_fields<false>&, const exec_answer&);
template void pack_exec_answer_fields(map_fields<true>&, const exec_answer&);

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
  return codec::map_body([&](auto& out) {
    out.int64("v", 1);
    out.text("pool", e.pool);
    out.text("event", to_string(e.event));
    out.field("exec", [&](packer& pk) { codec::pack_exec_inspect(pk, e.exec); });
    out.int64("ts_ms", e.ts_ms);
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
    if (event == "started")
      e.event = exec_event_kind::started;
    else if (event == "completed")
      e.event = exec_event_kind::completed;
    else if (event == "lost")
      e.event = exec_event_kind::lost;
    else
      codec::fail("event", "unknown exec event \"" + event + "\"");
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

exec_call make_exec_call(exec_op op, std::string alloc, std::string exec) {
  exec_call call;
  call.op = op;
  call.alloc = std::move(alloc);
  call.exec = std::move(exec);
  return call;
}

}  // namespace poolbus

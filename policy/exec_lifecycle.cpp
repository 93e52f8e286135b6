#include "policy/exec_lifecycle.hpp"

#include <set>

namespace poolbus {
namespace {

pool_error invalid(std::string message) { return make_pool_error(error_kind::invalid, std::move(message)); }

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

outcome<void> validate_output(const std::string& path) {
  if (path.empty()) return invalid("outputs: an empty path");
  if (has_nul(path)) return invalid("outputs: a path holds a NUL byte");
  if (path.front() == '/')
    return invalid("outputs: \"" + path + "\" is absolute (paths are relative to the exec's directory)");
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    auto part = path.substr(start, slash - start);
    if (part == ".." || part == "." || part.empty())
      return invalid("outputs: \"" + path + "\" must be a plain relative path (no '.', '..' or empty parts)");
    start = slash + 1;
  }
  return {};
}

std::string describe_arg(size_t i) { return "cmd[" + std::to_string(i) + "]"; }

}  // namespace

outcome<void> validate_exec_config(const ExecConfig& config) {
  if (config.cmd.empty()) return invalid("cmd: empty (argv needs at least the program)");
  if (config.cmd.front().empty()) return invalid("cmd[0]: the program is empty");
  size_t total = 0;
  for (size_t i = 0; i < config.cmd.size(); ++i) {
    if (has_nul(config.cmd[i])) return invalid(describe_arg(i) + ": holds a NUL byte (argv strings cannot)");
    total += config.cmd[i].size() + 1;
  }
  for (const auto& [name, value] : config.env) {
    if (name.empty()) return invalid("env: an empty variable name");
    if (has_nul(name) || name.find('=') != std::string::npos)
      return invalid("env: variable name \"" + name.substr(0, 64) + "\" holds '=' or a NUL byte");
    if (has_nul(value)) return invalid("env." + name + ": holds a NUL byte (environment strings cannot)");
    total += name.size() + value.size() + 2;
  }
  if (total > exec_args_limit_bytes)
    return invalid("cmd and env together take " + std::to_string(total) + " bytes, more than " +
                   std::to_string(exec_args_limit_bytes));
  if (config.outputs.size() > exec_outputs_limit)
    return invalid("outputs: more than " + std::to_string(exec_outputs_limit) + " paths");
  std::set<std::string> seen;
  for (const auto& path : config.outputs) {
    if (auto ok = validate_output(path); !ok) return ok;
    if (!seen.insert(path).second) return invalid("outputs: \"" + path + "\" is listed twice");
  }
  return {};
}

outcome<void> check_same_config(const std::string& id, const ExecConfig& existing, const ExecConfig& requested) {
  if (existing == requested) return {};
  return make_pool_error(error_kind::precondition,
                         "exec " + id + " exists with another config (exec ids are not reusable)");
}

exec_lifecycle::exec_lifecycle(std::string id, std::string alloc_uri, Resources resources, int64_t now_ms) {
  inspect_.id = std::move(id);
  inspect_.alloc = std::move(alloc_uri);
  inspect_.resources = std::move(resources);
  inspect_.state = exec_state::waiting;
  inspect_.created_ms = now_ms;
}

outcome<void> exec_lifecycle::start(int64_t now_ms) {
  if (state() != exec_state::waiting)
    return make_pool_error(error_kind::precondition,
                           "exec " + inspect_.id + " is " + std::string(to_string(state())) + ", not waiting");
  inspect_.state = exec_state::running;
  inspect_.started_ms = now_ms;
  return {};
}

outcome<void> exec_lifecycle::fail(const std::string& error, int64_t now_ms) {
  if (done()) return make_pool_error(error_kind::precondition, "exec " + inspect_.id + " already ended");
  inspect_.state = exec_state::complete;
  inspect_.error = error;
  inspect_.finished_ms = now_ms;
  return {};
}

outcome<bool> exec_lifecycle::finish(const exec_termination& how, int64_t now_ms) {
  if (state() != exec_state::running)
    return make_pool_error(error_kind::precondition,
                           "exec " + inspect_.id + " is " + std::string(to_string(state())) + ", not running");
  inspect_.state = exec_state::complete;
  inspect_.finished_ms = now_ms;
  inspect_.has_profile = true;
  inspect_.profile = how.profile;
  if (how.exited) {
    inspect_.has_exit_code = true;
    inspect_.exit_code = how.exit_code;
  } else {
    inspect_.has_signal = true;
    inspect_.signal = how.signal;
  }
  if (how.oom)
    inspect_.error = "oom";
  else if (how.disk)
    inspect_.error = "disk";
  else if (how.killed)
    inspect_.error = "killed";
  return how.exited && how.exit_code == 0 && !how.oom && !how.disk && !how.killed;
}

void exec_lifecycle::set_result(std::map<std::string, ExecResultFile> files) {
  inspect_.has_result = true;
  inspect_.files = std::move(files);
}

void exec_lifecycle::set_output_error(const std::string& error) {
  inspect_.has_result = false;
  inspect_.files.clear();
  inspect_.error = error;
}

outcome<void> exec_lifecycle::lose(int64_t now_ms) {
  if (state() != exec_state::running)
    return make_pool_error(error_kind::precondition, "exec " + inspect_.id + " is not running");
  inspect_.state = exec_state::lost;
  inspect_.error = "the worker restarted while the exec ran";
  inspect_.finished_ms = now_ms;
  return {};
}

}  // namespace poolbus

#include "actors/exec_actor.hpp"

#include <spdlog/spdlog.h>

#include <caf/all.hpp>

#include "actors/error_bridge.hpp"

namespace poolbus {
namespace {

using exec_self = exec_actor::stateful_pointer<exec_actor_state>;

int64_t now_ms(exec_self self) { return self->state.config.clock.now_ms(self->clock()); }

const std::string& exec_id(exec_self self) { return self->state.config.record.inspect.id; }

// Saves the record (inspect as it is now) and tells the alloc.
void persist_and_report(exec_self self) {
  auto& st = self->state;
  st.config.record.inspect = st.life->inspect();
  if (auto saved = st.config.records->save(st.config.record); !saved)
    spdlog::error("exec {} of {}: cannot save its record: {}", exec_id(self), st.config.record.inspect.alloc,
                  saved.error().to_string());
  caf::anon_send(st.config.alloc, exec_update_atom::value, st.life->inspect());
}

void emit(exec_self self, exec_event_kind kind) {
  auto& st = self->state;
  spdlog::info("exec {} of {}: {}", exec_id(self), st.life->inspect().alloc, to_string(kind));
  if (st.config.events)
    caf::anon_send(st.config.events, exec_event_atom::value,
                   exec_event{st.config.pool, kind, st.life->inspect(), now_ms(self)});
}

void answer_waiters(exec_self self) {
  self->state.wait_deadlines = {};
  auto waiters = std::exchange(self->state.waiters, {});
  for (auto& [_, promise] : waiters) promise.deliver(exec_answer::of(self->state.life->inspect()));
}

void fail_waiters(exec_self self, const pool_error& error) {
  self->state.wait_deadlines = {};
  auto waiters = std::exchange(self->state.waiters, {});
  for (auto& [_, promise] : waiters) promise.deliver(make_error(error));
}

// Removes the exec's directory, tells the alloc, and ends the actor.
void finish_removal(exec_self self) {
  auto& st = self->state;
  st.gone = true;
  if (auto removed = st.config.records->remove(exec_id(self)); !removed)
    spdlog::warn("exec {}: {}", exec_id(self), removed.error().to_string());
  fail_waiters(self, make_pool_error(error_kind::not_exist, "exec " + exec_id(self) + " was removed"));
  caf::anon_send(st.config.alloc, exec_gone_atom::value, exec_id(self));
  if (st.removal) {
    st.removal->deliver(exec_answer{});
    st.removal.reset();
  }
  self->quit();
}

// Hashes every listed output into the repository, on a thread of its own (a
// detached actor): a large output must not stop the pool's thread. The first
// output that is missing, not the user's regular file, or over the alloc's
// disk fails the exec.
void collect_outputs(exec_self self, const exec_termination& how) {
  auto& st = self->state;
  st.collecting = how;
  exec_actor me = self;
  auto repo = st.config.repo;
  auto dir = st.config.records->work_dir(exec_id(self));
  auto outputs = st.config.record.config.outputs;
  auto owner = st.config.user.uid;
  auto limit = st.config.disk_limit_bytes;
  auto alloc_dir = st.config.records->alloc_dir();
  auto cancel = st.cancel_collection;
  self->spawn<caf::detached>([=] {
    exec_outputs result;
    // Each copy must fit in what the alloc has left of its disk.
    int64_t room = limit > 0 ? std::max<int64_t>(1, limit - bytes_under(alloc_dir, limit)) : 0;
    for (const auto& path : outputs) {
      if (*cancel) return;
      auto stored = repo->put_beneath(dir, path, owner, room);
      if (!stored) {
        bool missing = stored.error().kind == error_kind::not_exist;
        result.error = stored.error().message == "disk" ? "disk"
                       : missing                        ? stored.error().message
                                                        : "output " + path + ": " + stored.error().message;
        break;
      }
      if (room > 0) room = std::max<int64_t>(1, room - stored->size);
      result.files[path] = *stored;
    }
    caf::anon_send(me, exec_outputs_atom::value, std::move(result));
  });
}

void complete(exec_self self) {
  persist_and_report(self);
  emit(self, exec_event_kind::completed);
  answer_waiters(self);
  if (self->state.removal) finish_removal(self);
}

void start(exec_self self) {
  auto& st = self->state;
  if (st.gone || st.life->state() != exec_state::waiting) return;
  auto now = now_ms(self);
  const auto& id = exec_id(self);
  process_spec spec;
  spec.argv = st.config.record.config.cmd;
  spec.env = st.config.record.config.env;
  spec.working_dir = st.config.records->work_dir(id);
  spec.stdout_path = st.config.records->log_path(id, "stdout");
  spec.stderr_path = st.config.records->log_path(id, "stderr");
  spec.group = st.config.record.inspect.alloc;
  spec.mem_limit_bytes = static_cast<int64_t>(st.config.record.config.resources.get("mem"));
  spec.uid = st.config.user.uid;
  spec.gid = st.config.user.gid;
  if (!st.config.user.own()) spec.tmp_dir = st.config.records->alloc_dir() + "/tmp";
  spec.log_cap_bytes = st.config.runtime.log_cap_bytes;
  if (st.config.disk_limit_bytes > 0) spec.log_cap_bytes = std::min(spec.log_cap_bytes, st.config.disk_limit_bytes);
  spec.disk_root = st.config.records->alloc_dir();
  spec.disk_limit_bytes = st.config.disk_limit_bytes;
  exec_actor me = self;
  auto pid = st.config.runtime.processes->spawn(
      spec, [me](const process_exit& exit) { caf::anon_send(me, exec_exit_atom::value, exit); });
  if (!pid) {
    spdlog::info("exec {} of {}: cannot start: {}", id, spec.group, pid.error().message);
    st.life->fail(pid.error().message, now);
    complete(self);
    return;
  }
  st.life->start(now);
  st.config.record.pid = *pid;
  st.config.record.start_time = process_supervisor::start_time_of(*pid);
  persist_and_report(self);
  emit(self, exec_event_kind::started);
}

exec_answer read_log(exec_self self, const exec_call& call) {
  auto& st = self->state;
  auto chunk = read_file_chunk(st.config.records->log_path(exec_id(self), call.stream), call.offset,
                               std::min(call.max_bytes, max_exec_chunk_bytes));
  if (!chunk) return exec_answer::chunk("", call.offset, false);
  auto next = call.offset + static_cast<int64_t>(chunk->data.size());
  return exec_answer::chunk(std::move(chunk->data), next, st.life->done() && chunk->at_end);
}

// Restored from a record as running: the worker restarted under it.
// Whatever is left of its process group (same pid, same start time) is killed.
void lose_restored(exec_self self) {
  auto& st = self->state;
  if (process_supervisor::kill_stale_group(static_cast<int>(st.config.record.pid), st.config.record.start_time))
    spdlog::warn("exec {}: killed the process group {} left from before the restart", exec_id(self),
                 st.config.record.pid);
  st.life->lose(now_ms(self));
  st.config.record.pid = 0;
  persist_and_report(self);
  emit(self, exec_event_kind::lost);
}

// exec_wait: answered now when done, else when it completes or its timeout passes.
caf::result<exec_answer> wait(exec_self self, int64_t timeout_ms) {
  auto& st = self->state;
  if (st.life->done()) return exec_answer::of(st.life->inspect());
  auto promise = self->make_response_promise<exec_answer>();
  auto waiter = st.next_waiter++;
  st.waiters.emplace(waiter, promise);
  st.wait_deadlines.add(waiter, deadline_after(now_ms(self), timeout_ms));
  self->delayed_send(self, std::chrono::milliseconds(timeout_ms), exec_timeout_atom::value);
  return promise;
}

void on_wait_timeout(exec_self self) {
  auto& st = self->state;
  for (auto waiter : st.wait_deadlines.expire(now_ms(self))) {
    auto promise = st.waiters.at(waiter);
    st.waiters.erase(waiter);
    promise.deliver(make_error(error_kind::timeout,
                               "exec " + exec_id(self) + " is still " + std::string(to_string(st.life->state()))));
  }
}

// exec_remove: a running exec is terminated first, one collecting its
// outputs is removed once they are in; the answer comes when it is gone.
caf::result<exec_answer> remove(exec_self self) {
  auto& st = self->state;
  auto promise = self->make_response_promise<exec_answer>();
  st.removal = promise;
  if (st.collecting) return promise;
  if (st.life->state() != exec_state::running) {
    finish_removal(self);
    return promise;
  }
  st.config.runtime.processes->terminate(static_cast<int>(st.config.record.pid), st.config.runtime.kill_grace_ms);
  return promise;
}

caf::result<exec_answer> on_call(exec_self self, const exec_call& call) {
  auto& st = self->state;
  if (st.gone || st.removal) return make_error(error_kind::not_exist, "exec " + exec_id(self) + " was removed");
  switch (call.op) {
    case exec_op::put:
    case exec_op::inspect: return exec_answer::of(st.life->inspect());
    case exec_op::wait: return wait(self, call.timeout_ms);
    case exec_op::logs: return read_log(self, call);
    case exec_op::remove: return remove(self);
    default: return make_error(error_kind::internal, "exec actor cannot answer " + std::string(to_string(call.op)));
  }
}

exec_termination termination_of(const process_exit& exit) {
  exec_termination how;
  how.exited = exit.exited;
  how.exit_code = exit.exit_code;
  how.signal = exit.signal;
  how.oom = exit.oom;
  how.disk = exit.disk;
  how.killed = exit.killed;
  how.profile = ExecProfile{exit.max_rss_bytes, exit.cpu_user_ms, exit.cpu_sys_ms};
  return how;
}

void on_exit(exec_self self, const process_exit& exit) {
  auto& st = self->state;
  if (st.gone || st.life->state() != exec_state::running || st.collecting) return;
  st.config.record.pid = 0;
  if (!exit.error.empty()) {  // the sandbox could not start the command
    spdlog::info("exec {} of {}: cannot start: {}", exec_id(self), st.config.record.inspect.alloc, exit.error);
    st.life->fail(exit.error, now_ms(self));
    complete(self);
    return;
  }
  auto how = termination_of(exit);
  st.exited_ms = now_ms(self);
  bool succeeded = how.exited && how.exit_code == 0 && !how.oom && !how.disk && !how.killed;
  if (succeeded && !st.config.record.config.outputs.empty()) {
    collect_outputs(self, how);  // stays running until its outputs are in
    return;
  }
  st.life->finish(how, st.exited_ms);
  complete(self);
}

void on_outputs(exec_self self, exec_outputs& outputs) {
  auto& st = self->state;
  if (st.gone || !st.collecting) return;
  st.life->finish(*st.collecting, st.exited_ms);
  st.collecting.reset();
  if (outputs.error.empty())
    st.life->set_result(std::move(outputs.files));
  else
    st.life->set_output_error(outputs.error);
  complete(self);
}

// The alloc is gone: waiters and a pending removal are answered, and the actor ends.
void on_alloc_gone(exec_self self) {
  auto& st = self->state;
  st.gone = true;
  *st.cancel_collection = true;
  fail_waiters(self, make_pool_error(error_kind::not_exist,
                                     "alloc " + st.config.record.inspect.alloc + " was freed or collected"));
  if (st.removal) st.removal->deliver(exec_answer{});
  st.removal.reset();
  self->quit();
}

}  // namespace

exec_actor::behavior_type exec_actor_behavior(exec_actor::stateful_pointer<exec_actor_state> self,
                                              exec_actor_config config) {
  auto& st = self->state;
  st.config = std::move(config);
  st.life.emplace(st.config.record.inspect);
  if (st.life->state() == exec_state::running) lose_restored(self);
  return {
      [=](exec_atom, const exec_call& call) { return on_call(self, call); },
      [=](exec_start_atom) { start(self); },
      [=](exec_exit_atom, const process_exit& exit) { on_exit(self, exit); },
      [=](exec_outputs_atom, exec_outputs& outputs) { on_outputs(self, outputs); },
      [=](exec_timeout_atom) { on_wait_timeout(self); },
      [=](exec_sigkill_atom) { on_alloc_gone(self); },
  };
}

}  // namespace poolbus

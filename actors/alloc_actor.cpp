#include "actors/alloc_actor.hpp"

#include <spdlog/spdlog.h>

#include <caf/all.hpp>

#include <algorithm>

#include "actors/error_bridge.hpp"
#include "policy/exec_lifecycle.hpp"
#include "store/alloc_users.hpp"

namespace poolbus {
namespace {

using alloc_self = local_alloc_actor::stateful_pointer<alloc_actor_state>;

caf::error gone_error(const alloc_actor_state& st) {
  return make_error(error_kind::not_exist, "alloc " + st.uri + " was freed or collected");
}

int64_t now_ms(alloc_self self) { return wall_clock::real().now_ms(self->clock()); }

exec_actor spawn_exec(alloc_self self, exec_record record) {
  auto& st = self->state;
  exec_actor_config config;
  config.record = std::move(record);
  config.runtime = st.execs_context.runtime;
  config.records = st.records;
  config.repo = st.repo;
  config.alloc = caf::actor_cast<caf::actor>(self);
  config.events = st.execs_context.events;
  config.pool = st.execs_context.pool;
  config.user = st.user.value_or(exec_user{});
  config.disk_limit_bytes = static_cast<int64_t>(st.execs_context.resources.get("disk"));
  return self->spawn<caf::linked>(exec_actor_behavior, std::move(config));
}

// The alloc's directory and user, made on its first exec (or adopted after a
// restart); then the directories of exec `id`, which only its user may work in.
outcome<void> prepare_exec_dirs(alloc_self self, const std::string& id) {
  auto& st = self->state;
  auto& users = st.execs_context.runtime.users;
  if (!st.user) {
    auto user = users ? users->prepare(st.records->alloc_dir()) : outcome<exec_user>(exec_user{});
    if (!user) return user.error();
    st.user = *user;
  }
  if (auto created = st.records->create(id); !created) return created.error();
  if (!users) return {};
  if (auto through = users->let_through(st.records->alloc_dir() + "/execs", *st.user); !through) return through.error();
  if (auto through = users->let_through(st.records->exec_dir(id), *st.user); !through) return through.error();
  return users->give(st.records->work_dir(id), *st.user);
}

// Starts every exec the admission lets in now.
void admit(alloc_self self) {
  auto& st = self->state;
  for (const auto& id : st.admission->admit()) {
    auto it = st.execs.find(id);
    if (it != st.execs.end()) self->send(it->second.actor, exec_start_atom::value);
  }
}

// Brings back the execs recorded in the alloc's directory (a worker restart):
// finished ones as they were, running ones become lost (their exec actor
// does that), waiting ones queue again in their order.
void restore_execs(alloc_self self) {
  auto& st = self->state;
  std::vector<std::string> skipped;
  auto records = st.records->load_all(&skipped);
  if (!records.empty() && st.execs_context.runtime.users) {
    auto user = st.execs_context.runtime.users->prepare(st.records->alloc_dir());
    if (user)
      st.user = *user;
    else
      spdlog::error("alloc {}: {}", st.uri, user.error().message);
  }
  for (const auto& problem : skipped) spdlog::warn("alloc {}: unreadable exec record {}", st.uri, problem);
  for (auto& record : records) {
    auto id = record.inspect.id;
    bool waiting = record.inspect.state == exec_state::waiting;
    auto config = record.config;
    auto inspect = record.inspect;
    auto actor = spawn_exec(self, std::move(record));
    st.execs[id] = alloc_exec_entry{actor, std::move(config), std::move(inspect)};
    if (waiting) st.admission->enqueue(id, st.execs[id].config.resources);
  }
  if (!records.empty()) spdlog::info("alloc {}: restored {} execs", st.uri, records.size());
  admit(self);
}

caf::result<exec_answer> put_exec(alloc_self self, const exec_call& call) {
  auto& st = self->state;
  if (auto valid = validate_exec_config(call.config); !valid) return make_error(valid.error());
  if (auto existing = st.execs.find(call.exec); existing != st.execs.end()) {
    if (auto same = check_same_config(call.exec, existing->second.config, call.config); !same)
      return make_error(same.error());
    return self->delegate(existing->second.actor, exec_atom::value, call);
  }
  if (auto fits = st.admission->check_fits(call.config.resources); !fits)
    return make_error(error_kind::precondition, "exec " + call.exec + " needs " + call.config.resources.to_string() +
                                                    ", more than alloc " + st.uri + " holds (" +
                                                    st.admission->capacity().to_string() + ")");
  if (auto prepared = prepare_exec_dirs(self, call.exec); !prepared) return make_error(prepared.error());
  exec_record record;
  record.inspect = exec_lifecycle(call.exec, st.uri, call.config.resources, now_ms(self)).inspect();
  record.config = call.config;
  if (auto saved = st.records->save(record); !saved) return make_error(saved.error());
  auto inspect = record.inspect;
  auto actor = spawn_exec(self, std::move(record));
  st.execs[call.exec] = alloc_exec_entry{actor, call.config, inspect};
  st.admission->enqueue(call.exec, call.config.resources);
  spdlog::info("alloc {}: exec {} put ({})", st.uri, call.exec, call.config.cmd.front());
  admit(self);
  // After exec_start (same sender, same order): the reply shows it running
  // when it was admitted at once.
  return self->delegate(actor, exec_atom::value, call);
}

caf::result<exec_answer> serve_exec(alloc_self self, const exec_call& call) {
  auto& st = self->state;
  if (!st.pool) return gone_error(st);
  if (!st.admission) return make_error(error_kind::internal, "pool of alloc " + st.uri + " runs no execs");
  switch (call.op) {
    case exec_op::put: return put_exec(self, call);
    case exec_op::list: {
      std::vector<ExecInspect> all;
      for (const auto& [_, entry] : st.execs) all.push_back(entry.last);
      std::sort(all.begin(), all.end(), [](const ExecInspect& a, const ExecInspect& b) {
        return a.created_ms != b.created_ms ? a.created_ms < b.created_ms : a.id < b.id;
      });
      return exec_answer::of(std::move(all));
    }
    case exec_op::repo_get: {
      auto chunk = st.repo->read(call.digest, call.offset, std::min(call.max_bytes, max_exec_chunk_bytes));
      if (!chunk) return make_error(chunk.error());
      auto next = call.offset + static_cast<int64_t>(chunk->data.size());
      return exec_answer::chunk(std::move(chunk->data), next, chunk->at_end);
    }
    default: {
      auto it = st.execs.find(call.exec);
      if (it == st.execs.end())
        return make_error(error_kind::not_exist, "alloc " + st.uri + " has no exec " + call.exec);
      return self->delegate(it->second.actor, exec_atom::value, call);
    }
  }
}

}  // namespace

local_alloc_actor::behavior_type alloc_actor_behavior(local_alloc_actor::stateful_pointer<alloc_actor_state> self,
                                                      pool_actor pool, std::string local_id, std::string uri,
                                                      alloc_exec_context context) {
  self->state.pool = std::move(pool);
  self->state.local_id = std::move(local_id);
  self->state.uri = std::move(uri);
  self->state.execs_context = std::move(context);
  if (self->state.execs_context.runtime.processes) {
    auto& st = self->state;
    auto dir = st.execs_context.runtime.allocs_dir + "/" + st.local_id;
    st.admission.emplace(st.execs_context.resources);
    st.records = std::make_shared<exec_records>(dir);
    st.repo = std::make_shared<content_repository>(dir + "/repo");
    restore_execs(self);
  }
  return {
      [=](kill_atom) {
        // Drop the pool handle: nothing is forwarded any more, and no reference
        // cycle keeps either actor alive. The actor ends when its last handle
        // is dropped, or with its pool (they are linked).
        spdlog::debug("alloc actor {}: alloc gone", self->state.uri);
        self->state.pool = nullptr;
        // Their processes were killed before the pool let the alloc go.
        for (auto& [_, entry] : self->state.execs) self->send(entry.actor, exec_sigkill_atom::value);
        self->state.execs.clear();
      },
      [=](exec_atom, const exec_call& call) -> caf::result<exec_answer> { return serve_exec(self, call); },
      [=](exec_update_atom, const ExecInspect& inspect) {
        auto& st = self->state;
        auto it = st.execs.find(inspect.id);
        if (it == st.execs.end()) return;
        it->second.last = inspect;
        if (inspect.state == exec_state::complete || inspect.state == exec_state::lost) {
          st.admission->release(inspect.id);
          admit(self);
        }
      },
      [=](exec_gone_atom, const std::string& id) {
        auto& st = self->state;
        st.execs.erase(id);
        if (st.admission) {
          st.admission->release(id);
          admit(self);
        }
      },
  };
}

}  // namespace poolbus

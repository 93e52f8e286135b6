#include "actors/pool_actor.hpp"

#include <spdlog/spdlog.h>

#include <caf/all.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <stdexcept>
#include <utility>

#include "actors/alloc_actor.hpp"
#include "actors/error_bridge.hpp"
#include "exec/process_supervisor.hpp"
#include "policy/resource_pool.hpp"

namespace poolbus {
namespace {

// Sent by the pool to itself after the first change of a burst: commit the
// burst's changes to the journal, then answer the requests that made them.
using flush_atom = caf::atom_constant<caf::atom("flush")>;
// From the process supervisor's thread: every exec process of the alloc
// (by its id) is gone, so the alloc can finish retiring.
using execs_gone_atom = caf::atom_constant<caf::atom("execsgone")>;

// The pool actor's full interface: the worker pool plus its own expiry timer,
// group commit, and the end of retiring allocs.
using pool_actor_impl = worker_pool_actor::extend<caf::reacts_to<tick_atom, uint64_t>, caf::reacts_to<flush_atom>,
                                                  caf::reacts_to<execs_gone_atom, std::string>>;

// What subscribers saw last; a change in any of it is a change of the offer.
struct offer_view {
  Resources resources;
  Resources available;
  std::vector<OfferInfo> offers;
  int64_t allocs = 0;
  bool draining = false;

  bool operator==(const offer_view& o) const {
    return resources == o.resources && available == o.available && offers == o.offers && allocs == o.allocs &&
           draining == o.draining;
  }
};

// An alloc out of the table whose execs' processes are still dying (SIGTERM
// sent, SIGKILL at the grace): its resources stay held until they are gone.
struct retiring_alloc {
  AllocInspect alloc;
  alloc_event_kind kind;
  std::function<void(outcome<void>)> then;  // gets the alloc manager's verdict
};

struct pool_state {
  pool_actor_config config;
  std::optional<resource_pool> table;
  std::map<std::string, local_alloc_actor> alloc_actors;  // by local id
  std::vector<caf::actor> subscribers;
  int64_t seq = 0;
  offer_view announced;
  bool draining = false;               // drained: no offer, accepts refused (kept in the journal)
  uint64_t timer_generation = 0;       // a tick with another generation is stale
  std::optional<int64_t> timer_at_ms;  // when the live timer fires: no later than the next expiry
  int64_t started_ms = 0;
  int64_t last_free_ms = 0;  // 0 = nothing freed yet
  // Group commit: the burst's changes not yet in the journal, and the replies
  // waiting for them (each called with the commit's error, or null once durable).
  std::vector<journal_change> unflushed;
  std::vector<std::function<void(const caf::error*)>> held;
  bool flush_sent = false;
  // Allocs retiring (by id): neither offered nor given to a new alloc, so the
  // processes running never use more than the total. Creates wait in
  // deferred_creates (in arrival order) while any alloc is retiring.
  std::map<std::string, retiring_alloc> retiring;
  std::deque<std::function<void()>> deferred_creates;
  static inline const char* name = "pool_actor";
};

using pool_self = pool_actor_impl::stateful_pointer<pool_state>;

// What retire_allocs hands on once every alloc of the call is retired: their
// journal erasures and the first alloc manager failure.
using retired_handler = std::function<void(std::vector<journal_change>, std::optional<pool_error>)>;

int64_t now_ms(pool_self self) { return self->state.config.clock.now_ms(self->clock()); }

// An id from a request: a local id, or a URI whose pool part is this pool.
outcome<std::string> resolve(pool_self self, const std::string& id) {
  if (id.find('/') == std::string::npos) return id;
  auto uri = parse_pool_uri(id);
  if (!uri) return uri.error();
  if (uri->pool != self->state.config.id)
    return make_pool_error(error_kind::not_exist, "\"" + id + "\" does not belong to pool " + self->state.config.id);
  return uri->local;
}

// ---------------------------------------------------------------- offer

// What retiring allocs still hold.
Resources retiring_resources(pool_self self) {
  Resources held;
  for (const auto& [_, entry] : self->state.retiring) held = held.add(entry.alloc.resources);
  return held;
}

// The table's available resources less what retiring allocs hold.
Resources available_now(pool_self self, int64_t now) {
  auto available = self->state.table->available(now);
  if (self->state.retiring.empty()) return available;
  return available.sub(retiring_resources(self));
}

// The table's offers less what retiring allocs hold (none when cpu, mem or
// disk is then exhausted, as resource_pool::offers decides; none while draining).
std::vector<OfferInfo> offers_now(pool_self self, int64_t now) {
  if (self->state.draining) return {};  // a draining pool extends nothing new
  auto offers = self->state.table->offers(now);
  if (self->state.retiring.empty() || offers.empty()) return offers;
  auto held = retiring_resources(self);
  for (auto& offer : offers) offer.available = offer.available.sub(held);
  const auto& left = offers.front().available;
  if (left.units("cpu") <= 0 || left.units("mem") <= 0 || left.units("disk") <= 0) return {};
  return offers;
}

offer_view current_view(pool_self self, int64_t now) {
  auto& table = *self->state.table;
  offer_view view{table.total(), available_now(self, now), offers_now(self, now), static_cast<int64_t>(table.size()),
                  self->state.draining};
  // Announcements name the offer by URI, as the stream publishes it.
  for (auto& offer : view.offers) offer.id = make_pool_uri(table.pool_id(), offer.id);
  return view;
}

offer_announcement make_announcement(pool_self self, int64_t now) {
  auto& st = self->state;
  offer_announcement out;
  out.pool = st.config.id;
  out.run = st.config.run;
  out.seq = st.seq;
  out.resources = st.announced.resources;
  out.available = st.announced.available;
  out.offers = st.announced.offers;
  out.allocs = st.announced.allocs;
  out.labels = st.config.labels;
  out.draining = st.announced.draining;
  out.ts_ms = now;
  return out;
}

// Announces the offer, with the next seq, when it changed since the last
// announcement: subscribers count on one seq per change.
void publish_offer_change(pool_self self, int64_t now) {
  auto& st = self->state;
  auto view = current_view(self, now);
  if (view == st.announced) return;
  st.announced = std::move(view);
  ++st.seq;
  auto announcement = make_announcement(self, now);
  if (spdlog::should_log(spdlog::level::debug))  // to_string is not free; most runs do not log it
    spdlog::debug("pool {}: offer seq {} available {} allocs {}", st.config.id, st.seq,
                  announcement.available.to_string(), announcement.allocs);
  for (const auto& sub : st.subscribers) caf::anon_send(sub, changed_atom::value, announcement);
}

void emit_alloc_event(pool_self self, alloc_event_kind kind, const AllocInspect& alloc, int64_t now) {
  auto& st = self->state;
  if (spdlog::should_log(spdlog::level::info))
    spdlog::info("pool {}: alloc {} {} ({})", st.config.id, alloc.id, to_string(kind), alloc.resources.to_string());
  alloc_event event{st.config.id, kind, alloc, now};
  for (const auto& sub : st.subscribers) caf::anon_send(sub, alloc_event_atom::value, event);
}

// ---------------------------------------------------------------- expiry timer

// Arms the timer for the next expiry, unless the live one fires no later:
// firing early costs one tick that finds nothing and re-arms, while arming
// costs a wake-up of CAF's clock thread, which per accept, free or keepalive
// (each moves the next expiry) would be a thread switch per call.
void rearm_expiry_timer(pool_self self, int64_t now) {
  auto& st = self->state;
  auto next = st.table->next_expiry(now);
  if (!next) return;  // nothing left to expire: a live timer fires once for nothing
  if (st.timer_at_ms && *st.timer_at_ms <= *next) return;
  st.timer_at_ms = next;
  ++st.timer_generation;  // any earlier tick is now stale
  self->delayed_send(self, std::chrono::milliseconds(*next - now), tick_atom::value, st.timer_generation);
}

// Brings subscribers up to date with what time alone changed: expired allocs
// and the offer they return. Every handler starts here, so events keep their
// order even when a request beats the timer.
void catch_up(pool_self self, int64_t now) {
  for (const auto& alloc : self->state.table->newly_expired(now))
    emit_alloc_event(self, alloc_event_kind::expired, alloc, now);
  publish_offer_change(self, now);
}

// After a change of the table: announce the offer it changed and aim the
// timer at the expiry it may have moved.
void publish_and_rearm(pool_self self, int64_t now) {
  publish_offer_change(self, now);
  rearm_expiry_timer(self, now);
}

// ---------------------------------------------------------------- journal

// After a journal failure the table may hold changes that are not on disk, so
// the pool stops rather than acknowledge anything more.
void stop_on_journal_failure(pool_self self, const pool_error& failure) {
  auto& st = self->state;
  spdlog::critical("pool {}: state store {} failed: {}; stopping the pool", st.config.id, st.config.journal->describe(),
                   failure.to_string());
  if (st.config.on_journal_failure) st.config.on_journal_failure(failure);
  self->quit(make_error(failure));
}

// Runs `finish` once `changes` are in the journal (with null), or the commit
// failed (with its error): with the burst's group commit. Without a journal,
// or without changes, at once.
void after_commit(pool_self self, std::vector<journal_change> changes, std::function<void(const caf::error*)> finish) {
  auto& st = self->state;
  if (!st.config.journal || changes.empty()) {
    finish(nullptr);
    return;
  }
  for (auto& change : changes) st.unflushed.push_back(std::move(change));
  st.held.push_back(std::move(finish));
  if (!st.flush_sent) {
    st.flush_sent = true;
    self->send(self, flush_atom::value);
  }
}

// Delivers `values` (or `refusal`, when the request failed after changing the
// table) through `promise` once `changes` are in the journal.
template <class... Ts>
void deliver_when_durable(pool_self self, caf::typed_response_promise<Ts...> promise,
                          std::vector<journal_change> changes, caf::error refusal, Ts... values) {
  after_commit(self, std::move(changes), [promise, refusal, values...](const caf::error* failed) mutable {
    if (failed)
      promise.deliver(*failed);
    else if (refusal)
      promise.deliver(refusal);
    else
      promise.deliver(values...);
  });
}

// The reply to a request that changed the table: `values` (or `refusal`), sent
// once `changes` are in the journal. Without a journal, or without changes, it
// is sent at once.
template <class... Ts>
caf::result<Ts...> when_durable(pool_self self, std::vector<journal_change> changes, caf::error refusal, Ts... values) {
  auto& st = self->state;
  if (!st.config.journal || changes.empty()) {
    if (refusal) return refusal;
    return caf::result<Ts...>(std::move(values)...);
  }
  auto promise = self->template make_response_promise<Ts...>();
  deliver_when_durable(self, promise, std::move(changes), std::move(refusal), std::move(values)...);
  return promise;
}

// Erasures nobody waits for (collected allocs): journaled with the burst.
void journal_unawaited(pool_self self, std::vector<journal_change> erased) {
  after_commit(self, std::move(erased), [](const caf::error*) {});
}

// Brings the allocs of the journal back (a restart): leases unchanged, so an
// expired alloc stays expired and collectable. Allocs that no longer fit the
// total are destroyed and erased.
outcome<void> restore_from_journal(pool_self self) {
  auto& st = self->state;
  auto stored = st.config.journal->load();
  if (!stored) return stored.error();
  auto dropped = st.table->init(st.config.resources, std::move(*stored));
  std::vector<journal_change> erased;
  for (const auto& alloc : dropped) {
    spdlog::warn("pool {}: stored alloc {} does not fit {}; destroying it", st.config.id, alloc.id,
                 st.config.resources.to_string());
    auto killed = st.config.manager->kill(alloc);
    if (!killed)
      spdlog::error("pool {}: alloc manager kill {}: {}", st.config.id, alloc.id, killed.error().to_string());
    erased.push_back(journal_change::erase(alloc));
  }
  if (!erased.empty())
    if (auto committed = st.config.journal->commit(erased); !committed) return committed;
  spdlog::info("pool {}: restored {} allocs from {}", st.config.id, st.table->size(), st.config.journal->describe());
  return {};
}

// ---------------------------------------------------------------- alloc actors

local_alloc_actor spawn_alloc_actor(pool_self self, const AllocInspect& alloc) {
  self->state.config.manager->opened(alloc);  // before its actor can write into the backing
  auto local = local_id_of(alloc.id);
  pool_actor me = caf::actor_cast<pool_actor_impl>(self);
  alloc_exec_context execs{self->state.config.execs, alloc.resources, caf::actor_cast<caf::actor>(self),
                           self->state.config.id};
  auto actor = self->spawn<caf::linked>(alloc_actor_behavior, std::move(me), local, alloc.id, std::move(execs));
  self->state.alloc_actors[local] = actor;
  return actor;
}

// The actor of alloc `local` (in the table), spawned on its first exec op:
// most allocs never run one, and an accept then costs no spawn, link and
// unlink (CAF 0.17 unlinks by scanning the pool's links: O(live allocs)).
// Null when the alloc is not in the table.
local_alloc_actor alloc_actor_of(pool_self self, const std::string& local) {
  auto& st = self->state;
  if (auto it = st.alloc_actors.find(local); it != st.alloc_actors.end()) return it->second;
  auto alloc = st.table->inspect(local);
  if (!alloc) return local_alloc_actor{};
  return spawn_alloc_actor(self, *alloc);
}

// After a restart: with execs, every restored alloc's actor at once, since it
// brings back the execs recorded in the alloc's directory (running ones become
// lost, waiting ones queue again). Without execs they wait for a need.
void spawn_restored_alloc_actors(pool_self self) {
  if (!self->state.config.execs.processes) return;
  for (const auto& alloc : self->state.table->allocs()) spawn_alloc_actor(self, alloc);
}

// Tells an alloc actor its alloc is gone and unlinks it: a stopped alloc actor
// lives on only while someone holds its handle, and its end (exit reason
// `unreachable` once unreferenced) must not take the pool down.
void stop_alloc_actor(pool_self self, const local_alloc_actor& actor) {
  self->send(actor, kill_atom::value);
  self->unlink_from(actor);
}

// ---------------------------------------------------------------- retiring

// The last step of retiring an alloc, once its execs' processes are gone:
// destroy its backing and tell subscribers. Returns the manager's verdict.
outcome<void> destroy_retired(pool_self self, const AllocInspect& alloc, alloc_event_kind kind, int64_t now) {
  auto& st = self->state;
  auto killed = st.config.manager->kill(alloc);
  if (!killed) spdlog::error("pool {}: alloc manager kill {}: {}", st.config.id, alloc.id, killed.error().to_string());
  emit_alloc_event(self, kind, alloc, now);
  return killed;
}

// An alloc left the table (freed, collected, or stopped). Its actor is stopped
// at once (no exec reaches it any more) and its execs' processes are killed
// without blocking: once they are gone (at once when there are none) the
// alloc's backing is destroyed, subscribers are told, and `then` gets the
// manager's verdict. Until then the alloc is retiring and holds its resources.
void retire_alloc(pool_self self, const AllocInspect& alloc, alloc_event_kind kind, int64_t now,
                  std::function<void(outcome<void>)> then) {
  auto& st = self->state;
  auto it = st.alloc_actors.find(local_id_of(alloc.id));
  if (it != st.alloc_actors.end()) {
    stop_alloc_actor(self, it->second);
    st.alloc_actors.erase(it);
  }
  bool pending = false;
  if (st.config.execs.processes) {
    auto pool = caf::actor_cast<caf::actor>(self);
    pending = st.config.execs.processes->terminate_group(
        alloc.id, st.config.execs.kill_grace_ms,
        [pool, id = alloc.id] { caf::anon_send(pool, execs_gone_atom::value, id); });
  }
  if (!pending) {
    then(destroy_retired(self, alloc, kind, now));
    return;
  }
  spdlog::info("pool {}: alloc {} {}; waiting for its execs' processes to die", st.config.id, alloc.id,
               to_string(kind));
  st.retiring[alloc.id] = retiring_alloc{alloc, kind, std::move(then)};
}

// retire_alloc for each of `allocs`; `done` runs once all are retired.
void retire_allocs(pool_self self, const std::vector<AllocInspect>& allocs, alloc_event_kind kind, int64_t now,
                   retired_handler done) {
  struct joined {
    size_t left = 0;
    std::vector<journal_change> erased;
    std::optional<pool_error> failure;
    retired_handler done;
  };
  auto join = std::make_shared<joined>();
  join->left = allocs.size();
  join->done = std::move(done);
  for (const auto& alloc : allocs) join->erased.push_back(journal_change::erase(alloc));
  if (allocs.empty()) {
    join->done(std::move(join->erased), std::nullopt);
    return;
  }
  for (const auto& alloc : allocs)
    retire_alloc(self, alloc, kind, now, [join](outcome<void> killed) {
      if (!killed && !join->failure) join->failure = killed.error();
      if (--join->left == 0) join->done(std::move(join->erased), std::move(join->failure));
    });
}

// Collected allocs: nobody waits for their retirement, only the journal hears of it.
void retire_collected(pool_self self, const std::vector<AllocInspect>& collected, int64_t now) {
  retire_allocs(self, collected, alloc_event_kind::collected, now,
                [self](std::vector<journal_change> erased, std::optional<pool_error>) {
                  journal_unawaited(self, std::move(erased));
                });
}

// Runs the creates that waited for retiring allocs, in order, while none is
// retiring (a create that collects allocs with running execs makes one).
void run_deferred_creates(pool_self self) {
  auto& st = self->state;
  while (st.retiring.empty() && !st.deferred_creates.empty()) {
    auto next = std::move(st.deferred_creates.front());
    st.deferred_creates.pop_front();
    next();
  }
}

// ---------------------------------------------------------------- create

bool collects_running_execs(pool_self self, const resource_pool::created& plan) {
  auto& processes = self->state.config.execs.processes;
  if (!processes) return false;
  for (const auto& gone : plan.collected)
    if (processes->has_group(gone.id)) return true;
  return false;
}

// The allocs the new one joins, for a manager that reads them (O(allocs), so
// only then): every alloc in the table but those the plan collects.
std::vector<AllocInspect> allocs_beside(pool_self self, const resource_pool::created& plan) {
  std::vector<AllocInspect> remaining;
  if (!self->state.config.manager->needs_existing()) return remaining;
  for (auto& alloc : self->state.table->allocs()) {
    bool collected = false;
    for (const auto& gone : plan.collected) collected = collected || gone.id == alloc.id;
    if (!collected) remaining.push_back(std::move(alloc));
  }
  return remaining;
}

// Collects the plan's expired allocs whose execs still run: out of the
// table now, retiring until their processes are gone.
void collect_running(pool_self self, const resource_pool::created& plan, int64_t now) {
  for (const auto& gone : plan.collected) self->state.table->free(local_id_of(gone.id));
  retire_collected(self, plan.collected, now);
  publish_and_rearm(self, now);
}

// offer.Accept: plan, build the backing, then commit, so a manager failure
// leaves the table untouched. The reply goes through `promise`.
void run_create(pool_self self, std::string offer_id, AllocMeta meta,
                caf::typed_response_promise<AllocInspect> promise) {
  auto& st = self->state;
  auto now = now_ms(self);
  catch_up(self, now);
  auto planned = st.table->plan_accept(offer_id, meta, now);
  if (!planned) {
    if (spdlog::should_log(spdlog::level::debug))
      spdlog::debug("pool {}: accept {} refused: {}", st.config.id, meta.want.to_string(), planned.error().to_string());
    promise.deliver(make_error(planned.error()));
    return;
  }
  // The new alloc never runs beside collected allocs' processes: collect
  // them, then plan again once they are gone.
  if (collects_running_execs(self, *planned)) {
    collect_running(self, *planned, now);
    st.deferred_creates.push_front(
        [self, offer_id, meta, promise]() mutable { run_create(self, offer_id, meta, promise); });
    run_deferred_creates(self);  // at once, should none of them still be retiring
    return;
  }
  auto backed = st.config.manager->create(planned->alloc, initial_lease_ms, allocs_beside(self, *planned));
  if (!backed) {
    spdlog::error("pool {}: alloc manager {} create {}: {}", st.config.id, st.config.manager->name(), planned->alloc.id,
                  backed.error().to_string());
    promise.deliver(make_error(error_kind::internal, "alloc manager " + st.config.manager->name() +
                                                         " could not create " + planned->alloc.id + ": " +
                                                         backed.error().message));
    return;
  }
  // resource_pool::commit asserts (debug builds) that its allocs never exceed the total.
  auto committed = st.table->commit(*planned);
  if (!committed) {
    promise.deliver(make_error(committed.error()));
    return;
  }
  // The collected allocs run no exec (checked above), so this retires them at once.
  retire_collected(self, planned->collected, now);
  emit_alloc_event(self, alloc_event_kind::created, planned->alloc, now);  // its actor comes with its first exec op
  publish_and_rearm(self, now);
  deliver_when_durable(self, promise, {journal_change::put(planned->alloc)}, caf::error{}, planned->alloc);
}

// ---------------------------------------------------------------- lifecycle

// One function per message (or event) the pool handles; pool_actor_behavior
// only maps each message to its function.

// Sets the pool up from its config and brings back what the journal holds.
void on_start(pool_self self, pool_actor_config config) {
  auto& st = self->state;
  st.config = std::move(config);
  st.table.emplace(st.config.id, st.config.resources);
  st.table->set_max_allocs(static_cast<size_t>(std::max<int64_t>(0, st.config.max_allocs)));
  st.started_ms = now_ms(self);
  if (st.config.journal) {
    if (auto restored = restore_from_journal(self); !restored)
      stop_on_journal_failure(self, restored.error());
    else
      spawn_restored_alloc_actors(self);
    auto draining = st.config.journal->draining();
    st.draining = draining && *draining;
    if (st.draining) spdlog::info("pool {}: draining (as before the restart)", st.config.id);
  }
  st.announced = current_view(self, st.started_ms);
  rearm_expiry_timer(self, st.started_ms);  // restored leases expire on time, not at the next request
  spdlog::info("pool {}: started with {} (manager {}, at most {} allocs)", st.config.id,
               st.config.resources.to_string(), st.config.manager->name(),
               st.config.max_allocs > 0 ? std::to_string(st.config.max_allocs) : "any");
}

void on_subscriber_down(pool_self self, const caf::down_msg& down) {
  auto& subs = self->state.subscribers;
  subs.erase(std::remove_if(subs.begin(), subs.end(), [&](const caf::actor& s) { return s.address() == down.source; }),
             subs.end());
}

PoolStatus on_status(pool_self self) {
  auto now = now_ms(self);
  catch_up(self, now);
  auto& table = *self->state.table;
  return PoolStatus{
      table.pool_id(),           table.total(),       available_now(self, now), static_cast<int64_t>(table.size()), now,
      self->state.config.labels, self->state.draining};
}

std::vector<OfferInfo> on_offers(pool_self self) {
  auto now = now_ms(self);
  catch_up(self, now);
  return offers_now(self, now);
}

caf::result<OfferInfo> on_offer(pool_self self, const std::string& id) {
  auto now = now_ms(self);
  catch_up(self, now);
  if (self->state.draining)
    return make_error(error_kind::unavailable, "pool " + self->state.config.id + " is draining");
  auto offer = self->state.table->offer(id, now);
  if (!offer) return make_error(offer.error());
  auto offers = offers_now(self, now);  // less what retiring allocs hold
  if (offers.empty()) return make_error(error_kind::not_exist, "offer " + id + ": offer expired");
  return offers.front();
}

// A create waits while any alloc is retiring: its resources may be what the
// new alloc needs, and they are free only once its processes are gone.
caf::result<AllocInspect> on_accept(pool_self self, const std::string& offer_id, const AllocMeta& meta) {
  if (self->state.draining)
    return make_error(error_kind::unavailable, "pool " + self->state.config.id + " is draining");
  auto local = resolve(self, offer_id);
  if (!local) return make_error(local.error());
  auto promise = self->make_response_promise<AllocInspect>();
  if (!self->state.retiring.empty())
    self->state.deferred_creates.push_back(
        [self, offer_id = *local, meta, promise]() mutable { run_create(self, offer_id, meta, promise); });
  else
    run_create(self, *local, meta, promise);
  return promise;
}

std::vector<AllocInspect> on_allocs(pool_self self) {
  catch_up(self, now_ms(self));
  return self->state.table->allocs();
}

caf::result<AllocInspect> on_inspect(pool_self self, const std::string& id) {
  catch_up(self, now_ms(self));
  auto local = resolve(self, id);
  if (!local) return make_error(local.error());
  auto alloc = self->state.table->inspect(*local);
  if (!alloc) return make_error(alloc.error());
  return *alloc;
}

caf::result<int64_t> on_keepalive(pool_self self, const std::string& id, int64_t interval_ms) {
  auto now = now_ms(self);
  catch_up(self, now);
  auto local = resolve(self, id);
  if (!local) return make_error(local.error());
  auto granted = self->state.table->keepalive(*local, interval_ms, now);
  if (!granted) return make_error(granted.error());
  spdlog::debug("pool {}: keepalive {} granted {} ms", self->state.config.id, *local, *granted);
  publish_and_rearm(self, now);  // a revived alloc shrinks the offer
  return when_durable(self, {journal_change::put(*self->state.table->inspect(*local))}, caf::error{}, *granted);
}

caf::result<caf::ok_atom> on_free(pool_self self, const std::string& id) {
  auto now = now_ms(self);
  catch_up(self, now);
  auto local = resolve(self, id);
  if (!local) return make_error(local.error());
  auto freed = self->state.table->free(*local);
  if (!freed) return make_error(freed.error());
  self->state.last_free_ms = now;
  // The reply waits for the alloc's execs to die, then for the journal.
  auto promise = self->make_response_promise<caf::ok_atom>();
  retire_allocs(self, {*freed}, alloc_event_kind::freed, now,
                [self, promise, id = freed->id](std::vector<journal_change> erased, std::optional<pool_error> failure) {
                  caf::error refusal;
                  if (failure)  // reflow's Free reports the manager's failure; the alloc is gone regardless
                    refusal = make_error(error_kind::internal, "alloc " + id + " freed, but " + failure->message);
                  deliver_when_durable(self, promise, std::move(erased), std::move(refusal), caf::ok_atom::value);
                });
  publish_and_rearm(self, now);
  return promise;
}

caf::result<bool, int64_t> on_idle_stop(pool_self self, int64_t idle_ms) {
  auto& st = self->state;
  auto now = now_ms(self);
  catch_up(self, now);
  auto verdict = st.table->stop_if_idle_for(idle_ms, now, st.started_ms, st.last_free_ms);
  if (!verdict.stopped) return caf::result<bool, int64_t>(false, verdict.max_time_to_expiry_ms);
  spdlog::info("pool {}: idle for {} ms; stopped, freeing {} allocs", st.config.id, idle_ms, verdict.freed.size());
  // As a free: the reply waits for the allocs' execs to die, then for the journal.
  auto promise = self->make_response_promise<bool, int64_t>();
  retire_allocs(self, verdict.freed, alloc_event_kind::freed, now,
                [self, promise, left = verdict.max_time_to_expiry_ms](std::vector<journal_change> erased,
                                                                      std::optional<pool_error>) {
                  deliver_when_durable(self, promise, std::move(erased), caf::error{}, true, left);
                });
  publish_and_rearm(self, now);
  return promise;
}

caf::result<exec_answer> on_exec(pool_self self, const exec_call& call) {
  auto local = resolve(self, call.alloc);
  if (!local) return make_error(local.error());
  auto actor = alloc_actor_of(self, *local);
  if (!actor) return make_error(error_kind::not_exist, "alloc " + call.alloc + " does not exist");
  return self->delegate(actor, exec_atom::value, call);
}

void on_exec_event(pool_self self, const exec_event& event) {
  for (const auto& sub : self->state.subscribers) caf::anon_send(sub, exec_event_atom::value, event);
}

void on_subscribe(pool_self self, const caf::actor& subscriber) {
  auto now = now_ms(self);
  catch_up(self, now);
  self->monitor(subscriber);
  self->state.subscribers.push_back(subscriber);
  caf::anon_send(subscriber, changed_atom::value, make_announcement(self, now));
}

// The burst's group commit: every held reply goes out once its changes are
// durable, or all of them answer internal and the pool stops.
void on_flush(pool_self self) {
  auto& st = self->state;
  st.flush_sent = false;
  auto changes = std::exchange(st.unflushed, {});
  auto held = std::exchange(st.held, {});
  auto committed = st.config.journal->commit(changes);
  if (!committed) {
    auto failure =
        make_error(error_kind::internal, "state store commit failed (the worker stops): " + committed.error().message);
    for (auto& finish : held) finish(&failure);
    stop_on_journal_failure(self, committed.error());
    return;
  }
  spdlog::debug("pool {}: committed {} changes for {} replies", st.config.id, changes.size(), held.size());
  for (auto& finish : held) finish(nullptr);
}

void on_execs_gone(pool_self self, const std::string& id) {
  auto& st = self->state;
  auto it = st.retiring.find(id);
  if (it == st.retiring.end()) return;
  auto entry = std::move(it->second);
  st.retiring.erase(it);
  auto now = now_ms(self);
  catch_up(self, now);
  spdlog::info("pool {}: alloc {}: its execs' processes are gone", st.config.id, id);
  auto killed = destroy_retired(self, entry.alloc, entry.kind, now);
  publish_and_rearm(self, now);  // the offer gets its resources back
  if (entry.then) entry.then(std::move(killed));
  run_deferred_creates(self);
}

// Drain (or undo it): kept in the journal first, so it survives a restart;
// the allocs stay and keep being served.
caf::result<caf::ok_atom> on_drain(pool_self self, bool on) {
  auto& st = self->state;
  auto now = now_ms(self);
  catch_up(self, now);
  if (st.draining == on) return caf::ok_atom::value;
  if (st.config.journal)
    if (auto saved = st.config.journal->set_draining(on); !saved) return make_error(saved.error());
  st.draining = on;
  spdlog::info("pool {}: {}", st.config.id, on ? "draining" : "no longer draining");
  publish_offer_change(self, now);
  return caf::ok_atom::value;
}

void on_tick(pool_self self, uint64_t generation) {
  auto& st = self->state;
  if (generation != st.timer_generation) return;  // superseded by a later arm
  st.timer_at_ms.reset();
  auto now = now_ms(self);
  catch_up(self, now);
  rearm_expiry_timer(self, now);
}

pool_actor_impl::behavior_type pool_actor_behavior(pool_self self, pool_actor_config config) {
  on_start(self, std::move(config));
  self->set_down_handler([=](caf::down_msg& down) { on_subscriber_down(self, down); });
  return {
      [=](pool_id_atom) { return self->state.config.id; },
      [=](status_atom) { return on_status(self); },
      [=](offers_atom) { return on_offers(self); },
      [=](offer_atom, const std::string& id) { return on_offer(self, id); },
      [=](accept_atom, const std::string& offer_id, const AllocMeta& meta) { return on_accept(self, offer_id, meta); },
      [=](allocs_atom) { return on_allocs(self); },
      [=](inspect_atom, const std::string& id) { return on_inspect(self, id); },
      [=](keepalive_atom, const std::string& id, int64_t interval_ms) { return on_keepalive(self, id, interval_ms); },
      [=](free_atom, const std::string& id) { return on_free(self, id); },
      [=](idle_stop_atom, int64_t idle_ms) { return on_idle_stop(self, idle_ms); },
      [=](drain_atom, bool on) { return on_drain(self, on); },
      [=](exec_atom, const exec_call& call) { return on_exec(self, call); },
      [=](exec_event_atom, const exec_event& event) { on_exec_event(self, event); },
      [=](subscribe_atom, const caf::actor& subscriber) { on_subscribe(self, subscriber); },
      [=](flush_atom) { on_flush(self); },
      [=](execs_gone_atom, const std::string& id) { on_execs_gone(self, id); },
      [=](tick_atom, uint64_t generation) { on_tick(self, generation); },
  };
}

}  // namespace

worker_pool_actor spawn_pool_actor(caf::actor_system& sys, pool_actor_config config) {
  if (!config.manager) throw std::invalid_argument("pool actor " + config.id + " needs an alloc manager");
  if (!valid_pool_id(config.id))
    throw std::invalid_argument("pool id \"" + config.id + "\" must be non-empty and without '/'");
  return sys.spawn(pool_actor_behavior, std::move(config));
}

}  // namespace poolbus

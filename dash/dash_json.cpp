#include "dash/dash_json.hpp"

#include "dash/utf8_text.hpp"
#include "dash/waiting_reason.hpp"
#include "schemas/json.hpp"
#include "schemas/map_writer.hpp"

namespace poolbus {
namespace {

using codec::packer;

// Renders a map packed by list(out) as JSON; our own bytes always render.
template <class List>
std::string json_of(List&& list) {
  return body_json(codec::map_body(list));
}

template <class Out>
void list_pool(Out& out, const pool_view& pool) {
  const offer_announcement& a = pool.latest;
  out.text("id", a.pool);
  out.field("resources", [&](packer& pk) { codec::pack_resources(pk, a.resources); });
  out.field("available", [&](packer& pk) { codec::pack_resources(pk, a.available); });
  out.int64("allocs", a.allocs);
  out.field("labels", [&](packer& pk) { codec::pack_labels(pk, a.labels); });
  out.boolean("draining", a.draining);
  out.int64("last_seen_ms", pool.last_seen_ms);
  out.int64("seq", a.seq);
  out.text("run", a.run);  // seq counts within one worker run
}

template <class Out>
void list_tail(Out& out, const tail_event& e) {
  out.text("topic", e.topic);
  out.text("kind", e.kind);
  out.text("event", e.event);
  out.text("pool", e.pool);
  out.int64("ts_ms", e.ts_ms);
  out.raw("body", e.body);
}

void pack_waiting(packer& pk, const queue_entry& q, const cluster_view& view) {
  codec::pack_fields(pk, [&](auto& out) {
    out.text("id", q.id);
    out.text("owner", q.owner);
    out.field("min", [&](packer& p) { codec::pack_resources(p, q.min); });
    out.int64("width", q.width);
    out.int64("count", q.count);
    out.int64("priority", q.priority);
    out.field("constraints", [&](packer& p) { codec::pack_constraints(p, q.constraints); });
    out.int64("queued_ms", q.queued_ms);
    out.int64("deadline_ms", q.deadline_ms);
    out.text("why", waiting_reason(q, view.pools()));
  });
}

}  // namespace

std::string body_json(std::string_view msgpack_body) {
  auto json = msgpack_to_json(msgpack_body);
  return json ? std::move(*json) : "null";
}

std::string pool_json(const pool_view& pool) {
  return json_of([&](auto& out) { list_pool(out, pool); });
}

std::string pools_json(const cluster_view& view, int64_t now_ms) {
  return json_of([&](auto& out) {
    out.int64("now_ms", now_ms);
    out.field("pools", [&](packer& pk) {
      pk.pack_array(static_cast<uint32_t>(view.pools().size()));
      for (const auto& [id, pool] : view.pools()) codec::pack_fields(pk, [&](auto& p) { list_pool(p, pool); });
    });
  });
}

std::string queue_json(const cluster_view& view, int64_t now_ms) {
  return json_of([&](auto& out) {
    out.int64("now_ms", now_ms);
    out.field("queue", [&](packer& pk) {
      codec::pack_list(pk, view.queue(), [&](packer& p, const queue_entry& q) { pack_waiting(p, q, view); });
    });
  });
}

std::string tail_json(const tail_event& event) {
  return json_of([&](auto& out) { list_tail(out, event); });
}

std::string events_json(const std::vector<const tail_event*>& events) {
  return json_of([&](auto& out) {
    out.field("events", [&](packer& pk) {
      pk.pack_array(static_cast<uint32_t>(events.size()));
      for (const tail_event* e : events) codec::pack_fields(pk, [&](auto& t) { list_tail(t, *e); });
    });
  });
}

std::string stats_json(const dash_stats& s) {
  return json_of([&](auto& out) {
    out.int64("now_ms", s.now_ms);
    out.field("events_per_s", [&](packer& pk) { codec::pack_float64(pk, s.events_per_s); });
    out.uint64("pools", s.pools);
    out.uint64("queue", s.queue);
    out.boolean("broker_up", s.broker_up);
    out.uint64("sse_clients", s.sse_clients);
  });
}

std::string seen_json(const std::vector<std::string>& quiet, int64_t now_ms) {
  return json_of([&](auto& out) {
    out.int64("now_ms", now_ms);
    out.field("quiet", [&](packer& pk) {
      codec::pack_list(pk, quiet, [](packer& p, const std::string& id) { codec::pack_string(p, id); });
    });
  });
}

std::string gone_json(std::string_view pool) {
  return json_of([&](auto& out) { out.text("id", pool); });
}

std::string hello_json(int64_t now_ms) {
  return json_of([&](auto& out) { out.int64("now_ms", now_ms); });
}

std::string allocs_json(const std::vector<AllocInspect>& allocs) {
  return json_of([&](auto& out) {
    out.field("allocs", [&](packer& pk) { codec::pack_list(pk, allocs, codec::pack_alloc_inspect); });
  });
}

std::string alloc_detail_json(const AllocInspect& alloc, const std::vector<ExecInspect>& execs) {
  return json_of([&](auto& out) {
    out.field("alloc", [&](packer& pk) { codec::pack_alloc_inspect(pk, alloc); });
    out.field("execs", [&](packer& pk) { codec::pack_list(pk, execs, codec::pack_exec_inspect); });
  });
}

std::string log_tail_json(std::string_view bytes, int64_t size, bool eof) {
  return json_of([&](auto& out) {
    out.text("text", utf8_lossy(bytes));
    out.int64("size", size);
    out.boolean("eof", eof);
  });
}

std::string error_json(std::string_view kind, std::string_view message) {
  return json_of([&](auto& out) {
    out.field("error", [&](packer& pk) {
      codec::pack_fields(pk, [&](auto& e) {
        e.text("kind", kind);
        e.text("message", utf8_lossy(message));  // it may quote what a client sent
      });
    });
  });
}

}  // namespace poolbus

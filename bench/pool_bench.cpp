// pool-bench: end-to-end benchmarks of poolbus. Each scenario starts a real
// pool-broker (and real pool-workers, or simulated workers that speak the real
// worker protocol) on free loopback ports, measures, and measures the same
// shape of traffic over raw ZeroMQ in the same run, so every figure has a
// yardstick. Prints a table; writes CSV and JSON (see bench/README.md).
#include <CLI/CLI.hpp>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "bench/api_driver.hpp"
#include "bench/bench_results.hpp"
#include "bench/child_process.hpp"
#include "bench/raw_baseline.hpp"
#include "bench/sim_workers.hpp"
#include "bus/endpoints.hpp"
#include "schemas/units.hpp"
#include "schemas/worker_messages.hpp"

using namespace poolbus;
using namespace poolbus::bench;
using steady = std::chrono::steady_clock;

namespace {

struct bench_options {
  std::string bin_dir;
  std::string out = "bench-out";
  bool quick = false;
  std::vector<std::string> scenarios;
  double seconds = 5;  // measuring window of the throughput scenarios
};

double us_since(steady::time_point t0) { return std::chrono::duration<double, std::micro>(steady::now() - t0).count(); }

void log(const char* fmt, const std::string& what) {
  std::fprintf(stderr, fmt, what.c_str());
  std::fprintf(stderr, "\n");
}

Resources res(const char* text) { return *parse_resources(text); }

std::string tcp(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

// A running broker on fresh loopback ports, ready (answers ping).
struct broker_run {
  broker_endpoints endpoints;
  std::unique_ptr<child_process> process;
  std::vector<std::unique_ptr<child_process>> workers;
  std::string state_dir;
};

std::unique_ptr<broker_run> start_broker(const bench_options& opt, zmq::context_t& ctx, const std::string& name) {
  auto run = std::make_unique<broker_run>();
  run->endpoints = {tcp(free_loopback_port()), tcp(free_loopback_port()), tcp(free_loopback_port()),
                    tcp(free_loopback_port())};
  run->state_dir = opt.out + "/state-" + name;
  std::filesystem::remove_all(run->state_dir);
  std::filesystem::create_directories(run->state_dir);
  run->process = std::make_unique<child_process>(
      std::vector<std::string>{opt.bin_dir + "/pool-broker", "--api", run->endpoints.api, "--stream",
                               run->endpoints.stream, "--workers", run->endpoints.workers, "--announce",
                               run->endpoints.announce, "--log-level", "warn"},
      opt.out + "/logs/" + name + "-broker.log");
  api_driver probe(ctx, run->endpoints.api);
  auto deadline = steady::now() + std::chrono::seconds(10);
  for (;;) {
    if (probe.call(plain_request(api_op::ping), 200)) break;
    if (steady::now() > deadline || !run->process->running())
      throw std::runtime_error("broker did not answer ping within 10 s (see " + opt.out + "/logs)");
  }
  return run;
}

void start_worker(const bench_options& opt, broker_run& run, const std::string& id, const std::string& resources,
                  std::vector<std::string> extra_flags = {}) {
  std::vector<std::string> argv{opt.bin_dir + "/pool-worker",
                                "--id",
                                id,
                                "--connect",
                                run.endpoints.workers,
                                "--announce",
                                run.endpoints.announce,
                                "--resources",
                                resources,
                                "--state-dir",
                                run.state_dir + "/" + id,
                                "--log-level",
                                "warn"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  run.workers.push_back(std::make_unique<child_process>(std::move(argv), opt.out + "/logs/" + id + ".log"));
}

void start_sim_workers(const bench_options& opt, broker_run& run, const std::string& prefix, int count) {
  run.workers.push_back(std::make_unique<child_process>(
      std::vector<std::string>{self_exe(), "--sim-workers", std::to_string(count), "--sim-prefix", prefix,
                               "--sim-connect", run.endpoints.workers, "--sim-announce", run.endpoints.announce},
      opt.out + "/logs/sim-" + prefix + ".log"));
}

// Waits until `pools` lists at least n pools.
void wait_pools(api_driver& api, size_t n, int deadline_s) {
  auto deadline = steady::now() + std::chrono::seconds(deadline_s);
  size_t seen = 0;
  while (steady::now() < deadline) {
    auto reply = api.call(plain_request(api_op::pools), 5000);
    if (reply) seen = reply->pools.size();
    if (seen >= n) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("only " + std::to_string(seen) + " of " + std::to_string(n) + " pools joined in time");
}

const Resources small_want = res("cpu=1,mem=1MiB");
const char* big_pool = "cpu=100000,mem=1000TiB,disk=1000TiB";

// Keeps `window` accept+free pairs in flight over `pools` for `seconds`;
// returns pairs completed per second. Each slot: accept -> free -> accept ...
double accept_free_pairs_per_second(api_driver& api, const std::vector<std::string>& pools, int window, double seconds,
                                    uint64_t* errors) {
  std::map<uint64_t, bool> in_flight;  // id -> is an accept
  size_t next_pool = 0;
  auto send_accept = [&] {
    in_flight[api.send(accept_request(pools[next_pool++ % pools.size()] + "/1", small_want))] = true;
  };
  for (int i = 0; i < window; ++i) send_accept();
  uint64_t pairs = 0;
  auto t0 = steady::now();
  auto end = t0 + std::chrono::duration<double>(seconds);
  bool measuring = true;
  while (!in_flight.empty()) {
    auto r = api.receive(measuring ? 100 : 6000);
    if (!r) {
      if (!measuring) break;
    } else {
      auto it = in_flight.find(r->id);
      if (it == in_flight.end()) continue;
      bool was_accept = it->second;
      in_flight.erase(it);
      if (was_accept && r->reply) {
        in_flight[api.send(free_request(r->reply->alloc.id))] = false;
      } else {
        if (!r->reply) ++*errors;
        if (!was_accept && measuring) ++pairs;
        if (measuring) send_accept();
      }
    }
    if (measuring && steady::now() >= end) measuring = false;  // then drain what is in flight
  }
  return static_cast<double>(pairs) / seconds;
}

// --- scenarios ----------------------------------------------------------------

// One accept then one free, one request in flight, `pairs` times on `pool`:
// each call's latency in microseconds (accepts at even, frees at odd indexes).
std::vector<double> accept_free_calls_us(api_driver& api, const std::string& pool, int pairs, size_t* request_bytes,
                                         size_t* reply_bytes) {
  std::vector<double> calls;
  for (int i = -pairs / 10; i < pairs; ++i) {
    auto request = accept_request(pool + "/1", small_want);
    request.id_raw = "\x01";
    *request_bytes = encode_api_request(request).size();
    auto t0 = steady::now();
    auto accepted = api.call(std::move(request), 10000, reply_bytes);
    double accept_us = us_since(t0);
    if (!accepted) throw std::runtime_error("accept failed: " + accepted.error().to_string());
    auto t1 = steady::now();
    auto freed = api.call(free_request(accepted->alloc.id), 10000);
    double free_us = us_since(t1);
    if (!freed) throw std::runtime_error("free failed: " + freed.error().to_string());
    if (i < 0) continue;  // warm-up
    calls.push_back(accept_us);
    calls.push_back(free_us);
  }
  return calls;
}

void scenario_roundtrip(const bench_options& opt, bench_results& out) {
  zmq::context_t ctx(1);
  auto run = start_broker(opt, ctx, "roundtrip");
  start_worker(opt, *run, "w0", big_pool);
  // The same worker with --sync os: each change reaches the OS before the
  // reply but is not fdatasync'ed, which shows what the disk flush costs.
  start_worker(opt, *run, "os0", big_pool, {"--sync", "os"});
  start_sim_workers(opt, *run, "sim", 1);  // the same path with a near-free worker: the broker's share
  api_driver api(ctx, run->endpoints.api);
  wait_pools(api, 3, 20);
  int pairs = opt.quick ? 200 : 20000;
  size_t request_bytes = 0, reply_bytes = 0;
  auto calls = accept_free_calls_us(api, "w0", pairs, &request_bytes, &reply_bytes);
  auto os_calls = accept_free_calls_us(api, "os0", pairs, &request_bytes, &reply_bytes);
  auto sim_calls = accept_free_calls_us(api, "sim0", pairs, &request_bytes, &reply_bytes);
  std::vector<double> accepts, frees;
  for (size_t i = 0; i < calls.size(); ++i) (i % 2 ? frees : accepts).push_back(calls[i]);
  raw_two_hop raw(1, reply_bytes);
  auto raw_calls = raw.latency_us(request_bytes, 2 * pairs);
  out.add_samples("broker accept/free call", calls);
  out.add_samples("raw zmq 2-hop round trip", raw_calls);
  auto both = calls, raw_copy = raw_calls;
  for (auto [pct, label, limit] : {std::tuple{50.0, "p50", 1.5}, {99.0, "p99", 2.0}, {99.9, "p99.9", 0.0}}) {
    double v = percentile(both, pct), b = percentile(raw_copy, pct);
    result_row row{"roundtrip", std::string(label) + " accept|free call", "us", v, b, "", {}};
    if (limit > 0) {
      char t[32];
      std::snprintf(t, sizeof t, "<= %.1fx", limit);
      row.target = t;
      row.pass = v <= limit * b;
    }
    out.add(row);
  }
  out.add({"roundtrip", "p50 accept", "us", percentile(accepts, 50), {}, "", {}});
  out.add({"roundtrip", "p50 free", "us", percentile(frees, 50), {}, "", {}});
  auto os_copy = os_calls;
  out.add_samples("broker call via worker --sync os", os_calls);
  out.add(
      {"roundtrip (sync=os)", "p50 accept|free call", "us", percentile(os_copy, 50), percentile(raw_copy, 50), "", {}});
  out.add(
      {"roundtrip (sync=os)", "p99 accept|free call", "us", percentile(os_copy, 99), percentile(raw_copy, 99), "", {}});
  auto sim_copy = sim_calls;
  out.add_samples("broker call via simulated worker", sim_calls);
  out.add({"roundtrip (sim worker)",
           "p50 accept|free call",
           "us",
           percentile(sim_copy, 50),
           percentile(raw_copy, 50),
           "",
           {}});
  out.add({"roundtrip (sim worker)",
           "p99 accept|free call",
           "us",
           percentile(sim_copy, 99),
           percentile(raw_copy, 99),
           "",
           {}});
}

void scenario_throughput(const bench_options& opt, bench_results& out) {
  zmq::context_t ctx(1);
  auto run = start_broker(opt, ctx, "throughput");
  std::vector<std::string> pools;
  for (int i = 0; i < 4; ++i) {
    pools.push_back("t" + std::to_string(i));
    start_worker(opt, *run, pools.back(), big_pool);
  }
  api_driver api(ctx, run->endpoints.api);
  wait_pools(api, 4, 20);
  uint64_t errors = 0;
  accept_free_pairs_per_second(api, pools, 16, opt.quick ? 0.1 : 0.5, &errors);  // warm-up
  auto request_bytes = encode_api_request(accept_request("t0/1", small_want)).size();
  for (int window : {64, 256}) {
    double pairs = accept_free_pairs_per_second(api, pools, window, opt.seconds, &errors);
    double raw_pairs;
    {
      raw_two_hop raw(4, 400);
      raw_pairs = raw.round_trips_per_second(1, window, request_bytes, opt.seconds) / 2;
    }
    auto name = "throughput w=" + std::to_string(window);
    out.add({name, "allocs placed+freed/s", "1/s", pairs, raw_pairs, ">= 0.3x", pairs >= 0.3 * raw_pairs});
    out.add({name, "allocs placed+freed/s (abs)", "1/s", pairs, {}, ">= 50000", pairs >= 50000});
  }
  if (errors) log("throughput: %s failed requests", std::to_string(errors));
}

void scenario_keepalive(const bench_options& opt, bench_results& out) {
  zmq::context_t ctx(1);
  auto run = start_broker(opt, ctx, "keepalive");
  start_worker(opt, *run, "k0", big_pool);
  api_driver api(ctx, run->endpoints.api);
  wait_pools(api, 1, 20);
  int live = opt.quick ? 200 : 10000;
  int64_t rss_before = rss_bytes(run->process->pid());
  std::vector<std::string> allocs;
  std::set<uint64_t> pending;
  int sent = 0;
  while (static_cast<int>(allocs.size()) < live) {
    while (sent < live && pending.size() < 256) {
      pending.insert(api.send(accept_request("k0/1", small_want)));
      ++sent;
    }
    auto r = api.receive(10000);
    if (!r) throw std::runtime_error("keepalive: accepts stalled");
    if (!pending.erase(r->id)) continue;
    if (!r->reply) throw std::runtime_error("keepalive: accept failed: " + r->reply.error().to_string());
    allocs.push_back(r->reply->alloc.id);
  }
  int64_t rss_after = rss_bytes(run->process->pid());
  size_t next = 0;
  auto send_keepalive = [&] { pending.insert(api.send(keepalive_request(allocs[next++ % allocs.size()], 60000))); };
  for (int i = 0; i < 256; ++i) send_keepalive();
  uint64_t done = 0, errors = 0;
  auto t0 = steady::now();
  auto end = t0 + std::chrono::duration<double>(opt.seconds);
  while (steady::now() < end) {
    auto r = api.receive(100);
    if (!r || !pending.erase(r->id)) continue;
    if (!r->reply) ++errors;
    ++done;
    send_keepalive();
  }
  double rate = static_cast<double>(done) / std::chrono::duration<double>(steady::now() - t0).count();
  while (!pending.empty()) {
    auto r = api.receive(6000);
    if (!r) break;
    pending.erase(r->id);
  }
  auto request_bytes = encode_api_request(keepalive_request(allocs[0], 60000)).size();
  raw_two_hop raw(1, 40);
  double raw_rate = raw.round_trips_per_second(1, 256, request_bytes, opt.seconds);
  out.add({"keepalive " + std::to_string(live) + " live", "keepalives/s (1 worker)", "1/s", rate, raw_rate, "", {}});
  out.add({"keepalive " + std::to_string(live) + " live",
           "broker RSS per live alloc",
           "B",
           static_cast<double>(rss_after - rss_before) / live,
           {},
           "",
           {}});
  if (errors) log("keepalive: %s failed keepalives", std::to_string(errors));
}

void scenario_allocate(const bench_options& opt, bench_results& out) {
  zmq::context_t ctx(1);
  auto run = start_broker(opt, ctx, "allocate");
  int pools = opt.quick ? 10 : 100, clients = opt.quick ? 4 : 32;
  start_sim_workers(opt, *run, "a", pools);
  {
    api_driver api(ctx, run->endpoints.api);
    wait_pools(api, pools, 30);
  }
  std::vector<std::unique_ptr<api_driver>> drivers;
  std::vector<zmq::pollitem_t> items;
  auto min = res("cpu=1,mem=1GiB");
  for (int i = 0; i < clients; ++i) {
    drivers.push_back(std::make_unique<api_driver>(ctx, run->endpoints.api));
    items.push_back({drivers.back()->handle(), 0, ZMQ_POLLIN, 0});
  }
  for (auto& d : drivers) d->send(allocate_request(min));
  uint64_t pairs = 0, errors = 0;
  std::vector<double> unused;
  auto t0 = steady::now();
  auto end = t0 + std::chrono::duration<double>(opt.seconds);
  std::vector<bool> freeing(clients, false);
  while (steady::now() < end) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    for (int i = 0; i < clients; ++i) {
      while (auto r = drivers[i]->receive(0)) {
        if (!freeing[i] && r->reply) {
          drivers[i]->send(free_request(r->reply->alloc.id));
          freeing[i] = true;
        } else {
          if (!r->reply) ++errors;
          if (freeing[i]) ++pairs;
          freeing[i] = false;
          drivers[i]->send(allocate_request(min));
        }
      }
    }
  }
  double rate = static_cast<double>(pairs) / std::chrono::duration<double>(steady::now() - t0).count();
  auto request_bytes = encode_api_request(allocate_request(min)).size();
  raw_two_hop raw(pools, 400);
  double raw_rate = raw.round_trips_per_second(clients, 1, request_bytes, opt.seconds) / 2;
  auto name = "allocate " + std::to_string(clients) + "c/" + std::to_string(pools) + "p";
  out.add({name, "allocates+frees/s", "1/s", rate, raw_rate, "", {}});
  if (errors) log("allocate: %s failed requests", std::to_string(errors));
}

// A deep queue: every pool is held whole, `waiting` allocates of a whole
// pool wait in the broker's queue; then, one at a time, a held alloc is freed
// and the time to the placed reply of a waiting request is measured (free
// call, the worker's announcement, the queue's pick, the accept, the reply).
// The broker's CPU is measured meanwhile idle with the queue full: heartbeats
// must cost no work per waiting request.
void scenario_queue(const bench_options& opt, bench_results& out) {
  zmq::context_t ctx(1);
  auto run = start_broker(opt, ctx, "queue");
  int pools = opt.quick ? 10 : 100, waiting = opt.quick ? 50 : 1000, cycles = opt.quick ? 20 : 300;
  start_sim_workers(opt, *run, "q", pools);
  api_driver api(ctx, run->endpoints.api), waiters(ctx, run->endpoints.api);
  wait_pools(api, pools, 30);
  auto whole = res("cpu=64,mem=256GiB,disk=1TiB");  // a sim pool's total
  std::vector<std::string> held;
  for (int i = 0; i < pools; ++i) {
    auto alloc = api.call(accept_request("q" + std::to_string(i) + "/1", whole), 5000);
    if (!alloc) throw std::runtime_error("queue: filling pool " + std::to_string(i) + ": " + alloc.error().to_string());
    held.push_back(alloc->alloc.id);
  }
  auto queued = allocate_request(whole);
  queued.place.wait_ms = 600'000;
  for (int i = 0; i < waiting; ++i) waiters.send(queued);
  for (auto deadline = steady::now() + std::chrono::seconds(30);;
       std::this_thread::sleep_for(std::chrono::milliseconds(20))) {
    auto queue = api.call(plain_request(api_op::queue), 5000);
    if (queue && static_cast<int>(queue->queue.size()) == waiting) break;
    if (steady::now() > deadline) throw std::runtime_error("queue: the requests never all queued");
  }
  // Idle with the queue deep: only heartbeats arrive.
  double cpu0 = cpu_seconds(run->process->pid());
  auto t0 = steady::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(opt.quick ? 0.3 : 2.0));
  double idle_cpu_pct =
      100 * (cpu_seconds(run->process->pid()) - cpu0) / std::chrono::duration<double>(steady::now() - t0).count();
  std::vector<double> latencies;
  cpu0 = cpu_seconds(run->process->pid());
  t0 = steady::now();
  for (int c = 0; c < cycles && c < waiting; ++c) {
    auto freed_at = steady::now();
    auto freed = api.call(free_request(held[static_cast<size_t>(c) % held.size()]), 5000);
    if (!freed) throw std::runtime_error("queue: free: " + freed.error().to_string());
    auto placed = waiters.receive(5000);
    if (!placed || !placed->reply) throw std::runtime_error("queue: a free placed nothing within 5 s");
    latencies.push_back(us_since(freed_at));
    held[static_cast<size_t>(c) % held.size()] = placed->reply->alloc.id;
  }
  double busy_cpu_pct =
      100 * (cpu_seconds(run->process->pid()) - cpu0) / std::chrono::duration<double>(steady::now() - t0).count();
  raw_two_hop raw(pools, 400);
  auto raw_calls = raw.latency_us(encode_api_request(free_request(held.front())).size(), 2 * cycles);
  out.add_samples("free -> queued request placed", latencies);
  auto name = "queue " + std::to_string(waiting) + "w/" + std::to_string(pools) + "p";
  auto copy = latencies;
  double p50 = percentile(copy, 50);
  out.add({name, "p50 free -> placed", "us", p50, percentile(raw_calls, 50), "< 1000", p50 < 1000});
  out.add({name, "p99 free -> placed", "us", percentile(copy, 99), percentile(raw_calls, 99), "", {}});
  out.add({name, "broker CPU, queue deep, idle", "%core", idle_cpu_pct, {}, "", {}});
  out.add({name, "broker CPU, placing", "%core", busy_cpu_pct, {}, "", {}});
}

void scenario_propagation(const bench_options& opt, bench_results& out) {
  zmq::context_t ctx(1);
  auto run = start_broker(opt, ctx, "propagation");
  // The bench itself is the worker here (real protocol), so it knows the exact
  // moment of each change.
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer), pub(ctx, zmq::socket_type::pub), sub(ctx, zmq::socket_type::sub);
  for (auto* s : {&dealer, &pub, &sub}) s->set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::routing_id, "p0");
  dealer.connect(run->endpoints.workers);
  pub.connect(run->endpoints.announce);
  sub.set(zmq::sockopt::subscribe, "offers.p0");
  sub.connect(run->endpoints.stream);
  offer_announcement a;
  a.pool = "p0";
  a.run = "bench";
  a.resources = a.available = res("cpu=8,mem=8GiB,disk=8GiB");
  a.offers.push_back(OfferInfo{"p0/1", "p0", a.available});
  a.heartbeat_ms = 1000;
  auto topic = offers_topic("p0");
  auto publish = [&] {
    a.ts_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count();
    auto body = encode_offer_announcement(a);
    pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(body), zmq::send_flags::none);
    return body.size();
  };
  auto await_seq = [&](int64_t seq, int timeout_ms) {
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms);
    while (steady::now() < deadline) {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(10)) <= 0) continue;
      zmq::message_t t, b;
      (void)sub.recv(t);
      (void)sub.recv(b);
      auto got = decode_offer_announcement(b.to_string_view());
      if (got && got->seq == seq) return true;
    }
    return false;
  };
  auto hello = encode_worker_hello(worker_hello{"p0", "bench", 0});
  dealer.send(zmq::buffer(hello), zmq::send_flags::none);
  for (a.seq = 1;; ++a.seq) {  // until the whole path is connected
    publish();
    if (await_seq(a.seq, 100)) break;
    if (a.seq > 100) throw std::runtime_error("propagation: stream never delivered");
  }
  int count = opt.quick ? 50 : 5000;
  std::vector<double> samples;
  size_t body_bytes = 0;
  auto last_hello = steady::now();
  for (int i = 0; i < count; ++i) {
    ++a.seq;
    a.available = a.available.sub(res("cpu=0.001"));  // a real change each time
    a.offers[0].available = a.available;
    auto t0 = steady::now();
    body_bytes = publish();
    if (!await_seq(a.seq, 2000)) throw std::runtime_error("propagation: change lost");
    samples.push_back(us_since(t0));
    if (steady::now() - last_hello > std::chrono::milliseconds(500)) {
      dealer.send(zmq::buffer(hello), zmq::send_flags::none);
      last_hello = steady::now();
    }
  }
  auto raw = raw_pubsub_latency_us(body_bytes, count);
  out.add_samples("broker offer propagation", samples);
  out.add_samples("raw zmq PUB/SUB hop", raw);
  auto s = samples, r = raw;
  double p50 = percentile(s, 50), p99 = percentile(s, 99);
  out.add({"propagation", "p50 worker->subscriber", "us", p50, percentile(r, 50), "", {}});
  out.add({"propagation", "p99 worker->subscriber", "us", p99, percentile(r, 99), "<= 1000 us", p99 <= 1000});
}

void scenario_scale(const bench_options& opt, bench_results& out) {
  std::vector<int> sizes = opt.quick ? std::vector<int>{20, 100} : std::vector<int>{1000, 10000};
  for (int n : sizes) {
    zmq::context_t ctx(1);
    auto run = start_broker(opt, ctx, "scale" + std::to_string(n));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    int64_t rss_empty = rss_bytes(run->process->pid());
    const int per_process = 2500;  // each simulated pool costs two fds there
    for (int start = 0, k = 0; start < n; start += per_process, ++k)
      start_sim_workers(opt, *run, "s" + std::to_string(k) + "-", std::min(per_process, n - start));
    api_driver api(ctx, run->endpoints.api);
    auto t_join = steady::now();
    wait_pools(api, n, 120);
    log("scale: %s", std::to_string(n) + " pools joined in " + std::to_string(us_since(t_join) / 1e6) + " s");
    std::this_thread::sleep_for(std::chrono::seconds(opt.quick ? 1 : 3));  // steady heartbeats
    // CPU and RSS while every pool heartbeats once a second, nothing else.
    double window = opt.quick ? 1 : 10;
    double cpu0 = cpu_seconds(run->process->pid());
    auto t0 = steady::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(window));
    double cpu_pct =
        100 * (cpu_seconds(run->process->pid()) - cpu0) / std::chrono::duration<double>(steady::now() - t0).count();
    int64_t rss = rss_bytes(run->process->pid());
    int calls = opt.quick ? 5 : 100;
    // A call's latency as the client sees it, and the part of it spent in
    // the client decoding the reply (10,000 offers are ~1 MB of MessagePack):
    // what is left is the broker and the transport.
    std::map<api_op, std::vector<double>> latency, decode, served;
    size_t offers_reply_bytes = 0, pools_reply_bytes = 0;
    for (int i = 0; i < calls; ++i)
      for (auto op : {api_op::offers, api_op::pools}) {
        auto t = steady::now();
        double decode_us = 0;
        auto r = api.call(plain_request(op), 10000, op == api_op::offers ? &offers_reply_bytes : &pools_reply_bytes,
                          &decode_us);
        if (!r) throw std::runtime_error("scale: " + std::string(to_string(op)) + " failed: " + r.error().to_string());
        double total = us_since(t);
        latency[op].push_back(total);
        decode[op].push_back(decode_us);
        served[op].push_back(total - decode_us);
      }
    raw_two_hop raw(1, offers_reply_bytes);
    auto raw_lat = raw.latency_us(30, calls);
    scaling_point point;
    point.pools = n;
    point.offers_p50_us = percentile(latency[api_op::offers], 50);
    point.offers_p99_us = percentile(latency[api_op::offers], 99);
    point.pools_p50_us = percentile(latency[api_op::pools], 50);
    point.pools_p99_us = percentile(latency[api_op::pools], 99);
    point.broker_cpu_pct = cpu_pct;
    point.broker_rss_mb = static_cast<double>(rss) / (1 << 20);
    out.add_scaling(point);
    bool is_target_size = n >= 10000;
    auto name = "scale " + std::to_string(n) + " pools";
    double raw_p50 = percentile(raw_lat, 50);
    out.add({name, "offers p50 latency", "us", point.offers_p50_us, raw_p50, "", {}});
    out.add({name,
             "offers p99 latency",
             "us",
             point.offers_p99_us,
             {},
             is_target_size ? "<= 5000 us" : "",
             is_target_size ? std::optional<bool>(point.offers_p99_us <= 5000) : std::nullopt});
    out.add({name, "pools p50 latency", "us", point.pools_p50_us, raw_p50, "", {}});
    out.add({name,
             "pools p99 latency",
             "us",
             point.pools_p99_us,
             {},
             is_target_size ? "<= 5000 us" : "",
             is_target_size ? std::optional<bool>(point.pools_p99_us <= 5000) : std::nullopt});
    for (auto op : {api_op::offers, api_op::pools}) {
      std::string what(to_string(op));
      auto& s = served[op];
      double served_p99 = percentile(s, 99);
      out.add({name, what + " p50 without client decode", "us", percentile(s, 50), raw_p50, "", {}});
      out.add({name,
               what + " p99 without client decode",
               "us",
               served_p99,
               {},
               is_target_size ? "<= 5000 us" : "",
               is_target_size ? std::optional<bool>(served_p99 <= 5000) : std::nullopt});
      out.add({name, what + " p50 client decode", "us", percentile(decode[op], 50), {}, "", {}});
    }
    out.add({name,
             "broker CPU, 1 heartbeat/s each",
             "%core",
             cpu_pct,
             {},
             is_target_size ? "< 25 %core" : "",
             is_target_size ? std::optional<bool>(cpu_pct < 25) : std::nullopt});
    out.add({name, "broker RSS", "MiB", point.broker_rss_mb, {}, "", {}});
    out.add({name, "broker RSS per pool", "B", static_cast<double>(rss - rss_empty) / n, {}, "", {}});
  }
}

const std::vector<std::pair<std::string, std::function<void(const bench_options&, bench_results&)>>> all_scenarios = {
    {"roundtrip", scenario_roundtrip}, {"throughput", scenario_throughput}, {"keepalive", scenario_keepalive},
    {"allocate", scenario_allocate},   {"queue", scenario_queue},           {"propagation", scenario_propagation},
    {"scale", scenario_scale}};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pool-bench: end-to-end benchmarks of poolbus against raw ZeroMQ", "pool-bench"};
  bench_options opt;
  opt.bin_dir = std::filesystem::path(self_exe()).parent_path().string();
  sim_workers_config sim;
  int sim_count = 0;
  app.add_option("--bin-dir", opt.bin_dir, "where pool-broker and pool-worker are (default: beside pool-bench)");
  app.add_option("--out", opt.out, "directory for results.csv, results.json, latency_samples.csv, scaling.csv");
  app.add_flag("--quick", opt.quick, "tiny counts: a smoke test, not a measurement");
  app.add_option("--scenario", opt.scenarios,
                 "run only these (repeatable): roundtrip, throughput, keepalive, "
                 "allocate, queue, propagation, scale");
  app.add_option("--seconds", opt.seconds, "measuring window of each throughput figure (default 5)");
  app.add_option("--sim-workers", sim_count, "(internal) run N simulated workers until SIGTERM");
  app.add_option("--sim-prefix", sim.prefix, "(internal)");
  app.add_option("--sim-connect", sim.workers_endpoint, "(internal)");
  app.add_option("--sim-announce", sim.announce_endpoint, "(internal)");
  CLI11_PARSE(app, argc, argv);
  if (sim_count > 0) {
    sim.count = sim_count;
    return run_sim_workers(sim);
  }
  if (opt.quick) opt.seconds = std::min(opt.seconds, 0.3);
  for (const auto& name : opt.scenarios) {
    bool known = false;
    for (const auto& s : all_scenarios) known |= s.first == name;
    if (!known) {
      std::fprintf(stderr, "pool-bench: unknown scenario %s\n", name.c_str());
      return 2;
    }
  }
  // 10,000 pools need ~20,000 descriptors in the broker (inherited) and sims.
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  std::filesystem::create_directories(opt.out + "/logs");
  bench_results results;
  int failed = 0;
  for (const auto& [name, run] : all_scenarios) {
    if (!opt.scenarios.empty() && std::find(opt.scenarios.begin(), opt.scenarios.end(), name) == opt.scenarios.end())
      continue;
    log("pool-bench: running %s", name);
    auto t0 = steady::now();
    try {
      run(opt, results);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pool-bench: scenario %s failed: %s\n", name.c_str(), e.what());
      ++failed;
    }
    log("pool-bench: %s", name + " took " + std::to_string(us_since(t0) / 1e6) + " s");
  }
  results.print_table();
  results.write(opt.out);
  std::printf("results written to %s (results.csv, results.json, latency_samples.csv, scaling.csv)\n", opt.out.c_str());
  return failed ? 1 : 0;
}

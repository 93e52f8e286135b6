// pool-bench: end-to-end benchmarks of poolbus. Each scenario starts a real
// pool-broker (and real pool-workers, or simulated workers that speak the real
// worker protocol) on free loopback ports, measures, and measures the same
// shape of traffic over raw ZeroMQ in the same run, so every figure has a
// yardstick. Prints a table; writes CSV and JSON (see bench/README.md).
#include <CLI/CLI.hpp>
#include <poll.h>
#include <sys/resource.h>

#include <chrono>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "bench/api_driver.hpp"
#include "bench/bench_results.hpp"
#include "bench/child_process.hpp"
#include "bench/raw_baseline.hpp"
#include "bench/redis_peer.hpp"
#include "bench/sim_workers.hpp"
#include "bench/sse_client.hpp"
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
  std::vector<int> scale_pools;  // the scale scenario's sizes (default 1,000 and 10,000)
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

// `source`: the local address the simulated pools connect from ("": any).
void start_sim_workers(const bench_options& opt, broker_run& run, const std::string& prefix, int count,
                       const std::string& source = "") {
  std::vector<std::string> argv{self_exe(),    "--sim-workers", std::to_string(count), "--sim-prefix", prefix,
                                "--sim-connect", run.endpoints.workers, "--sim-announce", run.endpoints.announce};
  if (!source.empty()) argv.insert(argv.end(), {"--sim-source", source});
  run.workers.push_back(std::make_unique<child_process>(std::move(argv), opt.out + "/logs/sim-" + prefix + ".log"));
}

// Waits until `pools` lists at least n pools.
// Fails at once when `run`'s broker or one of its workers has exited.
void wait_pools(api_driver& api, size_t n, int deadline_s, broker_run* run = nullptr) {
  auto deadline = steady::now() + std::chrono::seconds(deadline_s);
  size_t seen = 0;
  while (steady::now() < deadline) {
    if (run && !run->process->running()) throw std::runtime_error("the broker exited (see its log)");
    if (run)
      for (auto& w : run->workers)
        if (!w->running()) throw std::runtime_error("a worker exited before the pools joined (see the logs)");
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

// utime + stime of every worker of `run`, in seconds.
double workers_cpu_seconds(broker_run& run) {
  double total = 0;
  for (auto& w : run.workers) total += cpu_seconds(w->pid());
  return total;
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
    // CPU per call is steadier than calls/s on shared cores: another tenant
    // takes cycles from poolbus, but rarely changes what a call costs.
    double broker_cpu = cpu_seconds(run->process->pid()), workers_cpu = workers_cpu_seconds(*run);
    double pairs = accept_free_pairs_per_second(api, pools, window, opt.seconds, &errors);
    double calls = 2 * pairs * opt.seconds;
    broker_cpu = cpu_seconds(run->process->pid()) - broker_cpu;
    workers_cpu = workers_cpu_seconds(*run) - workers_cpu;
    double raw_pairs;
    {
      raw_two_hop raw(4, 400);
      raw_pairs = raw.round_trips_per_second(1, window, request_bytes, opt.seconds) / 2;
    }
    auto name = "throughput w=" + std::to_string(window);
    out.add({name, "allocs placed+freed/s", "1/s", pairs, raw_pairs, ">= 0.3x", pairs >= 0.3 * raw_pairs});
    out.add({name, "allocs placed+freed/s (abs)", "1/s", pairs, {}, ">= 50000", pairs >= 50000});
    if (calls > 0) {
      out.add({name, "broker CPU per call", "us", 1e6 * broker_cpu / calls, {}, "", {}});
      out.add({name, "workers' CPU per call", "us", 1e6 * workers_cpu / calls, {}, "", {}});
    }
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

// n simulated pools against run's endpoints, `tag` naming their logs. Each
// costs two fds in its simulator; past one address's ~28,000 ephemeral ports,
// each simulator connects from its own 127.0.x.y.
void start_scale_sims(const bench_options& opt, broker_run& run, int n, int fd_limit, const std::string& tag) {
  const int per_process = std::min(n > 20000 ? 20000 : 2500, (fd_limit - 100) / 2);
  for (int start = 0, k = 0; start < n; start += per_process, ++k)
    start_sim_workers(opt, run, tag + std::to_string(k) + "-", std::min(per_process, n - start),
                      n > 20000 ? "127.0." + std::to_string(k / 250) + "." + std::to_string(2 + k % 250) : "");
}

// The same n simulated pools heartbeating into bare ZeroMQ sockets for
// `seconds` (as long as the broker had them): its RSS growth per pool is
// libzmq's own share of a pool's memory. (Nothing paces them: at 1 s they
// cycle libzmq's message queues at least as fast as the paced broker's.)
double raw_sink_rss_per_pool(const bench_options& opt, int n, int fd_limit, double seconds) {
  broker_run sink;
  sink.endpoints.workers = tcp(free_loopback_port());
  sink.endpoints.announce = tcp(free_loopback_port());
  sink.process = std::make_unique<child_process>(
      std::vector<std::string>{self_exe(), "--raw-sink", sink.endpoints.workers, sink.endpoints.announce},
      opt.out + "/logs/raw-sink.log");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int64_t rss_empty = rss_bytes(sink.process->pid());
  start_scale_sims(opt, sink, n, fd_limit, "raw");
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return static_cast<double>(rss_bytes(sink.process->pid()) - rss_empty) / n;
}

void scenario_scale(const bench_options& opt, bench_results& out) {
  std::vector<int> sizes = opt.quick ? std::vector<int>{20, 100} : std::vector<int>{1000, 10000};
  if (!opt.scale_pools.empty()) sizes = opt.scale_pools;
  // The broker holds one descriptor per pool, a simulator two: both inherit
  // this process's limit (raise_file_limit).
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  const int fd_limit = static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 24));
  for (int n : sizes) {
    if (n > fd_limit - 200)
      throw std::runtime_error(std::to_string(n) + " pools need about " + std::to_string(n + 200) +
                               " descriptors in the broker; RLIMIT_NOFILE is " + std::to_string(fd_limit) +
                               " (raise the hard limit: ulimit -Hn, or LimitNOFILE= in a systemd unit)");
    zmq::context_t ctx(1);
    auto run = start_broker(opt, ctx, "scale" + std::to_string(n));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    int64_t rss_empty = rss_bytes(run->process->pid());
    start_scale_sims(opt, *run, n, fd_limit, "s");
    api_driver api(ctx, run->endpoints.api);
    auto t_join = steady::now();  // also how long the raw sink gets the same pools
    wait_pools(api, n, n > 20000 ? 600 : 120, run.get());
    log("scale: %s", std::to_string(n) + " pools joined in " + std::to_string(us_since(t_join) / 1e6) + " s");
    // Steady heartbeats: past the broker's heartbeat rate (10,000 a second)
    // it paces the pools, and the last of them hears it as it joins.
    std::this_thread::sleep_for(std::chrono::seconds(opt.quick ? 1 : n > 10000 ? 20 : 3));
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
    bool is_target_size = n == 10000;  // issue 9's targets at 10,000 pools
    bool is_large = n >= 100000;                       // issue 16's at 100,000
    auto name = "scale " + std::to_string(n) + " pools";
    double raw_p50 = percentile(raw_lat, 50);
    auto large_target = [&](double value, double limit) {
      return is_large ? std::optional<bool>(value <= limit) : std::nullopt;
    };
    out.add({name, "offers p50 latency", "us", point.offers_p50_us, raw_p50, is_large ? "<= 20000 us" : "",
             large_target(point.offers_p50_us, 20000)});
    out.add({name,
             "offers p99 latency",
             "us",
             point.offers_p99_us,
             {},
             is_target_size ? "<= 5000 us" : "",
             is_target_size ? std::optional<bool>(point.offers_p99_us <= 5000) : std::nullopt});
    out.add({name, "pools p50 latency", "us", point.pools_p50_us, raw_p50, is_large ? "<= 20000 us" : "",
             large_target(point.pools_p50_us, 20000)});
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
             n > 10000 ? "broker CPU, paced heartbeats" : "broker CPU, 1 heartbeat/s each",
             "%core",
             cpu_pct,
             {},
             is_target_size ? "< 25 %core" : is_large ? "<= 50 %core" : "",
             is_target_size ? std::optional<bool>(cpu_pct < 25) : large_target(cpu_pct, 50)});
    double rss_per_pool = static_cast<double>(rss - rss_empty) / n;
    double pools_held_s = us_since(t_join) / 1e6;
    run.reset();  // frees the descriptors and the cores for the raw sink
    double raw_rss = raw_sink_rss_per_pool(opt, n, fd_limit, pools_held_s);
    out.add({name, "broker RSS", "MiB", point.broker_rss_mb, {}, "", {}});
    out.add({name, "broker RSS per pool", "B", rss_per_pool, raw_rss, is_large ? "<= 10240 B" : "",
             large_target(rss_per_pool, 10240)});
  }
}

// --- dashboard: pool-dash over many heartbeating pools --------------------------

std::unique_ptr<child_process> start_dash(const bench_options& opt, broker_run& run, int port) {
  auto dash = std::make_unique<child_process>(
      std::vector<std::string>{opt.bin_dir + "/pool-dash", "--api", run.endpoints.api, "--stream", run.endpoints.stream,
                               "--http", "127.0.0.1:" + std::to_string(port), "--log-level", "warn"},
      opt.out + "/logs/pool-dash.log");
  auto deadline = steady::now() + std::chrono::seconds(10);
  while (!http_get(port, "/healthz", 500)) {
    if (steady::now() > deadline || !dash->running()) throw std::runtime_error("pool-dash did not come up");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return dash;
}

// Waits until pool-dash's /api/stats counts n pools.
void wait_dash_pools(int port, size_t n, int deadline_s) {
  const std::string want = "\"pools\":" + std::to_string(n) + ",";
  auto deadline = steady::now() + std::chrono::seconds(deadline_s);
  while (steady::now() < deadline) {
    auto stats = http_get(port, "/api/stats", 2000);
    if (stats && stats->find(want) != std::string::npos) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  throw std::runtime_error("pool-dash did not see " + std::to_string(n) + " pools in time");
}

// One accept on `pool` (whose allocs are 0): how long after the pool's
// changed offer reached a direct subscriber of the stream its `pool` event
// reached the SSE client (us). Simulated workers announce offers only.
std::optional<double> dash_hop_us(api_driver& api, zmq::socket_t& sub, sse_client& sse, const std::string& pool) {
  const uint64_t accept_id = api.send(accept_request(pool + "/1", small_want));
  const std::string topic = offers_topic(pool), prefix = "{\"id\":\"" + pool + "\",";
  std::string alloc;
  std::optional<int64_t> seq;
  std::optional<steady::time_point> at_sub, at_sse;
  std::map<int64_t, steady::time_point> sse_seqs;  // this pool's `pool` events by seq
  auto deadline = steady::now() + std::chrono::seconds(5);
  while ((alloc.empty() || !at_sub || !at_sse) && steady::now() < deadline) {
    zmq::pollitem_t items[] = {{sub.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, sse.fd(), ZMQ_POLLIN, 0},
                               {api.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 3, std::chrono::milliseconds(50));
    zmq::message_t t, body;
    while (sub.recv(t, zmq::recv_flags::dontwait)) {
      (void)sub.recv(body);
      if (at_sub || t.to_string_view() != topic) continue;
      auto a = decode_offer_announcement(body.to_string_view());
      if (a && a->allocs == 1) at_sub = steady::now(), seq = a->seq;
    }
    while (auto e = sse.next(0)) {
      const size_t at = e->data.rfind("\"seq\":");
      if (e->name == "pool" && e->data.rfind(prefix, 0) == 0 && at != std::string::npos)
        sse_seqs.emplace(std::stoll(e->data.substr(at + 6)), e->at);
    }
    if (seq && sse_seqs.count(*seq)) at_sse = sse_seqs[*seq];
    if (auto r = api.receive(0); r && r->id == accept_id) {
      if (!r->reply) throw std::runtime_error("dashboard: accept failed: " + r->reply.error().to_string());
      alloc = r->reply->alloc.id;
    }
  }
  if (!alloc.empty()) (void)api.call(free_request(alloc), 10000);
  if (!at_sub || !at_sse)
    std::fprintf(stderr, "dashboard: %s: accepted %d, on the stream %d, to the browser %d (%zu pool events)\n",
                 pool.c_str(), !alloc.empty(), bool(at_sub), bool(at_sse), sse_seqs.size());
  if (!at_sub || !at_sse) return std::nullopt;
  return std::chrono::duration<double, std::micro>(*at_sse - *at_sub).count();
}

// Stream -> browser latencies over `samples` accepts spread over the pools.
std::vector<double> dash_hops_us(api_driver& api, zmq::socket_t& sub, sse_client& sse, int pools, int samples) {
  std::vector<double> out;
  for (int i = 0; i < samples; ++i) {
    auto hop = dash_hop_us(api, sub, sse, "s0-" + std::to_string((i * 7919) % std::min(pools, 2500)));
    if (hop) out.push_back(*hop);
  }
  if (out.size() < static_cast<size_t>(samples) * 9 / 10)
    throw std::runtime_error("dashboard: only " + std::to_string(out.size()) + " of " + std::to_string(samples) +
                             " events reached the browser");
  return out;
}

// `n` more browsers, read by one thread polling them all (as n machines would
// each spend a wake-up, not n threads here on the same 2 cores), counting pool changes.
struct sse_crowd {
  std::vector<std::unique_ptr<sse_client>> clients;
  std::vector<uint64_t> changes;
  std::atomic<bool> stop{false};
  std::thread reader;

  sse_crowd(int port, int n) : changes(static_cast<size_t>(n), 0) {
    for (int i = 0; i < n; ++i) {
      clients.push_back(sse_client::connect(port));
      if (!clients.back()) throw std::runtime_error("dashboard: SSE client " + std::to_string(i) + " refused");
    }
    reader = std::thread([this] { read_all(); });
  }
  ~sse_crowd() {
    stop = true;
    reader.join();
  }
  void read_all() {
    std::vector<pollfd> fds;
    for (auto& c : clients) fds.push_back({c->fd(), POLLIN, 0});
    while (!stop) {
      if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
      for (size_t i = 0; i < fds.size(); ++i)
        if (fds[i].revents)
          while (auto e = clients[i]->next(0))
            if (e->name == "pool") ++changes[i];
    }
  }
};

void scenario_dashboard(const bench_options& opt, bench_results& out) {
  const int n = opt.quick ? 100 : 10000, samples = opt.quick ? 10 : 200, crowd_size = opt.quick ? 20 : 200;
  zmq::context_t ctx(1);
  auto run = start_broker(opt, ctx, "dashboard");
  for (int start = 0, k = 0; start < n; start += 2500, ++k)
    start_sim_workers(opt, *run, "s" + std::to_string(k) + "-", std::min(2500, n - start));
  api_driver api(ctx, run->endpoints.api);
  wait_pools(api, n, 120);
  const int port = free_loopback_port();
  auto dash = start_dash(opt, *run, port);
  wait_dash_pools(port, n, 60);
  // CPU and RSS of pool-dash while every pool heartbeats once a second.
  const double window = opt.quick ? 1 : 10;
  const double cpu0 = cpu_seconds(dash->pid());
  auto t0 = steady::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(window));
  const double cpu_pct =
      100 * (cpu_seconds(dash->pid()) - cpu0) / std::chrono::duration<double>(steady::now() - t0).count();
  const double rss_mb = static_cast<double>(rss_bytes(dash->pid())) / (1 << 20);

  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "offers.s0-");
  sub.connect(run->endpoints.stream);
  auto probe = sse_client::connect(port);
  if (!probe) throw std::runtime_error("dashboard: SSE probe refused");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the SUB's join
  auto alone = dash_hops_us(api, sub, *probe, n, samples);
  std::vector<double> crowded;
  uint64_t fewest = 0;
  {
    sse_crowd crowd(port, crowd_size);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    crowded = dash_hops_us(api, sub, *probe, n, samples);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the last tails reach everyone
    fewest = *std::min_element(crowd.changes.begin(), crowd.changes.end());
  }
  auto raw = raw_pubsub_latency_us(600, 200);
  out.add_samples("pool-dash stream->browser", alone);
  const std::string name = "dashboard " + std::to_string(n) + " pools";
  const bool at_size = n >= 10000;
  const double p50 = percentile(alone, 50), p99 = percentile(alone, 99), crowded_p50 = percentile(crowded, 50);
  out.add({name, "pool-dash CPU, 1 heartbeat/s each", "%core", cpu_pct, {}, at_size ? "< 50 %core" : "",
           at_size ? std::optional<bool>(cpu_pct < 50) : std::nullopt});
  out.add({name, "pool-dash RSS", "MiB", rss_mb, {}, "", {}});
  out.add({name, "p50 stream->browser (1 SSE client)", "us", p50, percentile(raw, 50), "", {}});
  out.add({name, "p99 stream->browser (1 SSE client)", "us", p99, percentile(raw, 99), "<= 10000 us",
           p99 <= 10000});
  out.add({name, "p50 stream->browser, " + std::to_string(crowd_size) + " more clients", "us", crowded_p50, p50,
           "<= 3x one client + 1 ms", crowded_p50 <= 3 * p50 + 1000});
  out.add({name, "changes reaching the least-served of the crowd", "of " + std::to_string(samples), double(fewest),
           {}, "all", fewest >= static_cast<uint64_t>(samples)});
}

// --- peer: poolbus beside the lease table teams build in Redis ------------------

// The peer scenario measures in rounds: each round times one block of every
// system back to back (the disk, poolbus and Redis, raw ZeroMQ), so a change
// of the machine's or the disk's regime mid-run lands on all of them alike
// (docs/performance.md, "Caution"), and the per-round ratios show the
// spread. poolbus and Redis swap places from one round to the next.
constexpr int peer_rounds = 5;
const int peer_windows[] = {64, 256};

// What one system gave in the peer scenario, over all rounds.
struct peer_figures {
  std::vector<double> calls_us;       // one client, one call in flight; accepts at even indexes
  std::map<int, double> calls_per_s;  // accepts + frees per second, by calls in flight
  // CPU per call in flight, by calls in flight: the servers' (broker and
  // workers, or redis-server) and the client's (this process); and the
  // seconds of CPU they are computed from, summed over the rounds.
  std::map<int, double> server_cpu_us, client_cpu_us;
  std::map<int, double> server_cpu_s, client_cpu_s;
  std::vector<double> round_p50_us;                      // the single client's p50, each round
  std::map<int, std::vector<double>> round_calls_per_s;  // each round's rate, by calls in flight
};

// Everything the peer scenario measured in its one run.
struct peer_run {
  peer_figures poolbus, redis;
  std::vector<double> raw_calls_us, fdatasync_us;  // the floor's two parts
  std::vector<double> round_fdatasync_p50_us;      // the disk's p50, each round
  std::map<int, double> raw_calls_per_s;
};

// A Resources in the Redis table's fixed point (milli-cpu, bytes).
lease_amounts lease_of(const Resources& r) { return {r.units("cpu"), r.units("mem") / Resources::units_per_one}; }

double self_cpu_seconds() { return cpu_seconds(getpid()); }

// One system of the peer scenario, up for the whole scenario: a single
// client's block of accept/free pairs, and a block of calls with some in flight.
class peer_system {
 public:
  virtual ~peer_system() = default;
  virtual std::vector<double> calls_us(int pairs) = 0;
  virtual double calls_per_second(int in_flight, double seconds, uint64_t* errors) = 0;
  virtual double server_cpu_seconds() = 0;
};

// poolbus: a real broker and 4 real workers with their durable default (--sync
// full); the single client uses pool p0.
class peer_poolbus final : public peer_system {
 public:
  explicit peer_poolbus(const bench_options& opt) : run_(start_broker(opt, ctx_, "peer")) {
    for (int i = 0; i < 4; ++i) {
      pools_.push_back("p" + std::to_string(i));
      start_worker(opt, *run_, pools_.back(), big_pool);
    }
    api_ = std::make_unique<api_driver>(ctx_, run_->endpoints.api);
    wait_pools(*api_, 4, 20, run_.get());
  }
  std::vector<double> calls_us(int pairs) override {
    return accept_free_calls_us(*api_, "p0", pairs, &request_bytes, &reply_bytes);
  }
  double calls_per_second(int in_flight, double seconds, uint64_t* errors) override {
    return 2 * accept_free_pairs_per_second(*api_, pools_, in_flight, seconds, errors);
  }
  double server_cpu_seconds() override { return cpu_seconds(run_->process->pid()) + workers_cpu_seconds(*run_); }
  size_t request_bytes = 0, reply_bytes = 0;  // of the single client's calls

 private:
  zmq::context_t ctx_{1};
  std::unique_ptr<broker_run> run_;
  std::unique_ptr<api_driver> api_;
  std::vector<std::string> pools_;
};

// Redis: its own redis-server (AOF, appendfsync always) with 4 pools the size
// of a worker's, the same single-client loop and the same shape in flight
// (4 connections, each completed accept followed by its free).
class peer_redis final : public peer_system {
 public:
  explicit peer_redis(const bench_options& opt)
      : server_(opt.out + "/state-peer-redis", opt.out + "/logs/peer-redis.log"),
        table_(server_.port(), 4, lease_of(res(big_pool))) {
    table_.check_semantics();
  }
  std::vector<double> calls_us(int pairs) override { return table_.accept_free_calls_us(pairs, want_); }
  double calls_per_second(int in_flight, double seconds, uint64_t* errors) override {
    return table_.calls_per_second(in_flight, 4, want_, seconds, errors);
  }
  double server_cpu_seconds() override { return cpu_seconds(server_.pid()); }
  void check_drained() { table_.check_drained(); }

 private:
  redis_server server_;
  redis_lease_table table_;
  lease_amounts want_ = lease_of(small_want);
};

void append_all(std::vector<double>& to, const std::vector<double>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

// The p50 of a copy: percentile sorts, and the samples keep their time order.
double p50_of(std::vector<double> samples) { return percentile(samples, 50); }

// One round's single-client block of `system`.
void peer_latency_block(peer_system& system, int pairs, peer_figures& f) {
  auto calls = system.calls_us(pairs);
  f.round_p50_us.push_back(p50_of(calls));
  append_all(f.calls_us, calls);
}

// One round's block of `system` with `in_flight` calls outstanding for `seconds`.
void peer_rate_block(peer_system& system, int in_flight, double seconds, peer_figures& f, uint64_t* errors) {
  double server0 = system.server_cpu_seconds(), client0 = self_cpu_seconds();
  double rate = system.calls_per_second(in_flight, seconds, errors);
  f.server_cpu_s[in_flight] += system.server_cpu_seconds() - server0;
  f.client_cpu_s[in_flight] += self_cpu_seconds() - client0;
  f.round_calls_per_s[in_flight].push_back(rate);
}

// Each window's mean rate over its rounds (blocks of `block_seconds`), and the CPU per call it cost.
void settle_rates(peer_figures& f, double block_seconds) {
  for (const auto& [w, rates] : f.round_calls_per_s) {
    double sum = 0;
    for (double r : rates) sum += r;
    f.calls_per_s[w] = sum / rates.size();
    const double calls = sum * block_seconds;
    if (calls <= 0) continue;
    f.server_cpu_us[w] = 1e6 * f.server_cpu_s[w] / calls;
    f.client_cpu_us[w] = 1e6 * f.client_cpu_s[w] / calls;
  }
}

struct peer_pcts {
  double p50 = 0, p99 = 0, p999 = 0;
};
peer_pcts pcts_of(std::vector<double> s) { return {percentile(s, 50), percentile(s, 99), percentile(s, 99.9)}; }
// Every other sample, from `first` (0: the accepts, 1: the frees).
std::vector<double> every_other(const std::vector<double>& calls, size_t first) {
  std::vector<double> out;
  for (size_t i = first; i < calls.size(); i += 2) out.push_back(calls[i]);
  return out;
}

// Latency rows: value `v` against baseline `b` (p99.9 only when `p999`); the
// p50 and p99 rows carry `target` (value <= 1.5x baseline) when it is set.
void add_peer_latency(bench_results& out, const std::string& scenario, const std::string& what, const peer_pcts& v,
                      const peer_pcts& b, bool p999, const std::string& target = "") {
  const std::tuple<const char*, double, double> rows[] = {
      {"p50", v.p50, b.p50}, {"p99", v.p99, b.p99}, {"p99.9", v.p999, b.p999}};
  for (const auto& [label, x, y] : rows) {
    const bool tail = std::string(label) == "p99.9";
    if (tail && !p999) continue;
    result_row row{scenario, std::string(label) + " " + what, "us", x, y, "", {}};
    if (!tail && !target.empty()) {
      row.target = target;
      row.pass = x <= 1.5 * y;
    }
    out.add(row);
  }
}

void add_peer_rates(bench_results& out, const std::string& scenario, const std::map<int, double>& v,
                    const std::map<int, double>& b, bool target) {
  for (int w : peer_windows) {
    result_row row{scenario, "calls/s, " + std::to_string(w) + " in flight", "1/s", v.at(w), b.at(w), "", {}};
    if (target) {
      row.target = ">= 1.0x redis";
      row.pass = v.at(w) >= b.at(w);
    }
    out.add(row);
  }
}

// This VM's disk can change regime mid-run (docs/performance.md, "Caution"):
// every round times the fdatasync, and a round's p50 more than 2x another's
// says the rounds ran on different disks, so the pooled poolbus / Redis
// ratios mix regimes: the per-round ones ("peer: rounds") do not.
void add_disk_regime_rows(bench_results& out, const std::vector<double>& round_p50s) {
  if (round_p50s.empty()) return;
  const auto [fastest, slowest] = std::minmax_element(round_p50s.begin(), round_p50s.end());
  out.add({"peer: floor", "p50 4 KiB append+fdatasync, fastest round", "us", *fastest, {}, "", {}});
  out.add({"peer: floor", "p50 4 KiB append+fdatasync, slowest round", "us", *slowest, {}, "", {}});
  if (*fastest > 0 && *slowest > 2 * *fastest)
    log("peer: the disk changed regime during the run (fdatasync p50 %s us across the rounds): read the "
        "per-round ratios (peer: rounds), not the pooled ones",
        std::to_string(static_cast<int64_t>(*fastest)) + " to " + std::to_string(static_cast<int64_t>(*slowest)));
}

// The spread over the rounds of poolbus / Redis for `what`: min, median, max.
void add_round_ratio_rows(bench_results& out, const std::string& what, const std::vector<double>& poolbus,
                          const std::vector<double>& redis) {
  std::vector<double> ratios;
  for (size_t i = 0; i < poolbus.size() && i < redis.size(); ++i)
    if (redis[i] > 0) ratios.push_back(poolbus[i] / redis[i]);
  if (ratios.empty()) return;
  std::sort(ratios.begin(), ratios.end());
  out.add({"peer: rounds", what + " poolbus/redis, lowest round", "x", ratios.front(), {}, "", {}});
  out.add({"peer: rounds", what + " poolbus/redis, median round", "x", ratios[ratios.size() / 2], {}, "", {}});
  out.add({"peer: rounds", what + " poolbus/redis, highest round", "x", ratios.back(), {}, "", {}});
}

// CPU per call, poolbus beside Redis: the servers' and the client's.
void add_peer_cpu_rows(bench_results& out, const peer_figures& poolbus, const peer_figures& redis) {
  for (int w : peer_windows) {
    const std::string at = ", " + std::to_string(w) + " in flight";
    if (!poolbus.server_cpu_us.count(w) || !redis.server_cpu_us.count(w)) continue;
    out.add({"peer: cpu/call poolbus/redis", "servers (broker + workers; redis-server)" + at, "us",
             poolbus.server_cpu_us.at(w), redis.server_cpu_us.at(w), "", {}});
    out.add({"peer: cpu/call poolbus/redis", "client (pool-bench)" + at, "us", poolbus.client_cpu_us.at(w),
             redis.client_cpu_us.at(w), "", {}});
  }
}

void add_peer_rows(bench_results& out, const peer_run& r) {
  const auto pb = pcts_of(r.poolbus.calls_us), rd = pcts_of(r.redis.calls_us), raw = pcts_of(r.raw_calls_us),
             disk = pcts_of(r.fdatasync_us);
  const peer_pcts floor{raw.p50 + disk.p50, raw.p99 + disk.p99, 0};
  add_peer_latency(out, "peer: poolbus/redis", "accept|free", pb, rd, true, "<= 1.5x redis");
  add_peer_latency(out, "peer: poolbus/redis", "accept", pcts_of(every_other(r.poolbus.calls_us, 0)),
                   pcts_of(every_other(r.redis.calls_us, 0)), false);
  add_peer_latency(out, "peer: poolbus/redis", "free", pcts_of(every_other(r.poolbus.calls_us, 1)),
                   pcts_of(every_other(r.redis.calls_us, 1)), false);
  add_peer_rates(out, "peer: poolbus/redis", r.poolbus.calls_per_s, r.redis.calls_per_s, true);
  add_peer_latency(out, "peer: poolbus/raw zmq", "accept|free", pb, raw, true);
  add_peer_rates(out, "peer: poolbus/raw zmq", r.poolbus.calls_per_s, r.raw_calls_per_s, false);
  add_peer_latency(out, "peer: redis/raw zmq", "accept|free", rd, raw, true);
  add_peer_rates(out, "peer: redis/raw zmq", r.redis.calls_per_s, r.raw_calls_per_s, false);
  add_peer_latency(out, "peer: poolbus/floor", "accept|free", pb, floor, false);
  add_peer_latency(out, "peer: redis/floor", "accept|free", rd, floor, false);
  for (const auto& [label, a, b] : {std::tuple{"p50", raw.p50, disk.p50}, {"p99", raw.p99, disk.p99}}) {
    const std::string l(label);
    out.add({"peer: floor", l + " raw zmq 2-hop", "us", a, {}, "", {}});
    out.add({"peer: floor", l + " 4 KiB append+fdatasync", "us", b, {}, "", {}});
    out.add({"peer: floor", l + " floor (sum of the two)", "us", a + b, {}, "", {}});
  }
  add_disk_regime_rows(out, r.round_fdatasync_p50_us);
  add_round_ratio_rows(out, "p50 accept|free", r.poolbus.round_p50_us, r.redis.round_p50_us);
  for (int w : peer_windows)
    add_round_ratio_rows(out, "calls/s, " + std::to_string(w) + " in flight", r.poolbus.round_calls_per_s.at(w),
                         r.redis.round_calls_per_s.at(w));
  add_peer_cpu_rows(out, r.poolbus, r.redis);
}

// poolbus (a real broker and real workers, `--sync full`) beside Redis (AOF,
// appendfsync always) running the same accept/free, beside raw ZeroMQ and
// the floor (a raw 2-hop round trip + one fdatasync of a 4 KiB append), all
// measured in alternating rounds (peer_rounds).
void scenario_peer(const bench_options& opt, bench_results& out) {
  const int pairs = (opt.quick ? 200 : 20000) / peer_rounds;
  const int appends = (opt.quick ? 50 : 500) / peer_rounds;
  const double block_seconds = opt.seconds / peer_rounds;
  peer_poolbus poolbus(opt);
  peer_redis redis(opt);
  peer_run r;
  // poolbus first in even rounds, Redis first in odd ones.
  auto both = [&](int round, auto&& block) {
    if (round % 2 == 0) block(poolbus, r.poolbus), block(redis, r.redis);
    else block(redis, r.redis), block(poolbus, r.poolbus);
  };
  {
    poolbus.calls_us(pairs / 10);  // the request and reply sizes the raw round trip copies
    raw_two_hop raw(1, poolbus.reply_bytes);
    for (int round = 0; round < peer_rounds; ++round) {
      auto disk = append_fdatasync_us(opt.out + "/peer-floor.append", appends);
      r.round_fdatasync_p50_us.push_back(p50_of(disk));
      append_all(r.fdatasync_us, disk);
      both(round, [&](peer_system& system, peer_figures& f) { peer_latency_block(system, pairs, f); });
      append_all(r.raw_calls_us, raw.latency_us(poolbus.request_bytes, 2 * pairs));
    }
  }
  uint64_t errors = 0;
  poolbus.calls_per_second(16, opt.quick ? 0.1 : 0.5, &errors);  // warm-up
  redis.calls_per_second(16, opt.quick ? 0.1 : 0.5, &errors);
  {
    raw_two_hop raw(4, 400);
    for (int w : peer_windows) {
      double raw_sum = 0;
      for (int round = 0; round < peer_rounds; ++round) {
        both(round,
             [&](peer_system& system, peer_figures& f) { peer_rate_block(system, w, block_seconds, f, &errors); });
        raw_sum += raw.round_trips_per_second(1, w, poolbus.request_bytes, block_seconds);
      }
      r.raw_calls_per_s[w] = raw_sum / peer_rounds;
    }
  }
  settle_rates(r.poolbus, block_seconds);
  settle_rates(r.redis, block_seconds);
  redis.check_drained();
  if (errors) log("peer: %s failed calls", std::to_string(errors));
  out.add_samples("peer: poolbus accept/free call", r.poolbus.calls_us);
  out.add_samples("peer: redis accept/free call", r.redis.calls_us);
  out.add_samples("peer: raw zmq 2-hop round trip", r.raw_calls_us);
  out.add_samples("peer: 4 KiB append+fdatasync", r.fdatasync_us);
  add_peer_rows(out, r);
}

const std::vector<std::pair<std::string, std::function<void(const bench_options&, bench_results&)>>> all_scenarios = {
    {"roundtrip", scenario_roundtrip}, {"throughput", scenario_throughput}, {"keepalive", scenario_keepalive},
    {"allocate", scenario_allocate},   {"queue", scenario_queue},           {"propagation", scenario_propagation},
    {"scale", scenario_scale},         {"dashboard", scenario_dashboard},       {"peer", scenario_peer}};

}  // namespace

// N pools need about N descriptors in the broker and 2N over the
// simulators, which inherit the limit: the soft limit goes up to the hard
// one, and as root the hard one up to the kernel's fs.nr_open.
void raise_file_limit() {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  rlim_t nr_open = 0;
  if (std::ifstream in("/proc/sys/fs/nr_open"); in >> nr_open && nr_open > files.rlim_max) {
    rlimit raised{nr_open, nr_open};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return;  // only root may raise the hard limit
  }
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
}

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
                 "allocate, queue, propagation, scale, dashboard, peer");
  app.add_option("--seconds", opt.seconds, "measuring window of each throughput figure (default 5)");
  app.add_option("--sim-workers", sim_count, "(internal) run N simulated workers until SIGTERM");
  app.add_option("--sim-prefix", sim.prefix, "(internal)");
  app.add_option("--sim-connect", sim.workers_endpoint, "(internal)");
  app.add_option("--sim-announce", sim.announce_endpoint, "(internal)");
  app.add_option("--sim-source", sim.source_address, "(internal)");
  std::vector<std::string> raw_sink;
  app.add_option("--raw-sink", raw_sink, "(internal) WORKERS ANNOUNCE: bare ZeroMQ sockets until SIGTERM")
      ->expected(2);
  app.add_option("--pools", opt.scale_pools, "the scale scenario's pool counts (repeatable; default 1000 and 10000)")
      ->check(CLI::Range(1, 1000000));
  CLI11_PARSE(app, argc, argv);
  if (raw_sink.size() == 2) return run_raw_sink(raw_sink[0], raw_sink[1]);
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
  raise_file_limit();
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

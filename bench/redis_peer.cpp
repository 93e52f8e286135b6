// redis_peer: poolbus's performance peer in Redis (see redis_peer.hpp). The
// invariant, available + recorded allocs == capacity per pool, is kept by the
// two scripts, which Redis runs atomically; check_drained() verifies it.
#include "bench/redis_peer.hpp"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace poolbus::bench {
namespace {

using steady = std::chrono::steady_clock;

double us_since(steady::time_point t0) { return std::chrono::duration<double, std::micro>(steady::now() - t0).count(); }

// KEYS[1] the pool's hash (available cpu_milli, mem_bytes), KEYS[2] the allocs
// hash; ARGV alloc id, cpu_milli, mem_bytes (canonical non-negative integers).
// Fits or fails: 1 when every want fits and the alloc is recorded, else 0.
const char* accept_lua = R"lua(
local function amount(s) return s == '0' or string.match(s, '^[1-9]%d*$') ~= nil end
local function neg(s) if s == '0' then return '0' end return '-' .. s end
if not amount(ARGV[2]) or not amount(ARGV[3]) then return redis.error_reply('bad want') end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
local avail = redis.call('HMGET', KEYS[1], 'cpu_milli', 'mem_bytes')
if tonumber(ARGV[2]) > tonumber(avail[1] or '0') or tonumber(ARGV[3]) > tonumber(avail[2] or '0') then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'cpu_milli', neg(ARGV[2]))
redis.call('HINCRBY', KEYS[1], 'mem_bytes', neg(ARGV[3]))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
return 1
)lua";

// KEYS as accept's; ARGV alloc id. Returns the alloc's amounts to its pool and
// forgets it: 1, or 0 when there is no such alloc.
const char* free_lua = R"lua(
local rec = redis.call('HGET', KEYS[2], ARGV[1])
if not rec then return 0 end
local cpu, mem = string.match(rec, '^(%d+) (%d+)$')
redis.call('HINCRBY', KEYS[1], 'cpu_milli', cpu)
redis.call('HINCRBY', KEYS[1], 'mem_bytes', mem)
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
)lua";

const char* allocs_key = "allocs";

struct reply_free {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_free>;

std::string pool_key(int i) { return "pool:" + std::to_string(i); }

std::string find_redis_server() {
  std::vector<std::string> dirs{"/usr/bin", "/usr/local/bin"};
  if (const char* path = std::getenv("PATH")) {
    std::stringstream in(path);
    for (std::string d; std::getline(in, d, ':');) dirs.push_back(d);
  }
  for (const auto& d : dirs)
    if (access((d + "/redis-server").c_str(), X_OK) == 0) return d + "/redis-server";
  throw std::runtime_error("redis-server is not installed (scripts/setup.sh --deps-only installs it)");
}

redis_connection connect(int port) {
  redis_connection c(redisConnectWithTimeout("127.0.0.1", port, timeval{2, 0}));
  if (!c || c->err) return nullptr;
  return c;
}

redis_connection connect_or_throw(int port) {
  auto c = connect(port);
  if (!c) throw std::runtime_error("redis: cannot connect to port " + std::to_string(port));
  return c;
}

void append(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv) args.push_back(a.c_str()), lens.push_back(a.size());
  if (redisAppendCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()) != REDIS_OK)
    throw std::runtime_error("redis: cannot encode a command");
}

// Sends argv and waits for its reply; throws on a transport or Redis error.
reply_ptr command(redisContext* c, const std::vector<std::string>& argv) {
  append(c, argv);
  void* raw = nullptr;
  if (redisGetReply(c, &raw) != REDIS_OK || !raw) throw std::runtime_error(std::string("redis: ") + c->errstr);
  reply_ptr r(static_cast<redisReply*>(raw));
  if (r->type == REDIS_REPLY_ERROR) throw std::runtime_error("redis: " + std::string(r->str, r->len));
  return r;
}

std::vector<std::string> accept_argv(const std::string& sha, const std::string& pool, const std::string& id,
                                     lease_amounts want) {
  return {"EVALSHA", sha, "2", pool, allocs_key, id, std::to_string(want.cpu_milli), std::to_string(want.mem_bytes)};
}

std::vector<std::string> free_argv(const std::string& sha, const std::string& pool, const std::string& id) {
  return {"EVALSHA", sha, "2", pool, allocs_key, id};
}

int64_t integer_of(const reply_ptr& r) {
  if (r->type != REDIS_REPLY_INTEGER) throw std::runtime_error("redis: a script answered a non-integer");
  return r->integer;
}

}  // namespace

void redis_free::operator()(redisContext* c) const { redisFree(c); }

redis_server::redis_server(const std::string& dir, const std::string& log_path) {
  const std::string exe = find_redis_server();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  port_ = free_loopback_port();
  process_ = std::make_unique<child_process>(
      std::vector<std::string>{exe, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--dir", dir,
                               "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"},
      log_path);
  auto deadline = steady::now() + std::chrono::seconds(10);
  for (;;) {
    if (auto c = connect(port_)) {
      void* raw = redisCommand(c.get(), "PING");
      reply_ptr r(static_cast<redisReply*>(raw));
      if (r && r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG") return;
    }
    if (steady::now() > deadline || !process_->running())
      throw std::runtime_error("redis-server did not answer PING within 10 s (see " + log_path + ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

redis_lease_table::redis_lease_table(int port, int pools, lease_amounts capacity)
    : port_(port), pools_(pools), capacity_(capacity), control_(connect_or_throw(port)) {
  if (capacity.cpu_milli >= (int64_t{1} << 53) || capacity.mem_bytes >= (int64_t{1} << 53))
    throw std::runtime_error("redis lease table: capacity must stay below 2^53");
  accept_sha_ = std::string(command(control_.get(), {"SCRIPT", "LOAD", accept_lua})->str);
  free_sha_ = std::string(command(control_.get(), {"SCRIPT", "LOAD", free_lua})->str);
  command(control_.get(), {"DEL", allocs_key});
  for (int i = 0; i < pools; ++i)
    command(control_.get(), {"HSET", pool_key(i), "cpu_milli", std::to_string(capacity.cpu_milli), "mem_bytes",
                             std::to_string(capacity.mem_bytes)});
}

void redis_lease_table::check_drained() {
  for (int i = 0; i < pools_; ++i) {
    auto r = command(control_.get(), {"HMGET", pool_key(i), "cpu_milli", "mem_bytes"});
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !r->element[0]->str || !r->element[1]->str ||
        std::stoll(r->element[0]->str) != capacity_.cpu_milli || std::stoll(r->element[1]->str) != capacity_.mem_bytes)
      throw std::runtime_error("redis lease table: " + pool_key(i) + " is not back at its capacity");
  }
  if (integer_of(command(control_.get(), {"HLEN", allocs_key})) != 0)
    throw std::runtime_error("redis lease table: allocs left after every free");
}

void redis_lease_table::check_semantics() {
  auto* c = control_.get();
  const std::string pool = pool_key(0), id = "check-" + std::to_string(next_id_++);
  auto expect = [](bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("redis lease table: ") + what);
  };
  lease_amounts too_big{capacity_.cpu_milli + 1, 1};
  expect(integer_of(command(c, accept_argv(accept_sha_, pool, id, too_big))) == 0, "a want over capacity fitted");
  lease_amounts half{capacity_.cpu_milli / 2, capacity_.mem_bytes / 2};
  expect(integer_of(command(c, accept_argv(accept_sha_, pool, id, half))) == 1, "a fitting want failed");
  expect(integer_of(command(c, accept_argv(accept_sha_, pool, id, {0, 0}))) == 0, "an alloc id was accepted twice");
  auto avail = command(c, {"HGET", pool, "cpu_milli"});
  expect(std::stoll(avail->str) == capacity_.cpu_milli - half.cpu_milli, "accept did not take its cpu");
  expect(integer_of(command(c, free_argv(free_sha_, pool, id))) == 1, "free of a live alloc failed");
  expect(integer_of(command(c, free_argv(free_sha_, pool, id))) == 0, "an alloc was freed twice");
  check_drained();
}

std::vector<double> redis_lease_table::accept_free_calls_us(int pairs, lease_amounts want) {
  auto c = connect_or_throw(port_);
  const std::string pool = pool_key(0);
  std::vector<double> calls;
  for (int i = -pairs / 10; i < pairs; ++i) {
    const std::string id = "a" + std::to_string(next_id_++);
    auto t0 = steady::now();
    auto accepted = command(c.get(), accept_argv(accept_sha_, pool, id, want));
    double accept_us = us_since(t0);
    if (integer_of(accepted) != 1) throw std::runtime_error("redis: accept did not fit");
    auto t1 = steady::now();
    auto freed = command(c.get(), free_argv(free_sha_, pool, id));
    double free_us = us_since(t1);
    if (integer_of(freed) != 1) throw std::runtime_error("redis: free found no alloc");
    if (i < 0) continue;  // warm-up
    calls.push_back(accept_us);
    calls.push_back(free_us);
  }
  return calls;
}

namespace {

// One pipelined connection of calls_per_second: replies come back in the
// order of the requests, so `sent` pairs each reply with its request.
struct pipeline {
  redis_connection c;
  std::string pool;
  struct request {
    bool accept;
    std::string id;
  };
  std::deque<request> sent;
};

struct pipeline_run {
  const std::string &accept_sha, &free_sha;
  lease_amounts want;
  uint64_t* next_id;
  uint64_t pairs = 0, errors = 0;
  bool measuring = true;

  void send_accept(pipeline& p) {
    std::string id = "a" + std::to_string((*next_id)++);
    append(p.c.get(), accept_argv(accept_sha, p.pool, id, want));
    p.sent.push_back({true, std::move(id)});
  }
  // Each completed accept is followed by its free; each free (or failure) by
  // a new accept while measuring, as accept_free_pairs_per_second does.
  void on_reply(pipeline& p, const reply_ptr& r) {
    auto done = std::move(p.sent.front());
    p.sent.pop_front();
    bool ok = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (done.accept && ok) {
      append(p.c.get(), free_argv(free_sha, p.pool, done.id));
      p.sent.push_back({false, std::move(done.id)});
      return;
    }
    if (!ok) ++errors;
    if (!done.accept && measuring) ++pairs;
    if (measuring) send_accept(p);
  }
  // Reads what the socket has, handles every whole reply, flushes the requests.
  void service(pipeline& p) {
    if (redisBufferRead(p.c.get()) != REDIS_OK) throw std::runtime_error(std::string("redis: ") + p.c->errstr);
    for (void* raw = nullptr; redisGetReplyFromReader(p.c.get(), &raw) == REDIS_OK && raw; raw = nullptr)
      on_reply(p, reply_ptr(static_cast<redisReply*>(raw)));
    flush(p);
  }
  static void flush(pipeline& p) {
    for (int done = 0; !done;)
      if (redisBufferWrite(p.c.get(), &done) != REDIS_OK)
        throw std::runtime_error(std::string("redis: ") + p.c->errstr);
  }
};

}  // namespace

double redis_lease_table::calls_per_second(int in_flight, int connections, lease_amounts want, double seconds,
                                           uint64_t* errors) {
  std::vector<pipeline> pipes(static_cast<size_t>(connections));
  for (int i = 0; i < connections; ++i) pipes[i] = {connect_or_throw(port_), pool_key(i % pools_), {}};
  pipeline_run run{accept_sha_, free_sha_, want, &next_id_};
  for (int k = 0; k < in_flight; ++k) run.send_accept(pipes[k % connections]);
  for (auto& p : pipes) pipeline_run::flush(p);
  std::vector<pollfd> fds;
  for (auto& p : pipes) fds.push_back({p.c->fd, POLLIN, 0});
  auto end = steady::now() + std::chrono::duration<double>(seconds);
  auto outstanding = [&] {
    size_t n = 0;
    for (auto& p : pipes) n += p.sent.size();
    return n;
  };
  while (outstanding() > 0) {
    int ready = poll(fds.data(), fds.size(), run.measuring ? 100 : 6000);
    if (ready == 0 && !run.measuring) break;  // then drain what is in flight
    for (size_t i = 0; i < fds.size(); ++i)
      if (fds[i].revents) run.service(pipes[i]);
    if (run.measuring && steady::now() >= end) run.measuring = false;
  }
  *errors += run.errors;
  return 2.0 * static_cast<double>(run.pairs) / seconds;
}

std::vector<double> append_fdatasync_us(const std::string& path, int count, size_t bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path);
  const std::string block(bytes, 'x');
  std::vector<double> out;
  for (int i = -count / 10; i < count; ++i) {
    auto t0 = steady::now();
    for (size_t done = 0; done < block.size();) {
      auto n = write(fd, block.data() + done, block.size() - done);
      if (n <= 0) {
        close(fd);
        throw std::runtime_error("write to " + path + " failed");
      }
      done += static_cast<size_t>(n);
    }
    if (fdatasync(fd) != 0) {
      close(fd);
      throw std::runtime_error("fdatasync of " + path + " failed");
    }
    if (i >= 0) out.push_back(us_since(t0));  // after a tenth of warm-up
  }
  close(fd);
  std::filesystem::remove(path);
  return out;
}

}  // namespace poolbus::bench

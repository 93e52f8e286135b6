#include <catch2/catch.hpp>

#include "schemas/api_messages.hpp"
#include "schemas/exec.hpp"
#include "schemas/worker_messages.hpp"

using namespace poolbus;

namespace {

ExecInspect sample_inspect() {
  ExecInspect e;
  e.id = "job-1:a.b";
  e.alloc = "w1/abc";
  e.state = exec_state::complete;
  e.has_exit_code = true;
  e.exit_code = 3;
  e.error = "missing output x";
  e.created_ms = 1;
  e.started_ms = 2;
  e.finished_ms = 3;
  e.resources = {{"cpu", 1}, {"mem", 512 * MiB}};
  e.has_profile = true;
  e.profile = {100, 2, 3};
  e.has_result = true;
  e.files["out/a"] = {"sha256:" + std::string(64, 'a'), 7};
  return e;
}

}  // namespace

TEST_CASE("exec ids: letters, digits, - _ . : up to 128 bytes") {
  CHECK(check_exec_id("a-b_c.d:e9").ok());
  CHECK(check_exec_id("..").ok());
  CHECK(!check_exec_id("").ok());
  CHECK(!check_exec_id("a/b").ok());
  CHECK(!check_exec_id(std::string(129, 'a')).ok());
  CHECK(check_exec_id(std::string(128, 'a')).ok());
}

TEST_CASE("ExecInspect and ExecConfig round-trip") {
  auto e = sample_inspect();
  auto back = decode_exec_inspect(encode_exec_inspect(e));
  REQUIRE(back.ok());
  CHECK(*back == e);
  ExecInspect minimal;
  minimal.id = "x";
  minimal.alloc = "p/a";
  auto back2 = decode_exec_inspect(encode_exec_inspect(minimal));
  REQUIRE(back2.ok());
  CHECK(*back2 == minimal);

  ExecConfig c;
  c.cmd = {"sh", "-c", "echo"};
  c.env = {{"A", "b"}};
  c.resources = {{"mem", 1 * GiB}};
  c.outputs = {"o"};
  auto cback = decode_exec_config(encode_exec_config(c));
  REQUIRE(cback.ok());
  CHECK(*cback == c);
}

TEST_CASE("exec api requests round-trip and are checked strictly") {
  for (auto op : {api_op::exec_put, api_op::exec_inspect, api_op::execs, api_op::exec_wait, api_op::exec_logs,
                  api_op::exec_remove, api_op::repo_get}) {
    api_request r;
    r.op = op;
    r.uri = "w1/a";
    r.exec.op = *exec_op_of(op);
    r.exec.alloc = r.uri;
    r.exec.exec = "e1";
    r.exec.config.cmd = {"true"};
    r.exec.timeout_ms = 10;
    r.exec.stream = "stderr";
    r.exec.offset = 5;
    r.exec.max_bytes = 7;
    r.exec.digest = "sha256:" + std::string(64, '0');
    auto back = decode_api_request(encode_api_request(r), nullptr);
    REQUIRE(back.ok());
    CHECK(back->op == op);
    CHECK(back->uri == "w1/a");
    CHECK(back->exec.alloc == "w1/a");
    if (op != api_op::execs && op != api_op::repo_get) CHECK(back->exec.exec == "e1");
    if (op == api_op::exec_put) CHECK(back->exec.config == r.exec.config);
    if (op == api_op::exec_logs) {
      CHECK(back->exec.stream == "stderr");
      CHECK(back->exec.offset == 5);
    }
    if (op == api_op::repo_get) CHECK(back->exec.digest == r.exec.digest);
  }
}

TEST_CASE("exec replies and worker messages carry answers") {
  auto reply = decode_api_reply(encode_exec_reply("\xc0", exec_answer::of(sample_inspect())));
  REQUIRE(reply.ok());
  CHECK(reply->exec.kind == exec_answer::shape::one);
  CHECK(reply->exec.exec == sample_inspect());
  auto chunk = decode_api_reply(encode_exec_reply("\xc0", exec_answer::chunk(std::string("a\0b", 3), 9, true)));
  REQUIRE(chunk.ok());
  CHECK(chunk->exec.data == std::string("a\0b", 3));
  CHECK(chunk->exec.offset == 9);
  CHECK(chunk->exec.eof);

  worker_request wr;
  wr.rid = 4;
  wr.op = worker_op::exec_wait;
  wr.alloc_id = "a";
  wr.exec.op = exec_op::wait;
  wr.exec.alloc = "a";
  wr.exec.exec = "e";
  wr.exec.timeout_ms = 1000;
  auto wback = decode_worker_request(encode_worker_request(wr), nullptr);
  REQUIRE(wback.ok());
  CHECK(wback->exec.timeout_ms == 1000);
  CHECK(wback->exec.exec == "e");
  worker_reply wrep;
  wrep.rid = 4;
  wrep.exec = exec_answer::of(std::vector<ExecInspect>{sample_inspect()});
  auto m = decode_worker_message(encode_worker_reply(wrep));
  REQUIRE(m.ok());
  auto& got = std::get<worker_reply>(*m);
  REQUIRE(got.exec.execs.size() == 1);
  CHECK(got.exec.execs[0] == sample_inspect());
}

TEST_CASE("exec events round-trip") {
  exec_event e{"w1", exec_event_kind::lost, sample_inspect(), 42};
  auto back = decode_exec_event(encode_exec_event(e));
  REQUIRE(back.ok());
  CHECK(back->event == exec_event_kind::lost);
  CHECK(back->exec == e.exec);
  CHECK(execs_topic("w1") == "execs.w1");
}

TEST_CASE("exec_wait: timeout_ms from 1 ms to 24 h; beyond is invalid, from a client or to a worker") {
  auto wait_request = [](int64_t timeout_ms) {
    api_request r;
    r.op = api_op::exec_wait;
    r.uri = "w1/a";
    r.exec.op = exec_op::wait;
    r.exec.alloc = r.uri;
    r.exec.exec = "e1";
    r.exec.timeout_ms = timeout_ms;
    return encode_api_request(r);
  };
  auto worker_wait = [](int64_t timeout_ms) {
    worker_request w;
    w.rid = 1;
    w.op = worker_op::exec_wait;
    w.alloc_id = "a";
    w.exec.op = exec_op::wait;
    w.exec.alloc = "a";
    w.exec.exec = "e1";
    w.exec.timeout_ms = timeout_ms;
    return encode_worker_request(w);
  };
  CHECK(max_exec_wait_ms == 86'400'000);
  for (int64_t ok : {int64_t{1}, max_exec_wait_ms}) {
    auto back = decode_api_request(wait_request(ok), nullptr);
    REQUIRE(back.ok());
    CHECK(back->exec.timeout_ms == ok);
    CHECK(decode_worker_request(worker_wait(ok), nullptr).ok());
  }
  // 9.3e12 ms overflowed CAF's nanosecond deadline; 2^62 and INT64_MAX the sums.
  for (int64_t too_long : {max_exec_wait_ms + 1, int64_t{9'300'000'000'000}, int64_t{1} << 62, INT64_MAX}) {
    auto refused = decode_api_request(wait_request(too_long), nullptr);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().kind == error_kind::invalid);
    CHECK(refused.error().message.find("timeout_ms") != std::string::npos);
    CHECK(decode_worker_request(worker_wait(too_long), nullptr).error().kind == error_kind::invalid);
  }
}

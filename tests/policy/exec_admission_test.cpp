#include <catch2/catch.hpp>

#include "policy/exec_admission.hpp"
#include "policy/exec_lifecycle.hpp"

using namespace poolbus;

TEST_CASE("exec admission refuses an exec bigger than its alloc") {
  exec_admission admission({{"cpu", 2}, {"mem", 1 * GiB}});
  CHECK(admission.check_fits({{"cpu", 2}, {"mem", 1 * GiB}}).ok());
  auto refused = admission.check_fits({{"cpu", 3}});
  REQUIRE(!refused.ok());
  CHECK(refused.error().kind == error_kind::precondition);
  CHECK(!admission.check_fits({{"gpu", 1}}).ok());
}

TEST_CASE("exec admission runs execs in order while they fit, and a waiting one starts when another ends") {
  exec_admission admission({{"cpu", 2}, {"mem", 2 * GiB}});
  admission.enqueue("a", {{"cpu", 1}, {"mem", 1 * GiB}});
  admission.enqueue("b", {{"cpu", 1}, {"mem", 1 * GiB}});
  admission.enqueue("c", {{"cpu", 1}});
  CHECK(admission.admit() == std::vector<std::string>{"a", "b"});
  CHECK(admission.is_waiting("c"));
  CHECK(admission.admit().empty());
  admission.release("a");
  CHECK(admission.admit() == std::vector<std::string>{"c"});
  CHECK(admission.running_count() == 2);
  CHECK(admission.in_use() == Resources{{"cpu", 2}, {"mem", 1 * GiB}});
}

TEST_CASE("exec admission is FIFO: a small exec does not overtake a big one at the head") {
  exec_admission admission({{"cpu", 2}});
  admission.enqueue("a", {{"cpu", 1}});
  CHECK(admission.admit().size() == 1);
  admission.enqueue("big", {{"cpu", 2}});
  admission.enqueue("small", {{"cpu", 1}});
  CHECK(admission.admit().empty());
  admission.release("small");  // withdrawn while waiting
  CHECK(admission.waiting_count() == 1);
  admission.release("a");
  CHECK(admission.admit() == std::vector<std::string>{"big"});
}

TEST_CASE("exec admission: execs without resources always run") {
  exec_admission admission({{"cpu", 1}});
  admission.enqueue("a", {});
  admission.enqueue("b", {});
  CHECK(admission.admit().size() == 2);
}

TEST_CASE("exec config validation names the problem") {
  ExecConfig ok;
  ok.cmd = {"sh", "-c", "true"};
  ok.env = {{"A", "1"}};
  ok.outputs = {"out/x.txt"};
  CHECK(validate_exec_config(ok).ok());
  auto bad = [&](auto change) {
    ExecConfig c = ok;
    change(c);
    auto v = validate_exec_config(c);
    REQUIRE(!v.ok());
    CHECK(v.error().kind == error_kind::invalid);
    return v.error().message;
  };
  CHECK_THAT(bad([](ExecConfig& c) { c.cmd.clear(); }), Catch::Contains("cmd"));
  CHECK_THAT(bad([](ExecConfig& c) { c.cmd = {""}; }), Catch::Contains("program"));
  CHECK_THAT(bad([](ExecConfig& c) { c.cmd[2] = std::string("a\0b", 3); }), Catch::Contains("cmd[2]"));
  CHECK_THAT(bad([](ExecConfig& c) { c.env["B"] = std::string("\0", 1); }), Catch::Contains("env.B"));
  CHECK_THAT(bad([](ExecConfig& c) { c.env["X=Y"] = "1"; }), Catch::Contains("env"));
  CHECK_THAT(bad([](ExecConfig& c) { c.outputs = {"/etc/passwd"}; }), Catch::Contains("absolute"));
  CHECK_THAT(bad([](ExecConfig& c) { c.outputs = {"../x"}; }), Catch::Contains(".."));
  CHECK_THAT(bad([](ExecConfig& c) { c.outputs = {"a", "a"}; }), Catch::Contains("twice"));
  CHECK_THAT(bad([](ExecConfig& c) { c.cmd.assign(20, std::string(60000, 'x')); }), Catch::Contains("bytes"));
}

TEST_CASE("exec_put of a used id: same config is fine, another is precondition") {
  ExecConfig a;
  a.cmd = {"true"};
  ExecConfig b = a;
  CHECK(check_same_config("e", a, b).ok());
  b.env["X"] = "1";
  auto conflict = check_same_config("e", a, b);
  REQUIRE(!conflict.ok());
  CHECK(conflict.error().kind == error_kind::precondition);
}

TEST_CASE("exec lifecycle: waiting -> running -> complete, stamps and results") {
  exec_lifecycle life("e", "p/a", {{"cpu", 1}}, 100);
  CHECK(life.state() == exec_state::waiting);
  CHECK(!life.lose(101).ok());  // only a running exec is lost
  REQUIRE(life.start(110).ok());
  CHECK(!life.start(111).ok());
  exec_termination how;
  how.exited = true;
  how.exit_code = 0;
  how.profile = {1 << 20, 5, 6};
  auto ok = life.finish(how, 120);
  REQUIRE(ok.ok());
  CHECK(*ok);
  life.set_result({{"x", {"sha256:ab", 3}}});
  const auto& e = life.inspect();
  CHECK(e.state == exec_state::complete);
  CHECK(e.started_ms == 110);
  CHECK(e.finished_ms == 120);
  CHECK(e.has_exit_code);
  CHECK(e.has_result);
  CHECK(e.profile.max_rss_bytes == 1 << 20);
  CHECK(!life.finish(how, 130).ok());
}

TEST_CASE("exec lifecycle: signal, oom, nonzero exit, start failure, lost") {
  exec_termination killed;
  killed.signal = 9;
  killed.oom = true;
  exec_lifecycle oom("e", "p/a", {}, 1);
  oom.start(2);
  CHECK(!*oom.finish(killed, 3));
  CHECK(oom.inspect().error == "oom");
  CHECK(oom.inspect().has_signal);
  CHECK(!oom.inspect().has_exit_code);

  exec_termination failed;
  failed.exited = true;
  failed.exit_code = 3;
  exec_lifecycle three("e", "p/a", {}, 1);
  three.start(2);
  CHECK(!*three.finish(failed, 3));
  CHECK(three.inspect().exit_code == 3);
  CHECK(three.inspect().error.empty());

  exec_lifecycle never("e", "p/a", {}, 1);
  REQUIRE(never.fail("cannot run \"x\"", 2).ok());
  CHECK(never.inspect().state == exec_state::complete);
  CHECK(!never.inspect().has_exit_code);

  exec_lifecycle lost("e", "p/a", {}, 1);
  lost.start(2);
  REQUIRE(lost.lose(5).ok());
  CHECK(lost.inspect().state == exec_state::lost);
  CHECK(lost.done());
}

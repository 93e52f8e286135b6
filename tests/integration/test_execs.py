"""Execs inside allocs, end to end through the broker (protocol.md "Execs inside
allocs"): every op and its error kinds, exit codes and signals, logs while
running, admission (a waiting exec starts when another ends), oom, outputs in the
alloc's repository (digests checked), free killing a process tree (no orphan, by
pid), a worker restart marking a running exec lost, hostile command lines, the
execs.<pool> stream, and poolctl execs / logs / run."""

import hashlib
import os
import signal
import time
import unittest


from harness import GiB, MiB, ClusterTestCase, PoolError, wait_until

SMALL = {"cpu": 2.0, "mem": 1.0 * GiB, "disk": 1.0 * GiB}


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def host_pid(ns_pid, work):
    """The host pid of the exec process whose PID namespace numbers it ns_pid
    ($$ or $! inside the exec), found by its working directory; 0 if none."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as f:
                nspid = [line.split()[1:] for line in f if line.startswith("NSpid:")][0]
            if int(nspid[-1]) == ns_pid and os.readlink("/proc/%s/cwd" % name) == work:
                return int(name)
        except (OSError, IndexError, ValueError):
            continue
    return 0


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Execs(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB"),)
    FRESH_CLUSTER_PER_TEST = False

    def alloc(self, res=SMALL):
        a = self.c.allocate(res)
        return a["id"]

    def exec_dir(self, uri, exec_id):
        local = uri.split("/", 1)[1]
        return os.path.join(self.cluster.root, "state-w1", "allocs", local, "execs", "e-" + exec_id, "work")

    def test_exit_code_logs_profile_and_list(self):
        a = self.alloc()
        put = self.c.exec_put(a, "e1", ["sh", "-c", "echo hi; echo oops >&2; exit 3"], env={"X": "1"})
        self.assertEqual(put["id"], "e1")
        self.assertEqual(put["alloc"], a)
        self.assertIn(put["state"], ("waiting", "running", "complete"))
        done = self.c.exec_wait(a, "e1", 5000)
        self.assertEqual(done["state"], "complete")
        self.assertEqual(done["exit_code"], 3)
        self.assertNotIn("signal", done)
        self.assertLessEqual(done["created_ms"], done["started_ms"])
        self.assertLessEqual(done["started_ms"], done["finished_ms"])
        self.assertGreater(done["profile"]["max_rss_bytes"], 0)
        self.assertIn("cpu_user_ms", done["profile"])
        out = self.c.exec_logs(a, "e1")
        self.assertEqual((out["data"], out["offset"], out["eof"]), (b"hi\n", 3, True))
        err = self.c.exec_logs(a, "e1", "stderr", offset=1, max_bytes=2)
        self.assertEqual((err["data"], err["offset"], err["eof"]), (b"op", 3, False))
        self.assertEqual([e["id"] for e in self.c.execs(a)], ["e1"])
        self.assertEqual(self.c.exec_inspect(a, "e1"), done)

    def test_signal_and_missing_program(self):
        a = self.alloc()
        self.c.exec_put(a, "sig", ["sh", "-c", "kill -KILL $$"])
        done = self.c.exec_wait(a, "sig", 5000)
        self.assertEqual(done["signal"], signal.SIGKILL)
        self.assertNotIn("exit_code", done)
        self.c.exec_put(a, "missing", ["/no/such/program", "x"])
        done = self.c.exec_wait(a, "missing", 5000)
        self.assertEqual(done["state"], "complete")
        self.assertNotIn("exit_code", done)
        self.assertIn("/no/such/program", done["error"])

    def test_idempotent_put_and_conflict(self):
        a = self.alloc()
        first = self.c.exec_put(a, "same", ["true"], env={"A": "b"})
        again = self.c.exec_put(a, "same", ["true"], env={"A": "b"})
        self.assertEqual(first["created_ms"], again["created_ms"])
        self.assertPoolError("precondition", self.c.exec_put, a, "same", ["false"])
        self.assertEqual(len(self.c.execs(a)), 1)

    def test_error_kinds(self):
        a = self.alloc()
        self.assertPoolError("precondition", self.c.exec_put, a, "big", ["true"], resources={"cpu": 3})
        self.assertPoolError("invalid", self.c.exec_put, a, "bad/id", ["true"])
        self.assertPoolError("invalid", self.c.exec_put, a, "x" * 129, ["true"])
        self.assertPoolError("invalid", self.c.exec_put, a, "e", [])
        self.assertPoolError("invalid", self.c.exec_put, a, "e", ["true"], outputs=["../escape"])
        self.assertPoolError("invalid", self.c.call, "exec_put", alloc=a, exec="e")  # no config
        self.assertPoolError("invalid", self.c.call, "exec_logs", alloc=a, exec="e", stream="stdin")
        wait_zero = {"op": "exec_wait", "alloc": a, "exec": "e", "timeout_ms": 0}
        self.assertPoolError("invalid", lambda: self.c._unwrap(self.c.request_many([wait_zero])[0]))
        self.assertPoolError("invalid", self.c.call, "repo_get", alloc=a, digest="md5:abc")
        self.assertPoolError("invalid", self.c.call, "execs", alloc="no-slash")
        self.assertPoolError("not_exist", self.c.exec_inspect, a, "nope")
        self.assertPoolError("not_exist", self.c.exec_logs, a, "nope")
        self.assertPoolError("not_exist", self.c.repo_get, a, "sha256:" + "0" * 64)
        self.assertPoolError("not_exist", self.c.execs, "w1/no-such-alloc")
        self.assertPoolError("unavailable", self.c.execs, "nopool/x")
        self.c.exec_put(a, "slow", ["sleep", "5"])
        self.assertPoolError("timeout", self.c.exec_wait, a, "slow", 200)
        self.c.exec_remove(a, "slow")  # kills it
        self.assertPoolError("not_exist", self.c.exec_inspect, a, "slow")
        self.assertPoolError("not_exist", self.c.exec_remove, a, "slow")

    def test_wait_and_offset_bounds(self):
        a = self.alloc()
        self.c.exec_put(a, "bounded", ["sh", "-c", "echo hi; echo data > f"], outputs=["f"])
        done = self.c.exec_wait(a, "bounded", 5000)
        self.assertEqual(done["exit_code"], 0, done)
        # A wait of more than 24 h is refused; 24 h itself is fine (the exec is complete: at once).
        for too_long in (86_400_001, 9_300_000_000_000, 1 << 62, (1 << 63) - 1):
            wait = {"op": "exec_wait", "alloc": a, "exec": "bounded", "timeout_ms": too_long}
            e = self.assertPoolError("invalid", lambda: self.c._unwrap(self.c.request_many([wait])[0]))
            self.assertIn("timeout_ms", e.message)
        self.assertEqual(self.c.exec_wait(a, "bounded", 86_400_000)["state"], "complete")
        # At or past the end of a complete exec's log, or of a repository object: eof, no data.
        for offset in (3, 4, 1 << 40, (1 << 63) - 1):
            got = self.c.exec_logs(a, "bounded", offset=offset)
            self.assertEqual((got["data"], got["offset"], got["eof"]), (b"", offset, True), offset)
        digest = done["result"]["files"]["f"]["digest"]
        for offset in (5, 6, 1 << 62, (1 << 63) - 1):
            got = self.c.repo_get(a, digest, offset=offset)
            self.assertEqual((got["data"], got["offset"], got["eof"]), (b"", offset, True), offset)
        # No error names a host path.
        e = self.assertPoolError("not_exist", self.c.repo_get, a, "sha256:" + "1" * 64)
        self.assertNotIn(self.cluster.root, e.message)
        self.assertNotIn("/sha256/", e.message)

    def test_logs_while_running(self):
        a = self.alloc()
        self.c.exec_put(a, "talk", ["sh", "-c", "echo first; sleep 1; echo second"])
        got = wait_until(lambda: self.c.exec_logs(a, "talk")["data"] == b"first\n" and self.c.exec_logs(a, "talk"),
                         5.0, what="first line while running")
        self.assertFalse(got["eof"])
        self.assertEqual(self.c.exec_inspect(a, "talk")["state"], "running")
        self.c.exec_wait(a, "talk", 5000)
        rest = self.c.exec_logs(a, "talk", offset=got["offset"])
        self.assertEqual(rest["data"], b"second\n")
        self.assertTrue(rest["eof"])

    def test_waiting_exec_starts_when_another_ends(self):
        a = self.alloc()
        self.c.exec_put(a, "first", ["sleep", "0.6"], resources={"cpu": 2})
        second = self.c.exec_put(a, "second", ["true"], resources={"cpu": 1})
        self.assertEqual(second["state"], "waiting")
        first = self.c.exec_wait(a, "first", 5000)
        second = self.c.exec_wait(a, "second", 5000)
        self.assertEqual(second["exit_code"], 0)
        self.assertGreaterEqual(second["started_ms"], first["finished_ms"])

    def test_oom(self):
        a = self.alloc()
        self.c.exec_put(a, "hog", ["python3", "-c", "import time; x = bytearray(400 << 20); time.sleep(20)"],
                        resources={"mem": 64 * MiB})
        done = self.c.exec_wait(a, "hog", 10000)
        self.assertEqual(done["error"], "oom")
        self.assertEqual(done["signal"], signal.SIGKILL)

    def test_outputs_into_the_repository(self):
        a = self.alloc()
        payload = bytes((i * 7 + i // 251) % 256 for i in range(700000))  # larger than one chunk
        script = "import os; os.makedirs('d'); " \
                 "open('d/blob','wb').write(bytes((i * 7 + i // 251) % 256 for i in range(700000))); " \
                 "open('small','w').write('hello')"
        self.c.exec_put(a, "out", ["python3", "-c", script], outputs=["d/blob", "small"])
        done = self.c.exec_wait(a, "out", 10000)
        self.assertEqual(done["exit_code"], 0, done)
        files = done["result"]["files"]
        self.assertEqual(files["d/blob"], {"digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
                                           "size": len(payload)})
        self.assertEqual(files["small"]["digest"], "sha256:" + hashlib.sha256(b"hello").hexdigest())
        self.assertEqual(self.c.repo_read(a, files["d/blob"]["digest"]), payload)
        part = self.c.repo_get(a, files["d/blob"]["digest"], offset=1000, max_bytes=10)
        self.assertEqual((part["data"], part["offset"], part["eof"]), (payload[1000:1010], 1010, False))
        # A missing output fails the exec, naming it.
        self.c.exec_put(a, "lacking", ["true"], outputs=["never-written"])
        done = self.c.exec_wait(a, "lacking", 5000)
        self.assertEqual(done["exit_code"], 0)
        self.assertIn("never-written", done["error"])
        self.assertNotIn("result", done)

    def test_free_kills_a_sleeping_process_tree(self):
        a = self.alloc()
        self.c.exec_put(a, "tree", ["sh", "-c", "sleep 60 & echo $! > child; echo $$ > leader; wait"])
        work = self.exec_dir(a, "tree")
        pids = wait_until(lambda: all(read_text(os.path.join(work, f)) for f in ("child", "leader"))
                          and (lambda found: all(found) and found)(
                              [host_pid(int(read_text(os.path.join(work, f))), work) for f in ("child", "leader")]),
                          5.0, what="pid files")
        self.assertTrue(all(pid_alive(p) for p in pids))
        self.c.free(a)
        self.assertEqual([p for p in pids if pid_alive(p)], [], "processes left after free")
        self.assertPoolError("not_exist", self.c.execs, a)

    def test_hostile_command_lines(self):
        a = self.alloc()
        # One argument over the decoder's 64 KiB string limit, and a body over
        # 1 MiB: refused (`invalid`; the reply cannot echo an id it could not
        # read, so a client pairing by id may see only its own timeout).
        for cmd in (["echo", "x" * 70000], ["echo"] + ["y" * 60000] * 20):
            try:
                self.c.call("exec_put", timeout_ms=1000, alloc=a, exec="huge", config={"cmd": cmd})
                self.fail("an oversized command line was accepted")
            except PoolError as e:
                self.assertIn(e.kind, ("invalid", "timeout"))
        self.assertPoolError("not_exist", self.c.exec_inspect, a, "huge")
        # Many arguments, each fine, together over the exec's 256 KiB argv + env limit.
        err = self.assertPoolError("invalid", self.c.exec_put, a, "wide", ["echo"] + ["z" * 60000] * 16,
                                   env={"BIG": "w" * 60000})
        self.assertIn("bytes", err.message)
        # Binary env: bytes where a string belongs, and a NUL inside a string.
        err = self.assertPoolError("invalid", self.c.call, "exec_put", alloc=a, exec="bin",
                                   config={"cmd": ["true"], "env": {"K": b"\x00\xff"}})
        self.assertIn("env", err.message)
        err = self.assertPoolError("invalid", self.c.exec_put, a, "nul", ["true"], env={"K": "a\x00b"})
        self.assertIn("NUL", err.message)
        err = self.assertPoolError("invalid", self.c.exec_put, a, "nularg", ["echo", "a\x00b"])
        self.assertIn("NUL", err.message)
        # A program that is not there: a clear error on the exec.
        self.c.exec_put(a, "ghost", ["no-such-program-anywhere"])
        done = self.c.exec_wait(a, "ghost", 5000)
        self.assertIn("no-such-program-anywhere", done["error"])
        self.assertTrue(self.c.ping())
        self.assertEqual(self.c.exec_put(a, "after", ["true"])["id"], "after")

    def test_exec_events_on_the_stream(self):
        sub = self.cluster.subscriber("execs.")
        time.sleep(0.3)  # the SUB connects in the background
        a = self.alloc()
        self.c.exec_put(a, "ev", ["true"])
        seen = []
        sub.wait_for(lambda t, b: seen.append((t, b["event"], b["exec"]["id"])) or
                     (b["event"] == "completed" and b["exec"]["id"] == "ev"), 5000)
        self.assertIn(("execs.w1", "started", "ev"), seen)
        self.assertIn(("execs.w1", "completed", "ev"), seen)

    def test_poolctl_run_execs_logs(self):
        r = self.cluster.poolctl("run", "--min", "cpu=1,mem=512MiB", "--", "sh", "-c", "echo hi; exit 3")
        self.assertEqual((r.stdout, r.returncode), ("hi\n", 3), r.stderr)
        self.assertEqual(self.c.allocs(), [], "poolctl run left an alloc held")
        a = self.alloc()
        r = self.cluster.poolctl("run", a, "--id", "p1", "--output", "f", "--", "sh", "-c",
                                 "echo out; echo err >&2; echo data > f")
        self.assertEqual((r.stdout, r.returncode), ("out\n", 0), r.stderr)
        self.assertIn("err\n", r.stderr)
        self.assertIn("sha256:" + hashlib.sha256(b"data\n").hexdigest(), r.stderr)
        r = self.cluster.poolctl("run", a, "--", "sh", "-c", "kill -TERM $$")
        self.assertEqual(r.returncode, 128 + signal.SIGTERM)
        r = self.cluster.poolctl("execs", a)
        self.assertIn("p1", r.stdout)
        r = self.cluster.poolctl("logs", a, "p1", "--stderr")
        self.assertEqual(r.stdout, "err\n")
        self.c.exec_put(a, "follow", ["sh", "-c", "echo one; sleep 0.5; echo two"])
        r = self.cluster.poolctl("logs", a, "follow", "--follow")
        self.assertEqual(r.stdout, "one\ntwo\n")

    def test_python_run(self):
        result = self.c.run(["sh", "-c", "echo py; exit 4"], min={"cpu": 1, "mem": 256 * MiB, "disk": MiB})
        self.assertEqual((result.exit_code, result.stdout), (4, b"py\n"))
        self.assertEqual(self.c.allocs(), [])


class ExecsAcrossRestart(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB"),)

    def test_worker_restart_marks_running_exec_lost_and_keeps_finished_ones(self):
        a = self.c.allocate(SMALL)["id"]
        self.c.exec_put(a, "done", ["sh", "-c", "echo kept; echo x > o"], outputs=["o"])
        done = self.c.exec_wait(a, "done", 5000)
        self.c.exec_put(a, "busy", ["sh", "-c", "echo $$ > pid; exec sleep 60"])
        work = os.path.join(self.cluster.root, "state-w1", "allocs", a.split("/", 1)[1], "execs", "e-busy", "work")
        pid = wait_until(lambda: read_text(os.path.join(work, "pid"))
                         and host_pid(int(read_text(os.path.join(work, "pid"))), work), 5.0, what="pid file")
        self.cluster.kill_worker("w1", signal.SIGKILL)
        self.cluster.start_worker("w1", wait=True)
        busy = wait_until(lambda: self.c.exec_inspect(a, "busy"), 5.0, what="exec back")
        self.assertEqual(busy["state"], "lost")
        self.assertFalse(pid_alive(pid), "the lost exec's process survived the restart")
        self.assertEqual(self.c.exec_inspect(a, "done"), done)
        self.assertEqual(self.c.exec_logs(a, "done")["data"], b"kept\n")
        digest = done["result"]["files"]["o"]["digest"]
        self.assertEqual(self.c.repo_read(a, digest), b"x\n")
        self.c.keepalive(a, 60000)
        self.c.free(a)


if __name__ == "__main__":
    unittest.main()

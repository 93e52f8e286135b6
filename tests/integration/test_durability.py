"""Durability and failure behaviour from the outside: a SIGKILLed worker restarted on
its state dir brings back every alloc exactly (a keepalive loop never notices), a
restarted broker relearns everything within two heartbeats while requests meanwhile
fail fast, a frozen worker yields timeout then unavailable, idle stop never stops a
live alloc and frees what remains, and a corrupt state store stops the worker with a
clear message and is left byte for byte as it was.

(test_faults.py covers the killed worker's URIs failing fast and the plain restart.)"""

import os
import signal
import subprocess
import threading
import time
import unittest

from harness import (GiB, ClusterTestCase, PoolError, Process, same_resources, wait_until)

SMALL = {"cpu": 1.0, "mem": 1.0 * GiB, "disk": 1.0 * GiB}
INSPECT_KEYS = ("id", "pool", "taskdb_alloc_id", "created_ms", "last_keepalive_ms", "expires_ms", "meta", "resources")


class KeepaliveLoop(threading.Thread):
    """Keeps an alloc alive every `period` s on its own client; records every outcome."""

    def __init__(self, cluster, uri, interval_ms=60000, period=0.1):
        super().__init__(daemon=True)
        self.client = cluster.new_client(timeout_ms=1500)
        self.uri, self.interval_ms, self.period = uri, interval_ms, period
        self.outcomes = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.client.keepalive(self.uri, self.interval_ms)
                self.outcomes.append("ok")
            except PoolError as e:
                self.outcomes.append(e.kind)
            self.halt.wait(self.period)

    def stop(self):
        self.halt.set()
        self.join(10)


class WorkerRestart(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB"), ("w2", "cpu=8,mem=16GiB,disk=200GiB"))
    FRESH_CLUSTER_PER_TEST = True

    def test_sigkill_and_restart_keeps_every_alloc_exactly(self):
        kept = self.c.accept("w1/1", SMALL, owner="dora", labels={"run": "r1", "step": "a b"})
        idle = self.c.accept("w1/1", {"cpu": 2.0, "mem": 2.0 * GiB, "disk": 3.0 * GiB}, owner="eve",
                             labels={"run": "r2"})
        self.c.keepalive(idle["id"], 90000)
        loop = KeepaliveLoop(self.cluster, kept["id"])
        loop.start()
        self.addCleanup(loop.stop)
        wait_until(lambda: loop.outcomes.count("ok") >= 3, 5.0, what="keepalive loop running")
        before_idle = self.c.inspect(idle["id"])

        self.cluster.kill_worker("w1", signal.SIGKILL)
        self.cluster.start_worker("w1", wait=True, timeout=10.0)
        n = len(loop.outcomes)
        wait_until(lambda: loop.outcomes[n:].count("ok") >= 5, 10.0, what="keepalives succeed after the restart")
        loop.stop()

        self.assertNotIn("not_exist", loop.outcomes, "a keepalive saw the alloc gone: %r" % loop.outcomes)
        after_idle = wait_until(lambda: self.c.inspect(idle["id"]), 5.0, what="alloc back after restart")
        for key in INSPECT_KEYS:
            self.assertEqual(after_idle[key], before_idle[key], key)
        after_kept = self.c.inspect(kept["id"])
        for key in ("id", "created_ms", "meta", "resources"):
            self.assertEqual(after_kept[key], kept[key], key)
        self.assertEqual(after_kept["meta"]["labels"], {"run": "r1", "step": "a b"})
        self.assertEqual({a["id"] for a in self.c.allocs(pool="w1")}, {kept["id"], idle["id"]})
        total = self.cluster.worker_resources["w1"]
        wait_until(lambda: same_resources(self.cluster.offer_of("w1")["available"],
                                          {"cpu": total["cpu"] - 3.0, "mem": total["mem"] - 3.0 * GiB,
                                           "disk": total["disk"] - 4.0 * GiB}),
                   3.0, what="restarted w1 offers its total minus both restored allocs")

    def test_freed_and_collected_allocs_stay_gone_after_restart(self):
        freed = self.c.accept("w1/1", SMALL)
        expired = self.c.accept("w1/1", SMALL)
        self.c.keepalive(expired["id"], 100)
        self.c.free(freed["id"])
        time.sleep(0.3)  # let the 100 ms lease run out (it is the alloc's lease, not a sync)
        # Taking the whole pool collects the expired alloc.
        big = self.c.accept("w1/1", {"cpu": 4.0, "mem": 7.0 * GiB, "disk": 99.0 * GiB})
        self.cluster.kill_worker("w1", signal.SIGKILL)
        self.cluster.start_worker("w1", wait=True, timeout=10.0)
        wait_until(lambda: {a["id"] for a in self.c.allocs(pool="w1")} == {big["id"]}, 5.0,
                   what="only the big alloc back")
        for gone in (freed, expired):
            self.assertPoolError("not_exist", self.c.inspect, gone["id"])

    def test_sync_os_keeps_what_was_acknowledged_right_before_a_sigkill(self):
        # --sync os: no fdatasync, but every change is in the OS page cache before
        # the reply, so the death of the process alone loses nothing.
        self.cluster.add_worker("fast", "cpu=4,mem=8GiB,disk=100GiB", ["--sync", "os"])
        self.cluster.start_worker("fast", wait=True)
        kept = self.c.accept("fast/1", SMALL, owner="dora", labels={"run": "r1"})
        self.assertEqual(self.c.keepalive(kept["id"], 5000), 5000)
        freed = self.c.accept("fast/1", SMALL)
        self.c.free(freed["id"])
        middle = self.c.accept("fast/1", SMALL, labels={"n": "2"})
        before = {a["id"]: self.c.inspect(a["id"]) for a in (kept, middle)}
        last = self.c.accept("fast/1", SMALL, labels={"n": "3"})  # the SIGKILL follows its reply at once
        before[last["id"]] = last
        pid = self.cluster.workers["fast"].pid
        self.cluster.kill_worker("fast", signal.SIGKILL)
        self.assertIn("state store sync os", self.cluster.workers["fast"].log_text())

        self.cluster.start_worker("fast", wait=False)
        wait_until(lambda: {a["id"] for a in self.c.allocs(pool="fast")} == set(before), 10.0,
                   what="every acknowledged alloc back after the restart, the freed one not")
        self.assertNotEqual(self.cluster.workers["fast"].pid, pid)
        for uri, was in before.items():
            now = self.c.inspect(uri)
            for key in INSPECT_KEYS:
                self.assertEqual(now[key], was[key], "%s of %s" % (key, uri))
        self.assertPoolError("not_exist", self.c.inspect, freed["id"])

    def test_expired_alloc_stays_expired_across_restart(self):
        a = self.c.accept("w1/1", SMALL)
        self.c.keepalive(a["id"], 300)
        before = self.c.inspect(a["id"])
        self.cluster.kill_worker("w1", signal.SIGKILL)
        self.cluster.start_worker("w1", wait=True, timeout=10.0)
        after = wait_until(lambda: self.c.inspect(a["id"]), 5.0, what="alloc back after restart")
        self.assertEqual(after["expires_ms"], before["expires_ms"], "a restart must not renew a lease")
        # Expired: the offer is whole, and a keepalive still revives it (not collected).
        wait_until(lambda: same_resources(self.cluster.offer_of("w1")["available"],
                                          self.cluster.worker_resources["w1"]), 3.0, what="w1 offer whole")
        self.assertEqual(self.c.keepalive(a["id"], 5000), 5000)


class BrokerRestart(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB"), ("w2", "cpu=8,mem=16GiB,disk=200GiB"))
    HEARTBEAT = "200ms"
    FRESH_CLUSTER_PER_TEST = True

    def test_requests_fail_fast_while_down_and_everything_is_back_within_two_heartbeats(self):
        a1 = self.c.accept("w1/1", SMALL, labels={"k": "v"})
        a2 = self.c.accept("w2/1", SMALL)
        worker_pids = {w: p.pid for w, p in self.cluster.workers.items()}
        self.cluster.kill_broker(signal.SIGKILL)

        down = self.cluster.new_client(timeout_ms=500)
        for op, args in (("pools", {}), ("inspect", {"alloc": a1["id"]}), ("keepalive", {"alloc": a1["id"], "interval_ms": 1000})):
            with self.subTest(op=op):
                t = time.monotonic()
                with self.assertRaises(PoolError) as cm:
                    down.call(op, **args)
                self.assertIn(cm.exception.kind, ("timeout", "unavailable"))
                self.assertLess(time.monotonic() - t, 1.5, "a request to a dead broker must not hang")

        self.cluster.broker.start()
        wait_until(lambda: self.cluster.new_client(timeout_ms=100).call("ping", timeout_ms=100), 10.0,
                   interval=0.01, what="broker answers ping")
        t0 = time.monotonic()
        budget = 2 * self.cluster.heartbeat_s + 0.3  # two heartbeats, plus scheduling slack on 2 cores
        wait_until(lambda: {"w1", "w2"} <= {p["id"] for p in self.c.pools()}
                   and {a1["id"], a2["id"]} <= {a["id"] for a in self.c.allocs()}, budget + 2.0, interval=0.01,
                   what="pools and allocs back")
        took = time.monotonic() - t0
        self.assertLess(took, budget, "pools and allocs back after %.2f s (two heartbeats = %.2f s)"
                        % (took, 2 * self.cluster.heartbeat_s))
        self.assertEqual({w: p.pid for w, p in self.cluster.workers.items()}, worker_pids, "no worker restarted")
        self.assertEqual(self.c.inspect(a1["id"])["meta"]["labels"], {"k": "v"})
        self.assertEqual(self.c.keepalive(a2["id"], 1000), 1000)


class FrozenWorker(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB"), ("w2", "cpu=8,mem=16GiB,disk=200GiB"))
    WORKER_TIMEOUT = "2s"
    REQUEST_TIMEOUT = "500ms"
    FRESH_CLUSTER_PER_TEST = True

    def test_a_worker_that_stops_answering_yields_timeout_then_unavailable(self):
        a1 = self.c.accept("w1/1", SMALL)
        a2 = self.c.accept("w2/1", SMALL)
        proc = self.cluster.workers["w1"]
        proc.send_signal(signal.SIGSTOP)
        self.addCleanup(proc.send_signal, signal.SIGCONT)
        # Still listed (within --worker-timeout): the broker forwards and gives up at its deadline.
        t = time.monotonic()
        self.assertPoolError(("timeout", "unavailable"), self.c.inspect, a1["id"])
        self.assertLess(time.monotonic() - t, 1.5, "a frozen worker must cost at most the request timeout")
        self.assertEqual(self.c.inspect(a2["id"])["id"], a2["id"])
        # After the worker timeout it is gone: its URIs fail fast, the others still answer.
        self.cluster.wait_pool_gone("w1", self.cluster.worker_timeout_s + 2.0)
        t = time.monotonic()
        self.assertPoolError(("unavailable", "not_exist"), self.c.keepalive, a1["id"], 1000)
        self.assertLess(time.monotonic() - t, 0.4)
        self.assertEqual({a["id"] for a in self.c.allocs()}, {a2["id"]})
        # Thawed, it is back with its alloc.
        proc.send_signal(signal.SIGCONT)
        self.cluster.wait_pools({"w1"}, 5.0)
        self.assertEqual(self.c.inspect(a1["id"])["id"], a1["id"])


class IdleStop(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB"),)
    FRESH_CLUSTER_PER_TEST = True

    def _idle_worker(self, max_idle="1s"):
        self.cluster.add_worker("idle", "cpu=2,mem=2GiB,disk=10GiB", ["--max-idle", max_idle])
        self.cluster.start_worker("idle", wait=True)
        return self.cluster.workers["idle"]

    def test_never_stops_while_an_alloc_is_live_then_frees_what_remains_and_exits_0(self):
        sub = self.cluster.subscriber(["pools.idle", "allocs.idle"])
        proc = self._idle_worker("1s")
        a = self.c.accept("idle/1", {"cpu": 1.0, "mem": 1.0 * GiB, "disk": 1.0 * GiB})
        loop = KeepaliveLoop(self.cluster, a["id"], interval_ms=400, period=0.1)
        loop.start()
        self.addCleanup(loop.stop)
        time.sleep(3.0)  # three idle periods with a live alloc: the worker must stay
        self.assertTrue(proc.running, "stopped while an alloc was live")
        loop.stop()
        self.assertNotIn("not_exist", loop.outcomes)
        # No more keepalives: the lease (400 ms) runs out, then 1 s of idleness stops it.
        code = proc.popen.wait(10)
        self.assertEqual(code, 0, "an idle stop exits 0")
        events = []
        while True:
            got = sub.recv(500)
            if got is None:
                break
            events.append((got[0], got[1].get("event"), (got[1].get("alloc") or {}).get("id")))
        self.assertIn(("allocs.idle", "freed", a["id"]), events, events)
        self.assertIn(("pools.idle", "stopped", None), events, events)
        self.assertLess(events.index(("allocs.idle", "freed", a["id"])), events.index(("pools.idle", "stopped", None)))
        # What it freed is gone for good: a restart on the same state dir has no alloc.
        self.cluster.workers["idle"].argv.remove("--max-idle")
        self.cluster.workers["idle"].argv.remove("1s")
        self.cluster.start_worker("idle", wait=True)
        self.assertEqual(self.c.allocs(pool="idle"), [])


class CorruptStore(unittest.TestCase):
    """No cluster needed: the worker refuses to start before it connects anywhere."""

    def setUp(self):
        from harness import binaries_present, bin_dir
        import tempfile
        if not binaries_present():
            self.skipTest("binaries not built")
        self.bin = os.path.join(bin_dir(), "pool-worker")
        self.root = tempfile.mkdtemp(prefix="poolbus-corrupt-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.root])

    def _run_worker(self, state_dir, pool_id="w1"):
        return subprocess.run([self.bin, "--id", pool_id, "--connect", "tcp://127.0.0.1:1", "--announce",
                               "tcp://127.0.0.1:1", "--resources", "cpu=2,mem=2GiB,disk=10GiB",
                               "--state-dir", state_dir, "--heartbeat", "100ms"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=10)

    def _make_store(self, name, allocs=0):
        """A real state dir written by a worker run (SIGTERMed), with `allocs` allocs."""
        state = os.path.join(self.root, name)
        os.makedirs(state)
        if allocs:
            from harness import Cluster
            cluster = Cluster((("w1", "cpu=64,mem=64GiB,disk=1000GiB"),))
            try:
                for i in range(allocs):
                    cluster.client().accept("w1/1", {"cpu": 0.01, "mem": 1.0 * (1 << 20), "disk": 1.0 * (1 << 20)},
                                            labels={"i": str(i), "pad": "x" * 200})
            finally:
                cluster.stop()
            os.rmdir(state)
            os.rename(os.path.join(cluster.root, "state-w1"), state)
            subprocess.run(["rm", "-rf", cluster.root])
        return state

    def _assert_refused(self, state, want_in_message, pool_id="w1"):
        db = os.path.join(state, "state.db")
        with open(db, "rb") as f:
            before = f.read()
        t = time.monotonic()
        proc = self._run_worker(state, pool_id)
        self.assertNotEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertLess(time.monotonic() - t, 5.0)
        self.assertIn("pool-worker: state store %s: " % db, proc.stderr)
        self.assertIn(want_in_message, proc.stderr)
        with open(db, "rb") as f:
            self.assertEqual(f.read(), before, "the state store must be left byte for byte")
        return proc

    def test_garbage_file(self):
        state = self._make_store("garbage")
        with open(os.path.join(state, "state.db"), "wb") as f:
            f.write(bytes((i * 7919 + 13) % 251 for i in range(16384)))
        self._assert_refused(state, "not an SQLite database")

    def test_truncated_file(self):
        state = self._make_store("truncated", allocs=60)
        db = os.path.join(state, "state.db")
        size = os.path.getsize(db)
        self.assertGreater(size, 8 * 4096)
        with open(db, "r+b") as f:
            f.truncate(size // 2)
        self._assert_refused(state, "corrupt")

    def test_empty_file(self):
        state = self._make_store("empty")
        open(os.path.join(state, "state.db"), "wb").close()
        self._assert_refused(state, "empty")

    def test_store_of_another_pool(self):
        state = self._make_store("other", allocs=1)
        self._assert_refused(state, 'belongs to pool "w1"', pool_id="w9")


if __name__ == "__main__":
    unittest.main()

"""Faults and races from the outside: killed workers and brokers, restarts on the same
ports, and many clients racing for one offer (the sum never exceeds the total)."""

import signal
import threading
import time
import unittest

import zmq

from harness import GiB, ClusterTestCase, PoolError, same_resources, wait_until
import poolbus  # noqa: E402  (harness puts clients/python on sys.path)

SMALL = {"cpu": 1.0, "mem": 1.0 * GiB, "disk": 1.0 * GiB}


class WorkerAndBrokerFaults(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB"), ("w2", "cpu=8,mem=16GiB,disk=200GiB"))
    WORKER_TIMEOUT = "1s"
    HEARTBEAT = "200ms"
    REQUEST_TIMEOUT = "1s"

    def test_killed_worker_disappears_and_its_uris_fail_fast(self):
        a1 = self.c.accept("w1/1", SMALL)
        a2 = self.c.accept("w2/1", SMALL)
        self.cluster.kill_worker("w1", signal.SIGKILL)
        t0 = time.monotonic()
        limit = self.cluster.worker_timeout_s + 2.0
        self.cluster.wait_pool_gone("w1", limit)
        self.assertLess(time.monotonic() - t0, limit)
        self.assertNotIn("w1", {o["pool"] for o in self.c.offers()})
        self.assertIn("w2", {o["pool"] for o in self.c.offers()})

        for call, args in ((self.c.inspect, (a1["id"],)), (self.c.keepalive, (a1["id"], 1000)),
                           (self.c.free, (a1["id"],)), (self.c.offer, ("w1/1",)),
                           (self.c.accept, ("w1/1", SMALL))):
            with self.subTest(op=call.__name__):
                t = time.monotonic()
                self.assertPoolError(("unavailable", "not_exist"), call, *args)
                # "answered unavailable at once": well under the 1 s request timeout.
                self.assertLess(time.monotonic() - t, 0.5, "%s on a gone pool was slow" % call.__name__)

        listed = {a["id"] for a in self.c.allocs()}
        self.assertIn(a2["id"], listed)
        self.assertNotIn(a1["id"], listed)
        self.assertEqual({a["id"] for a in self.c.allocs(pool="w2")}, {a2["id"]})
        self.assertEqual(self.c.inspect(a2["id"])["id"], a2["id"])

    def test_restarted_worker_brings_its_allocs_back(self):
        a1 = self.c.accept("w1/1", SMALL, owner="dora")
        self.c.keepalive(a1["id"], 60000)
        before = self.c.inspect(a1["id"])
        self.cluster.kill_worker("w1", signal.SIGKILL)
        self.cluster.wait_pool_gone("w1", self.cluster.worker_timeout_s + 2.0)
        self.cluster.start_worker("w1", wait=True, timeout=10.0)
        after = wait_until(lambda: self.c.inspect(a1["id"]), 5.0, what="alloc back after worker restart")
        for key in ("id", "pool", "created_ms", "last_keepalive_ms", "expires_ms"):
            self.assertEqual(after[key], before[key], key)
        self.assertEqual(after["meta"].get("owner"), "dora")
        self.assertResources(after["resources"], SMALL)
        total = self.cluster.worker_resources["w1"]
        wait_until(lambda: same_resources(self.cluster.offer_of("w1")["available"],
                                          {k: total[k] - SMALL.get(k, 0.0) for k in total}),
                   3.0, what="restarted w1 offers total minus its restored alloc")

    def test_broker_restart_relearns_pools_and_keeps_allocs(self):
        a1 = self.c.accept("w1/1", SMALL)
        a2 = self.c.allocate({"cpu": 2.0})
        worker_pids = {w: p.pid for w, p in self.cluster.workers.items()}
        self.assertIsNotNone(self.cluster.kill_broker(signal.SIGKILL))
        self.cluster.start_broker(wait=True)
        t0 = time.monotonic()
        self.cluster.wait_pools({"w1", "w2"}, 10 * self.cluster.heartbeat_s + 2.0)
        self.assertLess(time.monotonic() - t0, 10 * self.cluster.heartbeat_s + 2.0)
        self.assertEqual({w: p.pid for w, p in self.cluster.workers.items()}, worker_pids,
                         "workers must not have been restarted")
        self.assertTrue(all(p.running for p in self.cluster.workers.values()))
        for a in (a1, a2):
            got = self.c.inspect(a["id"])
            self.assertEqual((got["id"], got["created_ms"]), (a["id"], a["created_ms"]))
        self.assertEqual({a["id"] for a in self.c.allocs()}, {a1["id"], a2["id"]})
        self.c.free(a1["id"])
        self.assertPoolError("not_exist", self.c.inspect, a1["id"])

    def test_sigterm_stops_every_program_within_two_seconds(self):
        for name, proc in [("w1", self.cluster.workers["w1"]), ("broker", self.cluster.broker)]:
            with self.subTest(process=name):
                t0 = time.monotonic()
                code = proc.kill(signal.SIGTERM, timeout=4.0)
                self.assertIsNotNone(code, "%s did not exit within 4 s of SIGTERM" % name)
                self.assertLess(time.monotonic() - t0, 2.5, "%s took too long to stop" % name)
                self.assertEqual(code, 0, "%s exit code after SIGTERM" % name)

    def test_worker_sigterm_leaves_the_pool_list(self):
        self.cluster.kill_worker("w2", signal.SIGTERM)
        self.cluster.wait_pool_gone("w2", self.cluster.worker_timeout_s + 2.0)
        self.assertIn("w1", self.cluster.pool_ids())


class Races(ClusterTestCase):
    WORKERS = (("r8", "cpu=8,mem=16GiB,disk=100GiB"), ("r16", "cpu=16,mem=32GiB,disk=100GiB"))
    REQUEST_TIMEOUT = "5s"

    def _count(self, replies):
        kinds = {}
        for r in replies:
            self.assertIsNotNone(r, "a request got no reply")
            key = "ok" if r.get("ok") else r["error"]["kind"]
            kinds[key] = kinds.get(key, 0) + 1
        return kinds

    def _cpu_in_use(self, pool):
        return sum(a["resources"].get("cpu", 0.0) for a in self.c.allocs(pool=pool))

    def test_50_accepts_in_flight_on_one_dealer(self):
        c = self.cluster.new_client(timeout_ms=15000)
        requests = [{"op": "accept", "offer": "r8/1", "meta": {"want": {"cpu": 1.0}}} for _ in range(50)]
        kinds = self._count(c.request_many(requests))
        self.assertEqual(kinds, {"ok": 8, "not_exist": 42})
        self.assertEqual(self._cpu_in_use("r8"), 8.0)
        self.assertEqual(len(self.c.allocs(pool="r8")), 8)

    def test_50_accepts_from_50_threads(self):
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        results = [None] * 50
        barrier = threading.Barrier(50)

        def racer(i):
            with poolbus.Client(self.cluster.api, timeout_ms=15000, context=ctx) as c:
                barrier.wait()
                try:
                    results[i] = c.accept("r8/1", {"cpu": 1.0})["resources"]["cpu"]
                except PoolError as e:
                    results[i] = e.kind

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        ok = [r for r in results if isinstance(r, float)]
        errors = [r for r in results if not isinstance(r, float)]
        self.assertEqual(len(ok), 8, results)
        self.assertEqual(set(errors), {"not_exist"}, results)
        self.assertLessEqual(sum(ok), 8.0)
        self.assertEqual(self._cpu_in_use("r8"), 8.0)
        pools = {p["id"]: p for p in self.c.pools()}
        self.assertEqual(pools["r8"]["allocs"], 8)

    def test_50_allocates_on_16_cpus(self):
        # Only the 16-cpu pool can take these: the 8-cpu pool is filled first.
        self.c.accept("r8/1", {"cpu": 8.0, "mem": 16.0 * GiB, "disk": 100.0 * GiB})
        c = self.cluster.new_client(timeout_ms=30000)
        requests = [{"op": "allocate", "min": {"cpu": 1.0}} for _ in range(50)]
        replies = c.request_many(requests)
        kinds = self._count(replies)
        self.assertEqual(kinds, {"ok": 16, "unavailable": 34})
        self.assertEqual({r["alloc"]["pool"] for r in replies if r.get("ok")}, {"r16"})
        self.assertEqual(self._cpu_in_use("r16"), 16.0)
        self.assertLessEqual(sum(r["alloc"]["resources"]["cpu"] for r in replies if r.get("ok")), 16.0)

    def test_50_allocates_from_50_threads(self):
        self.c.accept("r8/1", {"cpu": 8.0, "mem": 16.0 * GiB, "disk": 100.0 * GiB})
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        results = [None] * 50
        barrier = threading.Barrier(50)

        def racer(i):
            with poolbus.Client(self.cluster.api, timeout_ms=30000, context=ctx) as c:
                barrier.wait()
                try:
                    results[i] = c.allocate({"cpu": 1.0})["pool"]
                except PoolError as e:
                    results[i] = "error:" + e.kind

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        self.assertEqual(results.count("r16"), 16, results)
        self.assertEqual(results.count("error:unavailable"), 34, results)
        self.assertEqual(self._cpu_in_use("r16"), 16.0)


if __name__ == "__main__":
    unittest.main()

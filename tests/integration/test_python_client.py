"""clients/python/poolbus.py end to end against the real broker and workers, plus
example_hold.py run as a subprocess."""

import json
import os
import subprocess
import threading
import time
import unittest

from harness import CLIENT_DIR, GiB, PYTHON, ClusterTestCase, PoolError, free_ports
import poolbus  # noqa: E402  (harness puts clients/python on sys.path)


class PythonClientTest(ClusterTestCase):
    WORKERS = (("p1", "cpu=4,mem=8GiB,disk=100GiB"), ("p2", "cpu=2,mem=4GiB,disk=50GiB"))

    def test_every_method(self):
        c = self.c
        self.assertTrue(c.ping())
        self.assertEqual({p["id"] for p in c.pools()}, {"p1", "p2"})
        self.assertEqual({o["id"] for o in c.offers()}, {"p1/1", "p2/1"})
        self.assertEqual(c.offer("p2/1")["pool"], "p2")
        a = c.accept("p1/1", "cpu=1,mem=1GiB,disk=1GiB", owner="py", labels={"x": "y"})
        self.assertEqual(a["pool"], "p1")
        self.assertEqual(a["meta"].get("labels"), {"x": "y"})
        b = c.allocate({"cpu": 1.0, "mem": GiB, "disk": GiB}, width=0, owner="py2")
        self.assertEqual({x["id"] for x in c.allocs()}, {a["id"], b["id"]})
        self.assertEqual({x["id"] for x in c.allocs(pool="p1")} | {x["id"] for x in c.allocs(pool="p2")},
                         {a["id"], b["id"]})
        self.assertEqual(c.inspect(b["id"])["meta"].get("owner"), "py2")
        self.assertEqual(c.keepalive(a["id"], 20000), 20000)
        self.assertEqual(c.keepalive(a["id"], 10 ** 9), poolbus.MAX_KEEPALIVE_INTERVAL_MS)
        c.free(a["id"])
        c.free(b["id"])
        self.assertEqual(c.allocs(), [])
        with self.assertRaises(PoolError) as cm:
            c.inspect(a["id"])
        self.assertEqual(cm.exception.kind, "not_exist")
        self.assertTrue(cm.exception.message == "" or isinstance(cm.exception.message, str))

    def test_error_kinds_surface_as_pool_error(self):
        self.assertPoolError("precondition", self.c.accept, "p1/1", {})
        self.assertPoolError("not_exist", self.c.accept, "p1/1", {"cpu": 64.0})
        self.assertPoolError("unavailable", self.c.allocate, {"cpu": 64.0})
        self.assertPoolError("invalid", self.c.inspect, "no-slash")

    def test_timeout_when_nothing_listens(self):
        (port,) = free_ports(1)
        with poolbus.Client("tcp://127.0.0.1:%d" % port, timeout_ms=200) as dead:
            t0 = time.monotonic()
            with self.assertRaises(poolbus.PoolTimeout) as cm:
                dead.ping()
            self.assertLess(time.monotonic() - t0, 1.0)
            self.assertEqual(cm.exception.kind, "timeout")
            self.assertIsInstance(cm.exception, TimeoutError)

    def test_client_is_thread_safe(self):
        errors = []

        def hammer():
            try:
                for _ in range(20):
                    self.c.ping()
                    self.c.offers()
            except Exception as e:  # collected and asserted below
                errors.append(e)
        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])

    def test_keepalive_short_lease_keeps_alloc_alive(self):
        a = self.c.accept("p2/1", {"cpu": 1.0, "mem": GiB, "disk": GiB})
        with poolbus.Keepalive(self.c, a["id"], interval_ms=600) as ka:
            self.wait_until(lambda: ka.renewals >= 4, 5.0, what="4 renewals at ~300 ms")
            i = self.c.inspect(a["id"])
            self.assertGreater(i["last_keepalive_ms"], 0)
            self.assertEqual(i["expires_ms"], i["last_keepalive_ms"] + 600)
            self.assertGreater(i["expires_ms"], int(time.time() * 1000) - 100)
            self.assertIsNone(ka.error)
        self.assertFalse(ka.alive)
        # Without renewals the 600 ms lease lapses: the offer is whole again.
        self.wait_until(lambda: (self.cluster.offer_of("p2") or {"available": {}})["available"].get("cpu") == 2.0, 5.0,
                        what="p2 whole after the lease lapsed")

    def test_keepalive_reports_a_freed_alloc(self):
        a = self.c.accept("p1/1", {"cpu": 1.0, "mem": GiB, "disk": GiB})
        lost = threading.Event()
        ka = poolbus.Keepalive(self.c, a["id"], interval_ms=400, on_lost=lambda e: lost.set())
        self.addCleanup(ka.stop)
        self.wait_until(lambda: ka.renewals >= 1, 3.0)
        self.c.free(a["id"])
        self.assertTrue(lost.wait(3.0), "keepalive did not report the freed alloc")
        self.assertEqual(ka.error.kind, "not_exist")
        ka.join(2)
        self.assertFalse(ka.alive)

    def test_subscriber_yields_topic_and_dict(self):
        sub = self.cluster.subscriber("offers.p1")
        topic, body = next(iter(sub))
        self.assertEqual(topic, "offers.p1")
        self.assertEqual(body["pool"], "p1")
        self.assertIsInstance(body["seq"], int)
        seq = body["seq"]
        a = self.c.accept("p1/1", {"cpu": 2.0})
        got = sub.wait_for(lambda t, b: b["seq"] == seq + 1, 3000)
        self.assertIsNotNone(got)
        self.assertEqual(got[1]["available"]["cpu"], 2.0)
        self.c.free(a["id"])

    def run_example(self, *args, timeout=30):
        return subprocess.run([PYTHON, os.path.join(CLIENT_DIR, "example_hold.py"), "--api", self.cluster.api]
                              + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)

    def test_example_hold_allocate(self):
        t0 = time.monotonic()
        done = self.run_example("--min", "cpu=1,mem=1GiB,disk=1GiB", "--interval", "1s", "1.5")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        inspect = json.loads(done.stdout)
        self.assertIn(inspect["pool"], ("p1", "p2"))
        self.assertGreater(inspect["last_keepalive_ms"], 0, "held 1.5 s with a 1 s lease: must have renewed")
        self.assertEqual(inspect["meta"].get("owner"), "example_hold")
        self.assertPoolError("not_exist", self.c.inspect, inspect["id"])  # freed at the end
        self.assertEqual(self.c.allocs(), [])

    def test_example_hold_accept_first_offer(self):
        done = self.run_example("--want", "cpu=1", "0.2")
        self.assertEqual(done.returncode, 0, done.stderr)
        inspect = json.loads(done.stdout)
        self.assertEqual(inspect["resources"].get("cpu"), 1.0)
        self.assertEqual(self.c.allocs(), [])

    def test_example_hold_error_exit(self):
        done = self.run_example("--min", "cpu=1000", "0.1")
        self.assertEqual(done.returncode, 1)
        self.assertIn("unavailable", done.stderr)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1)


if __name__ == "__main__":
    unittest.main()

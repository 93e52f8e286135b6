"""Offer stream (broker PUB) from the outside: offers.<pool> with seq and heartbeats,
pools.<pool> joined/left/stopped, allocs.<pool> created/freed/collected."""

import signal
import time
import unittest

from harness import GiB, ClusterTestCase, same_resources

W1 = {"cpu": 4.0, "mem": 8.0 * GiB, "disk": 100.0 * GiB}
SMALL = {"cpu": 1.0, "mem": 1.0 * GiB, "disk": 10.0 * GiB}


def minus(a, b):
    return {k: a.get(k, 0.0) - b.get(k, 0.0) for k in set(a) | set(b)}


class StreamTest(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB"), ("w2", "cpu=8,mem=16GiB,disk=200GiB"))
    HEARTBEAT = "200ms"
    WORKER_TIMEOUT = "1s"

    def subscribe(self, *topics, ready_pool="w1"):
        """A subscriber on `topics` (plus offers.<ready_pool>), returned once a first
        offers message proved the subscription is live (no slow-joiner loss)."""
        sub = self.cluster.subscriber(list(topics) + ["offers." + ready_pool])
        got = sub.wait_for(lambda t, b: t == "offers." + ready_pool, 5000)
        self.assertIsNotNone(got, "no offers.%s message within 5 s of subscribing" % ready_pool)
        return sub, got[1]

    def next_offer_change(self, sub, pool, prev_seq, timeout_ms=3000):
        got = sub.wait_for(lambda t, b: t == "offers." + pool and b.get("seq") != prev_seq, timeout_ms)
        self.assertIsNotNone(got, "no offers.%s with seq != %s" % (pool, prev_seq))
        return got[1]

    def test_offers_body_and_seq_per_change(self):
        sub, first = self.subscribe("offers.")
        for key in ("v", "pool", "seq", "resources", "available", "offers", "allocs", "ts_ms"):
            self.assertIn(key, first)
        self.assertEqual(first["v"], 1)
        self.assertEqual(first["pool"], "w1")
        self.assertIsInstance(first["seq"], int)
        self.assertIsInstance(first["ts_ms"], int)
        self.assertAlmostEqual(first["ts_ms"] / 1000.0, time.time(), delta=5)
        self.assertResources(first["resources"], W1)
        self.assertResources(first["available"], W1)
        self.assertEqual(first["allocs"], 0)
        self.assertEqual([o["id"] for o in first["offers"]], ["w1/1"])
        self.assertResources(first["offers"][0]["available"], W1)
        seq = first["seq"]

        a = self.c.accept("w1/1", SMALL)
        changed = self.next_offer_change(sub, "w1", seq)
        self.assertEqual(changed["seq"], seq + 1, "accept must bump seq by exactly one")
        self.assertResources(changed["available"], minus(W1, SMALL))
        self.assertEqual(changed["allocs"], 1)
        self.assertResources(changed["offers"][0]["available"], minus(W1, SMALL))

        self.c.free(a["id"])
        freed = self.next_offer_change(sub, "w1", seq + 1)
        self.assertEqual(freed["seq"], seq + 2, "free must bump seq by exactly one")
        self.assertResources(freed["available"], W1)
        self.assertEqual(freed["allocs"], 0)

        whole = self.c.accept("w1/1", W1)
        gone = self.next_offer_change(sub, "w1", seq + 2)
        self.assertEqual(gone["seq"], seq + 3)
        self.assertEqual(gone["offers"], [], "a drained pool extends no offer")
        self.c.free(whole["id"])
        self.assertEqual(self.next_offer_change(sub, "w1", seq + 3)["seq"], seq + 4)

    def test_offers_at_least_once_per_heartbeat_and_same_seq_without_change(self):
        sub, first = self.subscribe("offers.w2", ready_pool="w2")
        window = 5 * self.cluster.heartbeat_s
        deadline = time.monotonic() + window
        bodies = []
        while time.monotonic() < deadline:
            got = sub.recv(int(max(1, (deadline - time.monotonic()) * 1000)))
            if got is not None:
                self.assertEqual(got[0], "offers.w2", "subscribed to offers.w2 only")
                bodies.append(got[1])
        # 5 heartbeats: allow jitter, but at least 3 repeats must arrive.
        self.assertGreaterEqual(len(bodies), 3, "only %d offers.w2 in %.1fs" % (len(bodies), window))
        self.assertEqual({b["seq"] for b in bodies}, {first["seq"]}, "no change, so no new seq")
        stamps = [b["ts_ms"] for b in bodies]
        self.assertEqual(stamps, sorted(stamps))

    def test_prefix_subscription_filters_topics(self):
        sub, _ = self.subscribe("allocs.w2")
        a = self.c.accept("w1/1", SMALL)  # a w1 event must not reach an allocs.w2 subscriber
        b = self.c.accept("w2/1", SMALL)
        got = sub.wait_for(lambda t, body: t.startswith("allocs."), 3000)
        self.assertIsNotNone(got)
        self.assertEqual(got[0], "allocs.w2")
        self.assertEqual(got[1]["alloc"]["id"], b["id"])
        self.c.free(a["id"])

    def test_allocs_created_and_freed_events(self):
        sub, _ = self.subscribe("allocs.", ready_pool="w2")
        a = self.c.accept("w2/1", SMALL, owner="carol", labels={"l": "1"})
        got = sub.wait_for(lambda t, b: t == "allocs.w2", 3000)
        self.assertIsNotNone(got, "no allocs.w2 event after accept")
        body = got[1]
        self.assertEqual((body["v"], body["pool"], body["event"]), (1, "w2", "created"))
        self.assertIsInstance(body["ts_ms"], int)
        self.assertEqual(body["alloc"]["id"], a["id"])
        self.assertEqual(body["alloc"]["pool"], "w2")
        self.assertResources(body["alloc"]["resources"], SMALL)
        self.assertEqual(body["alloc"]["meta"].get("owner"), "carol")
        self.assertEqual(body["alloc"]["created_ms"], a["created_ms"])

        self.c.free(a["id"])
        got = sub.wait_for(lambda t, b: t == "allocs.w2", 3000)
        self.assertIsNotNone(got, "no allocs.w2 event after free")
        self.assertEqual(got[1]["event"], "freed")
        self.assertEqual(got[1]["alloc"]["id"], a["id"])

    def test_collected_event_when_accept_makes_room(self):
        sub, _ = self.subscribe("allocs.w1")
        old = self.c.accept("w1/1", W1)
        self.assertEqual(self.c.keepalive(old["id"], 200), 200)
        # Expired allocs count as free: the offer is whole again within a heartbeat or so.
        self.wait_until(lambda: (self.cluster.offer_of("w1") or {}).get("available") is not None
                        and same_resources(self.cluster.offer_of("w1")["available"], W1), 3.0,
                        what="w1 offer whole after the lease expired")
        new = self.c.accept("w1/1", SMALL)
        got = sub.wait_for(lambda t, b: b.get("event") == "collected", 3000)
        self.assertIsNotNone(got, "no collected event for %s" % old["id"])
        self.assertEqual(got[1]["alloc"]["id"], old["id"])
        self.assertPoolError("not_exist", self.c.inspect, old["id"])
        self.assertEqual(self.c.inspect(new["id"])["id"], new["id"])

    def test_pools_joined_and_left(self):
        sub, _ = self.subscribe("pools.")
        self.cluster.add_worker("w3", "cpu=2,mem=2GiB,disk=10GiB")
        self.addCleanup(self._drop_worker, "w3")
        self.cluster.start_worker("w3", wait=False)
        got = sub.wait_for(lambda t, b: t == "pools.w3", 5000)
        self.assertIsNotNone(got, "no pools.w3 event after the worker started")
        self.assertEqual((got[1]["v"], got[1]["pool"], got[1]["event"]), (1, "w3", "joined"))
        self.assertIsInstance(got[1]["ts_ms"], int)
        self.assertIn("w3", self.cluster.pool_ids(), "joined, so it must be listed")

        self.cluster.kill_worker("w3", signal.SIGKILL)
        got = sub.wait_for(lambda t, b: t == "pools.w3", int((self.cluster.worker_timeout_s + 2.0) * 1000))
        self.assertIsNotNone(got, "no pools.w3 event within worker timeout + 2 s of SIGKILL")
        self.assertEqual(got[1]["event"], "left")
        self.assertNotIn("w3", self.cluster.pool_ids())

    def test_pools_stopped_on_idle(self):
        sub, _ = self.subscribe("pools.")
        self.cluster.add_worker("idle", "cpu=1,mem=1GiB,disk=1GiB", ["--max-idle", "1s"])
        self.addCleanup(self._drop_worker, "idle")
        t0 = time.monotonic()
        self.cluster.start_worker("idle", wait=False)
        events = []
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline and "stopped" not in events:
            got = sub.wait_for(lambda t, b: t == "pools.idle", int((deadline - time.monotonic()) * 1000))
            if got is None:
                break
            events.append(got[1]["event"])
        self.assertIn("stopped", events, "events for the idle worker: %r" % events)
        self.assertGreaterEqual(time.monotonic() - t0, 1.0, "stopped sooner than --max-idle after start")
        proc = self.cluster.workers["idle"].popen
        self.assertEqual(proc.wait(5), 0, "an idle stop exits 0")
        self.wait_until(lambda: "idle" not in self.cluster.pool_ids(), 3.0, what="idle pool unlisted")

    def _drop_worker(self, worker_id):
        proc = self.cluster.workers.pop(worker_id, None)
        self.cluster.worker_resources.pop(worker_id, None)
        if proc is not None:
            proc.stop()


if __name__ == "__main__":
    unittest.main()

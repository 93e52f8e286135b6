"""Scheduling from the outside (protocol.md "Additions of the second wave"): pool
labels and constraints, waiting / priority / gang allocates and the demand stream,
drain, and owner quotas -- real pool-broker / pool-worker / poolctl processes,
driven through the client API, the stream and the command line only.

Every wait is a deadline-bounded poll of observable state; durations are short
(wait_ms of a few seconds at most, and a waiting request is always released by
a free long before its deadline) so the suite stays well under a minute."""

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import zmq

from harness import (GiB, Cluster, ClusterTestCase, PoolError, bin_dir, free_ports, require_binaries,
                     same_resources)
import poolbus  # noqa: E402  (harness puts clients/python on sys.path)

# One "unit" of work; on a cpu=2,mem=4GiB,disk=10GiB pool two of them fill it
# (the second takes the whole rest: taking just min would leave cpu at 0).
U = {"cpu": 1.0, "mem": 1.0 * GiB, "disk": 1.0 * GiB}
SMALL_POOL = "cpu=2,mem=4GiB,disk=10GiB"
SMALL_RES = {"cpu": 2.0, "mem": 4.0 * GiB, "disk": 10.0 * GiB}
LONG_WAIT_MS = 8000  # a waiting request's deadline; each test frees capacity long before it


def now_ms():
    return int(time.time() * 1000)


class Waiter:
    """One allocate() in a thread of its own, on a Client of its own (a Client
    serialises its calls, so a waiting request must not share one)."""

    def __init__(self, api, min, **kwargs):  # noqa: A002 (protocol name)
        self.kwargs = kwargs
        self.result = None
        self.error = None
        self.started = time.monotonic()
        self.finished = None
        self.done = threading.Event()
        self._client = poolbus.Client(api, timeout_ms=3000)
        self._thread = threading.Thread(target=self._run, args=(min,), daemon=True,
                                        name="waiter %r" % (kwargs,))
        self._thread.start()

    def _run(self, min):  # noqa: A002
        try:
            self.result = self._client.allocate(min, **self.kwargs)
        except Exception as e:  # asserted by the test
            self.error = e
        finally:
            self.finished = time.monotonic()
            self._client.close()
            self.done.set()

    def wait(self, timeout):
        if not self.done.wait(timeout):
            raise AssertionError("allocate %r still not answered after %.1fs" % (self.kwargs, timeout))
        return self

    def placed(self, timeout):
        """The alloc (or list of allocs) once answered; fails on an error reply."""
        self.wait(timeout)
        if self.error is not None:
            raise AssertionError("allocate %r failed: %r" % (self.kwargs, self.error))
        return self.result


class SchedulingTestCase(ClusterTestCase):
    WORKERS = (("w1", SMALL_POOL), ("w2", SMALL_POOL))

    # -- helpers ------------------------------------------------------------
    def waiter(self, min=U, **kwargs):  # noqa: A002
        w = Waiter(self.cluster.api, min, **kwargs)
        # Runs before the cluster is torn down (cleanups are LIFO): never leaves a thread behind.
        self.addCleanup(w.done.wait, kwargs.get("wait_ms", 0) / 1000.0 + 5.0)
        return w

    def drain(self, pool_id, drain=True):
        """c.drain(); with a cluster shared by the class (POOLBUS_IT_FRESH=0), undone after the test."""
        entry = self.c.drain(pool_id, drain)
        if drain and not self.fresh_per_test():
            self.addCleanup(self._undrain, pool_id)
        return entry

    def _undrain(self, pool_id):
        try:
            self.cluster.client().drain(pool_id, False)
        except PoolError:
            pass

    def wait_queue(self, n, timeout=5.0):
        """The queue once it holds exactly n requests."""
        return self.wait_until(lambda: (lambda q: q if len(q) == n else None)(self.c.queue()), timeout,
                               what="%d request(s) in the queue" % n)

    def subscribe(self, topics, ready_pool="w1"):
        """A subscriber on topics (plus offers.<ready_pool>), returned once a first
        offers message proved that the subscription is live (no slow-joiner loss)."""
        sub = self.cluster.subscriber(list(topics) + ["offers." + ready_pool])
        got = sub.wait_for(lambda t, b: t == "offers." + ready_pool, 5000)
        self.assertIsNotNone(got, "no offers.%s message within 5 s of subscribing" % ready_pool)
        return sub

    def next_event(self, sub, topic, event, timeout_ms=5000, request_id=None):
        got = sub.wait_for(lambda t, b: t == topic and b.get("event") == event and
                           (request_id is None or b.get("request", {}).get("id") == request_id), timeout_ms)
        self.assertIsNotNone(got, "no %s event %r (request %r) within %d ms" % (topic, event, request_id, timeout_ms))
        return got[1]

    def pool(self, pool_id):
        for p in self.c.pools():
            if p["id"] == pool_id:
                return p
        return None

    def offer_pools(self):
        return {o["pool"] for o in self.c.offers()}

    def fill(self, pool_id, n=2, owner=None):
        """n accepts of U on pool_id (two fill a SMALL_POOL)."""
        return [self.c.accept(pool_id + "/1", U, owner=owner) for _ in range(n)]

    def wait_whole(self, pool_id, resources=SMALL_RES, timeout=5.0):
        def whole():
            o = self.cluster.offer_of(pool_id)
            return o is not None and same_resources(o["available"], resources)
        self.wait_until(whole, timeout, what="offer of %s whole again" % pool_id)

    def assertQueueEntry(self, entry, wait_ms, owner=None, min=U, count=1, priority=0,  # noqa: A002
                         constraints=None, width=0):
        self.assertIsInstance(entry["id"], str)
        self.assertTrue(entry["id"])
        if owner is None:
            self.assertIn(entry.get("owner"), ("", None), entry)
        else:
            self.assertEqual(entry.get("owner"), owner)
        self.assertResources(entry["min"], min)
        self.assertEqual(entry["width"], width)
        self.assertEqual(entry["count"], count)
        self.assertEqual(entry["priority"], priority)
        self.assertEqual(entry["constraints"], constraints or {})
        self.assertIsInstance(entry["queued_ms"], int)
        self.assertIsInstance(entry["deadline_ms"], int)
        self.assertAlmostEqual(entry["queued_ms"] / 1000.0, time.time(), delta=10)
        self.assertLessEqual(abs(entry["deadline_ms"] - entry["queued_ms"] - wait_ms), 50, entry)


# ---------------------------------------------------------------------------
# Labels and constraints

class LabelsTest(SchedulingTestCase):
    WORKERS = (("w1", SMALL_POOL, ["--label", "zone=eu-1", "--label", "gpu=a100"]),
               ("w2", SMALL_POOL, ["--label", "zone=us-1"]),
               ("w3", SMALL_POOL))
    LABELS = {"w1": {"zone": "eu-1", "gpu": "a100"}, "w2": {"zone": "us-1"}, "w3": {}}

    def test_labels_in_pools_and_poolctl(self):
        pools = {p["id"]: p for p in self.c.pools()}
        self.assertEqual(set(pools), {"w1", "w2", "w3"})
        for pid, labels in self.LABELS.items():
            self.assertEqual(pools[pid]["labels"], labels, pools[pid])
            self.assertIs(pools[pid]["draining"], False, pools[pid])

        done = self.cluster.poolctl("pools")
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        header = lines[0].split()
        self.assertIn("LABELS", header, done.stdout)
        rows = {line.split()[0]: line for line in lines[1:]}
        self.assertEqual(set(rows), {"w1", "w2", "w3"}, done.stdout)
        start = lines[0].index("LABELS")
        for pid, labels in self.LABELS.items():
            cell = rows[pid][start:].split()[0] if len(rows[pid]) > start else ""
            for k, v in labels.items():
                self.assertIn("%s=%s" % (k, v), cell.split(","), "LABELS of %s: %r" % (pid, rows[pid]))

        done = self.cluster.poolctl("pools", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        doc = json.loads(done.stdout)
        listed = doc["pools"] if isinstance(doc, dict) else doc
        self.assertEqual({p["id"]: p["labels"] for p in listed}, self.LABELS)

    def test_labels_in_offers_stream(self):
        sub = self.cluster.subscriber("offers.")
        bodies = {}

        def all_seen(topic, body):
            bodies.setdefault(body.get("pool"), body)
            return set(bodies) >= set(self.LABELS)
        self.assertIsNotNone(sub.wait_for(all_seen, 5000), "offers of every pool: saw %s" % sorted(bodies))
        for pid, labels in self.LABELS.items():
            self.assertEqual(bodies[pid]["labels"], labels, bodies[pid])
            self.assertIs(bodies[pid]["draining"], False, bodies[pid])
            self.assertEqual([o["id"] for o in bodies[pid]["offers"]], [pid + "/1"])

    def test_bad_label_makes_the_worker_exit_non_zero(self):
        state = tempfile.mkdtemp(prefix="poolbus-it-label-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", state]))
        bad = ["noequals", "=v", "k=", "-k=v", "_k=v", ".k=v", "k=v v", "k=v!", "k=v=w", "k v=x", "k%=v",
               "k" * 64 + "=v", "k=" + "v" * 256]
        for label in bad:
            with self.subTest(label=label[:40]):
                argv = [os.path.join(bin_dir(), "pool-worker"), "--id", "bad", "--resources", SMALL_POOL,
                        "--state-dir", state, "--connect", self.cluster.workers_ep,
                        "--announce", self.cluster.announce_ep, "--heartbeat", "200ms", "--label", label]
                try:
                    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, timeout=5)
                except subprocess.TimeoutExpired:
                    self.fail("pool-worker --label %r did not exit" % label)
                self.assertNotEqual(done.returncode, 0, "pool-worker --label %r was accepted" % label)
                lines = done.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, "want a one-line error for --label %r, got %r" % (label, done.stderr))
        self.assertEqual({p["id"] for p in self.c.pools()}, {"w1", "w2", "w3"})

    def test_edge_labels_are_accepted(self):
        key, value = "k" * 62 + "9", "a-_./:@+Z9" + "v" * 245  # 63 and 255 bytes, every allowed character
        self.cluster.add_worker("w4", SMALL_POOL, ["--label", "%s=%s" % (key, value), "--label", "a.b/c_d-e=x"])
        self.addCleanup(self._remove_worker, "w4")
        self.cluster.start_worker("w4")
        self.assertEqual(self.pool("w4")["labels"], {key: value, "a.b/c_d-e": "x"})
        a = self.c.allocate(U, constraints={key: value})
        self.assertEqual(a["pool"], "w4")

    def _remove_worker(self, worker_id):
        proc = self.cluster.workers.pop(worker_id)
        self.cluster.worker_resources.pop(worker_id, None)
        proc.stop()
        if not self.fresh_per_test():  # the next test of a shared cluster expects w1..w3 only
            self.cluster.wait_pool_gone(worker_id, 5.0)

    def test_constraints_place_only_on_matching_pools(self):
        self.assertEqual(self.c.allocate(U, constraints={"zone": "us-1"})["pool"], "w2")
        self.assertEqual(self.c.allocate(U, constraints={"zone": ["us-1"]})["pool"], "w2")
        self.assertEqual(self.c.allocate(U, constraints={"gpu": "a100"})["pool"], "w1")
        self.assertEqual(self.c.allocate(U, constraints={"gpu": "a100", "zone": "eu-1"})["pool"], "w1")
        # w1 and w2 are full now (each second alloc took the rest); w3 has room but no zone label.
        self.assertPoolError("unavailable", self.c.allocate, U, constraints={"zone": ["eu-1", "us-1"]})
        self.assertEqual(self.c.allocs(pool="w3"), [])
        # An empty map constrains nothing: w3 is the one with room.
        self.assertEqual(self.c.allocate(U, constraints={})["pool"], "w3")
        placed = {a["id"]: a["pool"] for a in self.c.allocs()}
        self.assertEqual(sorted(placed.values()), ["w1", "w1", "w2", "w2", "w3"])

    def test_list_constraint_matches_any_of_its_values(self):
        got = [self.c.allocate(U, constraints={"zone": ["us-1", "eu-1", "mars"]})["pool"] for _ in range(4)]
        self.assertEqual(sorted(got), ["w1", "w1", "w2", "w2"])
        self.assertPoolError("unavailable", self.c.allocate, U, constraints={"zone": ["eu-1", "us-1"]})
        self.assertEqual(self.c.allocs(pool="w3"), [])

    def test_constraint_nobody_matches_is_unavailable(self):
        for constraints in ({"zone": "mars"}, {"zone": ["mars", "venus"]}, {"rack": "r1"},
                            {"gpu": "a100", "zone": "us-1"}):
            with self.subTest(constraints=constraints):
                self.assertPoolError("unavailable", self.c.allocate, U, constraints=constraints)
        t0 = time.monotonic()
        self.assertPoolError("unavailable", self.c.allocate, U, constraints={"zone": "mars"}, wait_ms=300)
        self.assertGreaterEqual(time.monotonic() - t0, 0.28)
        self.assertEqual(self.c.allocs(), [])
        self.assertEqual(self.c.queue(), [])


# ---------------------------------------------------------------------------
# Waiting, priority, the demand stream

class QueueTest(SchedulingTestCase):
    WORKERS = (("w1", SMALL_POOL),)
    REQUEST_TIMEOUT = "1s"

    def test_waiting_allocate_is_placed_as_soon_as_an_alloc_is_freed(self):
        sub = self.subscribe(["demand"])
        # Placed at once (wait_ms or not): nothing on the demand topic.
        held = [self.c.allocate(U, wait_ms=LONG_WAIT_MS), self.c.allocate(U, wait_ms=LONG_WAIT_MS)]
        self.assertEqual(sorted(a["pool"] for a in held), ["w1", "w1"])

        w = self.waiter(U, wait_ms=LONG_WAIT_MS, owner="bob")
        (entry,) = self.wait_queue(1)
        self.assertQueueEntry(entry, LONG_WAIT_MS, owner="bob")
        queued = sub.wait_for(lambda t, b: t == "demand", 5000)
        self.assertIsNotNone(queued, "no demand event for the waiting request")
        queued = queued[1]
        self.assertEqual((queued["v"], queued["event"]), (1, "queued"),
                         "the first demand event must be bob's queued (placed-at-once ones publish nothing)")
        self.assertEqual(queued["request"]["id"], entry["id"])
        self.assertEqual(queued["request"].get("owner"), "bob")
        self.assertIsInstance(queued["ts_ms"], int)
        self.assertNotIn("allocs", queued)

        done = self.cluster.poolctl("queue", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        doc = json.loads(done.stdout)
        self.assertEqual([q["id"] for q in (doc["queue"] if isinstance(doc, dict) else doc)], [entry["id"]])
        self.assertFalse(w.done.is_set(), "the waiting allocate answered while the pool is full: %r"
                         % (w.error or w.result))

        t_free = time.monotonic()
        self.c.free(held[0]["id"])
        alloc = w.placed(5.0)
        latency = w.finished - t_free
        self.assertLess(latency, 2.0, "placed %.2fs after the free (deadline %.1fs)" % (latency, LONG_WAIT_MS / 1e3))
        self.assertLess(w.finished - w.started, LONG_WAIT_MS / 2000.0, "placed well before its deadline")
        self.assertEqual(alloc["pool"], "w1")
        self.assertEqual(alloc["meta"].get("owner"), "bob")
        self.assertEqual(self.c.inspect(alloc["id"])["id"], alloc["id"])

        placed = self.next_event(sub, "demand", "placed", request_id=entry["id"])
        self.assertEqual(placed["allocs"], [alloc["id"]])
        self.assertEqual(self.c.queue(), [])

    def test_waiting_allocate_expires_unavailable_and_publishes_expired(self):
        sub = self.subscribe(["demand"])
        held = self.fill("w1")
        wait_ms = 1300  # longer than the broker's --request-timeout (1 s): that must not cut it short
        t0 = time.monotonic()
        err = self.assertPoolError("unavailable", self.c.allocate, U, wait_ms=wait_ms)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, wait_ms / 1000.0 - 0.05, "answered after %.2fs" % elapsed)
        self.assertLess(elapsed, wait_ms / 1000.0 + 2.0, "answered after %.2fs" % elapsed)
        # The message says how long it waited (the wait asked for, or the one measured).
        said = [float(n) * (1000.0 if unit == "s" else 1.0)
                for n, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s)\b", err.message)]
        self.assertTrue(any(wait_ms - 1 <= v <= wait_ms + 2000 for v in said),
                        "the message must say how long it waited (%d ms): %r" % (wait_ms, err.message))

        queued = self.next_event(sub, "demand", "queued")
        expired = self.next_event(sub, "demand", "expired", request_id=queued["request"]["id"])
        self.assertAlmostEqual(expired["ts_ms"] - queued["ts_ms"], wait_ms, delta=500)
        self.assertFalse(expired.get("allocs"), expired)
        self.assertEqual(self.c.queue(), [])
        self.assertEqual({a["id"] for a in self.c.allocs()}, {a["id"] for a in held})

    def test_priority_then_arrival_order(self):
        held = self.fill("w1")
        low = self.waiter(U, wait_ms=LONG_WAIT_MS, priority=1, owner="low")
        self.wait_queue(1)
        high = self.waiter(U, wait_ms=LONG_WAIT_MS, priority=5, owner="high")
        self.wait_queue(2)
        later = self.waiter(U, wait_ms=LONG_WAIT_MS, priority=1, owner="later")
        queue = self.wait_queue(3)
        self.assertEqual([(q.get("owner"), q["priority"]) for q in queue], [("high", 5), ("low", 1), ("later", 1)])

        self.c.free(held[0]["id"])
        self.assertEqual(high.placed(5.0)["meta"].get("owner"), "high")
        queue = self.wait_queue(2)
        self.assertEqual([q.get("owner") for q in queue], ["low", "later"])
        self.assertFalse(low.done.is_set() or later.done.is_set(), "only one unit was freed")

        self.c.free(held[1]["id"])
        self.assertEqual(low.placed(5.0)["meta"].get("owner"), "low")
        self.assertEqual([q.get("owner") for q in self.wait_queue(1)], ["later"])
        self.assertFalse(later.done.is_set())

        self.c.free(high.result["id"])
        self.assertEqual(later.placed(5.0)["meta"].get("owner"), "later")
        self.assertEqual(self.c.queue(), [])

    def test_a_request_that_does_not_fit_does_not_hold_back_a_smaller_one(self):
        held = self.fill("w1")
        big_min = {"cpu": 2.0, "mem": 2.0 * GiB, "disk": 2.0 * GiB}
        big = self.waiter(big_min, wait_ms=LONG_WAIT_MS, priority=10, owner="big")
        self.wait_queue(1)
        small = self.waiter(U, wait_ms=LONG_WAIT_MS, owner="small")
        self.assertEqual([q.get("owner") for q in self.wait_queue(2)], ["big", "small"])

        self.c.free(held[0]["id"])  # one unit free: big (first in order) does not fit, small does
        self.assertEqual(small.placed(5.0)["meta"].get("owner"), "small")
        self.assertEqual([q.get("owner") for q in self.wait_queue(1)], ["big"])
        self.assertFalse(big.done.is_set())

        self.c.free(held[1]["id"])
        self.c.free(small.result["id"])
        alloc = big.placed(5.0)
        self.assertResources(alloc["resources"], SMALL_RES)  # max = min; taking it would leave cpu 0: whole
        self.assertEqual(self.c.queue(), [])


# ---------------------------------------------------------------------------
# Gangs

class GangTest(SchedulingTestCase):
    WORKERS = (("w1", SMALL_POOL), ("w2", SMALL_POOL))

    def assertNothingHeld(self):
        self.assertEqual(self.c.allocs(), [])
        for pid in ("w1", "w2"):
            self.wait_whole(pid)

        def pools_whole():
            return all(p["allocs"] == 0 and same_resources(p["available"], SMALL_RES) for p in self.c.pools())
        self.wait_until(pools_whole, 5.0, what="pools show every resource available")

    def test_spread_two_on_two_pools(self):
        reply = self.c.call("allocate", min=U, width=0, count=2, spread=True)
        self.assertEqual(len(reply["allocs"]), 2)
        self.assertEqual(reply["alloc"]["id"], reply["allocs"][0]["id"])
        self.assertEqual(sorted(a["pool"] for a in reply["allocs"]), ["w1", "w2"])
        for a in reply["allocs"]:
            self.assertResources(a["resources"], U)
            self.assertEqual(self.c.inspect(a["id"])["pool"], a["pool"])
        # The client returns the list when count is given, also for count 1.
        one = self.c.allocate(U, count=1)
        self.assertIsInstance(one, list)
        self.assertEqual(len(one), 1)

    def test_spread_three_on_two_pools_is_unavailable_and_holds_nothing(self):
        self.assertPoolError("unavailable", self.c.allocate, U, count=3, spread=True)
        self.assertNothingHeld()
        # Still all-or-none when it waited: the wait ends unavailable, nothing held.
        self.assertPoolError("unavailable", self.c.allocate, U, count=3, spread=True, wait_ms=300)
        self.assertNothingHeld()
        self.assertEqual(self.c.queue(), [])

    def test_count_over_what_fits_without_spread_is_all_or_none(self):
        self.assertPoolError("unavailable", self.c.allocate, U, count=5)
        self.assertNothingHeld()
        gang = self.c.allocate(U, count=4)
        self.assertEqual(sorted(a["pool"] for a in gang), ["w1", "w1", "w2", "w2"])
        self.assertEqual(len({a["id"] for a in gang}), 4)
        for a in gang:
            self.c.free(a["id"])
        self.assertNothingHeld()

    def test_waiting_gang_holds_nothing_until_it_is_placed(self):
        whole = self.c.accept("w1/1", SMALL_RES)
        w = self.waiter(U, count=2, spread=True, wait_ms=LONG_WAIT_MS)
        (entry,) = self.wait_queue(1)
        self.assertEqual(entry["count"], 2)
        # w2 could take one of the gang now: it must not be held while the gang waits.
        self.assertEqual(self.c.allocs(pool="w2"), [])
        self.wait_whole("w2")
        self.c.free(whole["id"])
        gang = w.placed(5.0)
        self.assertEqual(sorted(a["pool"] for a in gang), ["w1", "w2"])


class FrozenGangTest(SchedulingTestCase):
    """One worker of a spread gang frozen (SIGSTOP) while the gang is placed. w1 is
    the best fit (smallest), so it is taken first; spread over exactly two pools
    makes the gang need the frozen w2, whose accept times out (--request-timeout 1s;
    the worker timeout is long enough that w2 stays listed while frozen)."""

    WORKERS = (("w1", SMALL_POOL), ("w2", "cpu=8,mem=16GiB,disk=100GiB"))
    WORKER_TIMEOUT = "5s"
    REQUEST_TIMEOUT = "1s"
    W2 = {"cpu": 8.0, "mem": 16.0 * GiB, "disk": 100.0 * GiB}

    def place_gang_with_w2_frozen(self):
        probe = self.c.allocate(U)
        self.assertEqual(probe["pool"], "w1", "w1 must be the best fit, so the gang takes it first")
        self.c.free(probe["id"])
        self.wait_whole("w1")
        sub = self.subscribe(["offers.w2"])
        frozen = self.cluster.workers["w2"]
        self.addCleanup(frozen.send_signal, signal.SIGCONT)
        frozen.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        self.assertPoolError(("timeout", "unavailable"), self.c.allocate, U, count=2, spread=True)
        self.assertLess(time.monotonic() - t0, 4.0)
        # "any taken are freed again before an error": w1's part is gone by the time of the reply.
        self.assertEqual(self.c.allocs(pool="w1"), [], "w1 still holds part of the failed gang")
        frozen.send_signal(signal.SIGCONT)
        # w2 has caught up with everything sent before once it answers a forwarded request.
        def w2_answers():
            try:
                self.c.keepalive("w2/no-such-alloc", 1000)
            except PoolError as e:
                return e.kind == "not_exist"
            return False
        self.wait_until(w2_answers, 5.0, what="w2 answering again after SIGCONT")
        caught_up = now_ms()
        got = sub.wait_for(lambda t, b: t == "offers.w2" and b.get("ts_ms", 0) > caught_up + 50, 5000)
        self.assertIsNotNone(got, "no offers.w2 announcement after w2 caught up")

    def test_no_alloc_of_the_gang_is_left_on_the_other_pool(self):
        self.place_gang_with_w2_frozen()

        def w1_clean():
            p = self.pool("w1")
            return self.c.allocs(pool="w1") == [] and p["allocs"] == 0 and same_resources(p["available"], SMALL_RES)
        self.wait_until(w1_clean, 3.0, what="no alloc of the failed gang left on w1")
        self.wait_whole("w1")
        # And the pools are usable again.
        gang = self.c.allocate(U, count=2, spread=True)
        self.assertEqual(sorted(a["pool"] for a in gang), ["w1", "w2"])

    def test_no_alloc_of_the_gang_is_left_on_the_frozen_pool(self):
        # "all placed or none": the accept w2 executes late (after SIGCONT) belongs to the
        # failed gang too; the broker must not leave it held (2 min lease) on w2.
        self.place_gang_with_w2_frozen()

        def w2_clean():
            p = self.pool("w2")
            return self.c.allocs(pool="w2") == [] and p["allocs"] == 0
        self.wait_until(w2_clean, 3.0, what="no alloc of the failed gang left on w2 (it ran the accept late)")
        self.wait_whole("w2", self.W2)


# ---------------------------------------------------------------------------
# Drain

class DrainTest(SchedulingTestCase):
    WORKERS = (("w1", SMALL_POOL, ["--label", "zone=a"]), ("w2", SMALL_POOL, ["--label", "zone=b"]))

    def test_drain_keeps_allocs_but_extends_nothing(self):
        x = self.c.accept("w1/1", U)
        sub = self.subscribe(["pools.w1"])
        entry = self.drain("w1")
        self.assertEqual(entry["id"], "w1")
        self.assertIs(entry["draining"], True)
        self.assertEqual(entry["labels"], {"zone": "a"})
        self.assertResources(entry["resources"], SMALL_RES)
        self.next_event(sub, "pools.w1", "draining")
        body = sub.wait_for(lambda t, b: t == "offers.w1" and b.get("draining") is True, 3000)
        self.assertIsNotNone(body, "no offers.w1 body with draining true")
        self.assertEqual(body[1]["offers"], [])

        self.wait_until(lambda: self.offer_pools() == {"w2"}, 3.0, what="w1 gone from offers")
        self.assertIs(self.pool("w1")["draining"], True)
        self.assertIs(self.pool("w2")["draining"], False)
        self.assertPoolError("unavailable", self.c.offer, "w1/1")
        self.assertPoolError("unavailable", self.c.accept, "w1/1", U)
        self.assertPoolError("unavailable", self.c.allocate, U, constraints={"zone": "a"})
        # allocate skips it: both units go to w2, then nothing is left although w1 has room.
        self.assertEqual([self.c.allocate(U)["pool"] for _ in range(2)], ["w2", "w2"])
        self.assertPoolError("unavailable", self.c.allocate, U)
        self.assertEqual([a["id"] for a in self.c.allocs(pool="w1")], [x["id"]])

        # Its alloc works as before.
        self.assertEqual(self.c.keepalive(x["id"], 20000), 20000)
        inspected = self.c.inspect(x["id"])
        self.assertEqual(inspected["expires_ms"], inspected["last_keepalive_ms"] + 20000)
        self.c.free(x["id"])
        self.assertPoolError("not_exist", self.c.inspect, x["id"])
        self.wait_until(lambda: same_resources(self.pool("w1")["available"], SMALL_RES), 3.0,
                        what="w1's resources back after the free")
        self.assertNotIn("w1", self.offer_pools(), "a free must not bring a draining pool's offer back")

        # poolctl drain --undo brings it back.
        done = self.cluster.poolctl("drain", "w1", "--undo", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.next_event(sub, "pools.w1", "undrained")
        self.wait_until(lambda: "w1" in self.offer_pools(), 3.0, what="w1 offer back")
        self.assertIs(self.pool("w1")["draining"], False)
        self.assertEqual(self.c.accept("w1/1", U)["pool"], "w1")

    def test_undrain_places_a_waiting_allocate(self):
        self.drain("w1")
        self.wait_until(lambda: "w1" not in self.offer_pools(), 3.0)
        self.fill("w2")
        w = self.waiter(U, wait_ms=LONG_WAIT_MS)
        self.wait_queue(1)
        self.assertFalse(w.done.is_set())
        t0 = time.monotonic()
        self.assertIs(self.c.drain("w1", drain=False)["draining"], False)
        alloc = w.placed(5.0)
        self.assertLess(w.finished - t0, 2.0)
        self.assertEqual(alloc["pool"], "w1")

    def test_poolctl_drain(self):
        if not self.fresh_per_test():
            self.addCleanup(self._undrain, "w2")
        done = self.cluster.poolctl("drain", "w2", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        doc = json.loads(done.stdout)
        entry = doc.get("pool", doc) if isinstance(doc, dict) else doc
        self.assertEqual((entry["id"], entry["draining"]), ("w2", True))
        self.assertIs(self.pool("w2")["draining"], True)
        done = self.cluster.poolctl("drain", "nosuchpool")
        self.assertEqual(done.returncode, 1, done)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)

    def test_drain_unknown_pool_is_not_exist(self):
        before = {p["id"]: p["draining"] for p in self.c.pools()}
        self.assertPoolError("not_exist", self.c.drain, "nosuchpool")
        self.assertPoolError("not_exist", self.c.drain, "nosuchpool", False)
        self.assertEqual({p["id"]: p["draining"] for p in self.c.pools()}, before)

    def assertStaysDrained(self, sub, n_bodies=3):
        """The next n offers.w1 bodies all say draining with no offer, and offers() lacks w1."""
        for _ in range(n_bodies):
            got = sub.wait_for(lambda t, b: t == "offers.w1", 3000)
            self.assertIsNotNone(got, "no offers.w1 heartbeat")
            self.assertIs(got[1].get("draining"), True, got[1])
            self.assertEqual(got[1]["offers"], [], got[1])
            self.assertNotIn("w1", self.offer_pools())
            self.assertIs(self.pool("w1")["draining"], True)

    def test_drain_survives_a_worker_restart(self):
        x = self.c.accept("w1/1", U)
        self.drain("w1")
        sub = self.subscribe(["pools.w1", "offers.w1"], ready_pool="w2")
        self.cluster.kill_worker("w1", signal.SIGTERM)
        self.cluster.wait_pool_gone("w1", 5.0)
        self.cluster.start_worker("w1")  # same --state-dir
        self.next_event(sub, "pools.w1", "joined")
        self.assertIs(self.pool("w1")["draining"], True, "w1 listed again without its drain")
        self.wait_until(lambda: self.c.keepalive(x["id"], 20000) == 20000, 5.0, what="restored alloc keepalive")
        self.assertStaysDrained(sub)
        self.assertPoolError("unavailable", self.c.accept, "w1/1", U)
        self.assertEqual(self.c.allocate(U)["pool"], "w2")
        self.c.free(x["id"])
        self.c.drain("w1", False)
        self.wait_until(lambda: "w1" in self.offer_pools(), 3.0, what="w1 offer back after undrain")

    def test_drain_survives_a_broker_restart(self):
        self.drain("w1")
        self.wait_until(lambda: "w1" not in self.offer_pools(), 3.0)
        self.cluster.kill_broker(signal.SIGTERM)
        self.cluster.start_broker()
        self.cluster.wait_pools({"w1", "w2"}, 10.0)
        self.assertIs(self.pool("w1")["draining"], True, "w1 listed after the broker restart without its drain")
        self.assertIs(self.pool("w2")["draining"], False)
        sub = self.subscribe([])
        self.assertStaysDrained(sub)
        self.assertPoolError("unavailable", self.c.accept, "w1/1", U)
        self.c.drain("w1", False)
        self.wait_until(lambda: "w1" in self.offer_pools(), 3.0, what="w1 offer back after undrain")


# ---------------------------------------------------------------------------
# Quotas

class QuotaTest(SchedulingTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=20GiB"), ("w2", "cpu=4,mem=8GiB,disk=20GiB"))
    QUOTA = "# owners' quotas\nalice cpu=2   # two cores\n\n"

    @classmethod
    def make_cluster(cls):
        cluster = Cluster(cls.WORKERS, worker_timeout=cls.WORKER_TIMEOUT, heartbeat=cls.HEARTBEAT,
                          request_timeout=cls.REQUEST_TIMEOUT, start=False)
        path = os.path.join(cluster.root, "quota")
        with open(path, "w") as f:
            f.write(cls.QUOTA)
        cluster.broker.argv += ["--quota", path]
        try:
            cluster.start()
        except BaseException:
            cluster.cleanup()
            raise
        return cluster

    def alice_allocs(self):
        return [a for a in self.c.allocs() if a["meta"].get("owner") == "alice"]

    def alice_quota(self):
        (entry,) = [q for q in self.c.quotas() if q["owner"] == "alice"]
        return entry

    def test_quota_limits_accept_and_allocate(self):
        q = self.alice_quota()
        self.assertResources(q["quota"], {"cpu": 2.0})
        self.assertEqual(float(q["used"].get("cpu", 0.0)), 0.0)

        a = self.c.accept("w1/1", U, owner="alice")
        b = self.c.allocate(U, owner="alice")
        self.assertEqual(float(self.alice_quota()["used"]["cpu"]), 2.0)

        err = self.assertPoolError("precondition", self.c.accept, "w2/1", U, owner="alice")
        self.assertIn("quota", err.message)
        self.assertPoolError("precondition", self.c.allocate, U, owner="alice", count=3)
        self.assertPoolError("precondition", self.c.allocate, {"cpu": 3.0}, owner="alice")
        # Would fit the quota alone; exceeds it only because of alice's other allocs.
        self.assertPoolError("unavailable", self.c.allocate, U, owner="alice")
        self.assertPoolError("unavailable", self.c.allocate, U, owner="alice", count=2)
        self.assertEqual({x["id"] for x in self.alice_allocs()}, {a["id"], b["id"]})
        # Owners without a quota line are not limited.
        bob = self.c.allocate({"cpu": 3.0, "mem": GiB, "disk": GiB}, owner="bob")
        nobody = self.c.allocate(U)
        self.assertEqual(len(self.c.allocs()), 4)

        w = self.waiter(U, owner="alice", wait_ms=LONG_WAIT_MS)
        (entry,) = self.wait_queue(1)
        self.assertEqual(entry.get("owner"), "alice")
        self.assertFalse(w.done.is_set())
        t0 = time.monotonic()
        self.c.free(a["id"])
        c = w.placed(5.0)
        self.assertLess(w.finished - t0, 2.0)
        self.assertEqual(c["meta"].get("owner"), "alice")
        self.assertEqual({x["id"] for x in self.alice_allocs()}, {b["id"], c["id"]})
        self.assertEqual(float(self.alice_quota()["used"]["cpu"]), 2.0)
        for x in (b, c, bob, nobody):
            self.c.free(x["id"])
        self.wait_until(lambda: float(self.alice_quota()["used"].get("cpu", 0.0)) == 0.0, 3.0,
                        what="alice's used back to 0")

    def test_poolctl_quotas(self):
        self.c.accept("w1/1", U, owner="alice")
        done = self.cluster.poolctl("quotas", "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        doc = json.loads(done.stdout)
        quotas = doc["quotas"] if isinstance(doc, dict) else doc
        (alice,) = [q for q in quotas if q["owner"] == "alice"]
        self.assertEqual((alice["quota"]["cpu"], alice["used"]["cpu"]), (2, 1))

    def test_racing_clients_never_exceed_the_quota(self):
        n = 50
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        for round_ in range(2):
            clients = [poolbus.Client(self.cluster.api, timeout_ms=10000, context=ctx) for _ in range(n)]
            barrier = threading.Barrier(n)
            outcomes = [None] * n

            def race(i):
                c = clients[i]
                try:
                    c.ping()  # connected before the start line
                    barrier.wait(10)
                    kind = i % 5
                    if kind == 0:
                        got = [c.accept("w1/1", U, owner="alice")]
                    elif kind == 1:
                        got = [c.accept("w2/1", U, owner="alice")]
                    elif kind == 2:
                        got = c.allocate(U, owner="alice", count=2)
                    elif kind == 3:
                        got = c.allocate(U, owner="alice", count=2, spread=True)
                    else:
                        got = [c.allocate(U, owner="alice")]
                    outcomes[i] = ("ok", [a["id"] for a in got])
                except PoolError as e:
                    outcomes[i] = ("error", e.kind, e.message)
                except Exception as e:  # noqa: BLE001 (reported below)
                    outcomes[i] = ("exception", repr(e))
            threads = [threading.Thread(target=race, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            for c in clients:
                c.close()
            self.assertFalse(any(t.is_alive() for t in threads), "racing clients still running")
            unexpected = [o for o in outcomes if o is None or o[0] == "exception" or
                          (o[0] == "error" and o[1] not in ("precondition", "unavailable", "not_exist"))]
            self.assertEqual(unexpected, [], "round %d: unexpected outcomes" % round_)
            granted = [uri for o in outcomes if o[0] == "ok" for uri in o[1]]

            live = self.alice_allocs()
            self.assertEqual({a["id"] for a in live}, set(granted), "round %d" % round_)
            used_cpu = sum(a["resources"].get("cpu", 0.0) for a in live)
            self.assertLessEqual(used_cpu, 2.0 + 1e-9, "round %d: alice holds %r cpu (quota 2): %r"
                                 % (round_, used_cpu, [a["id"] for a in live]))
            self.assertGreaterEqual(len(live), 1, "round %d: nobody got anything: %r" % (round_, outcomes))
            self.assertAlmostEqual(float(self.alice_quota()["used"].get("cpu", 0.0)), used_cpu)
            # The workers agree: nothing is held that the broker does not list.
            def workers_agree():
                pools = self.c.pools()
                return (abs(sum(p["available"]["cpu"] for p in pools) - (8.0 - used_cpu)) < 1e-6 and
                        sum(p["allocs"] for p in pools) == len(live))
            self.wait_until(workers_agree, 5.0, what="pools account for exactly alice's listed allocs")
            for a in live:
                self.c.free(a["id"])
            self.wait_until(lambda: float(self.alice_quota()["used"].get("cpu", 0.0)) == 0.0, 3.0)


@require_binaries
class QuotaFileTest(unittest.TestCase):
    def run_broker(self, content):
        d = tempfile.mkdtemp(prefix="poolbus-it-quota-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        path = os.path.join(d, "quota")
        if content is not None:
            with open(path, "w") as f:
                f.write(content)
        api, stream, workers, announce = free_ports(4)
        argv = [os.path.join(bin_dir(), "pool-broker"), "--quota", path,
                "--api", "tcp://127.0.0.1:%d" % api, "--stream", "tcp://127.0.0.1:%d" % stream,
                "--workers", "tcp://127.0.0.1:%d" % workers, "--announce", "tcp://127.0.0.1:%d" % announce]
        try:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, timeout=5)
        except subprocess.TimeoutExpired:
            self.fail("pool-broker --quota with %r did not exit" % (content,))

    def test_malformed_quota_file_exits_1_naming_the_line(self):
        cases = [
            ("alice cpu=2\nbob\n", 2),
            ("# comment\n\nalice cpu=x\n", 3),
            ("alice cpu=-1\n", 1),
            ("alice cpu=2\nalice cpu=3\n", 2),
            ("alice cpu=2\n* cpu=1\n# c\ncarol cpu=1 mem=2\n", 4),
            ("alice cpu=2,gpu\n", 1),
        ]
        for content, line in cases:
            with self.subTest(content=content):
                done = self.run_broker(content)
                self.assertEqual(done.returncode, 1, "rc for %r: stderr=%r" % (content, done.stderr))
                self.assertIn("quota file line %d" % line, done.stderr)
                self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)

    def test_missing_quota_file_exits_non_zero(self):
        done = self.run_broker(None)
        self.assertNotEqual(done.returncode, 0)
        self.assertTrue(done.stderr.strip())


# ---------------------------------------------------------------------------
# Bad inputs

class BadInputTest(SchedulingTestCase):
    WORKERS = (("w1", SMALL_POOL, ["--label", "zone=a"]), ("w2", SMALL_POOL))

    @staticmethod
    def stable(pools):
        return sorted((p["id"], tuple(sorted(p["available"].items())), p["allocs"], p["draining"],
                       tuple(sorted(p["labels"].items()))) for p in pools)

    def test_bad_inputs_are_invalid_and_change_nothing(self):
        held = self.fill("w1") + self.fill("w2")
        w = self.waiter(U, wait_ms=LONG_WAIT_MS, owner="waiting")
        self.wait_queue(1)
        before = (self.stable(self.c.pools()), sorted(a["id"] for a in self.c.allocs()), self.c.queue())
        # Each would wait (and so show up in the queue) if the broker took it.
        base = {"min": U, "width": 0, "wait_ms": 5000, "owner": "mallory"}
        bad = [
            {"wait_ms": -1}, {"wait_ms": -5000}, {"wait_ms": 86400001}, {"wait_ms": "100"}, {"wait_ms": 1.5},
            {"count": 0}, {"count": -2}, {"count": "2"}, {"count": 1.5},
            {"constraints": ["zone"]}, {"constraints": "zone=a"}, {"constraints": 5},
            {"constraints": {"zone": [1]}}, {"constraints": {"zone": ["a", 2]}}, {"constraints": {"zone": []}},
            {"constraints": {"zone": 5}}, {"constraints": {"zone": None}}, {"constraints": {"zone": {"a": "b"}}},
            {"priority": "high"}, {"priority": 1.5}, {"spread": "yes"},
        ]
        for args in bad:
            with self.subTest(args=args):
                self.assertPoolError("invalid", self.c.call, "allocate", **dict(base, **args))
        for args in ({}, {"pool": 5}, {"pool": ""}, {"pool": "w1", "drain": "yes"}, {"pool": "w1/1"}):
            with self.subTest(drain=args):
                self.assertPoolError("invalid", self.c.call, "drain", **args)
        after = (self.stable(self.c.pools()), sorted(a["id"] for a in self.c.allocs()), self.c.queue())
        self.assertEqual(after, before)
        self.assertFalse(w.done.is_set(), "the waiting request answered: %r" % (w.error or w.result))
        self.c.free(held[0]["id"])
        self.assertEqual(w.placed(5.0)["meta"].get("owner"), "waiting")


if __name__ == "__main__":
    unittest.main()

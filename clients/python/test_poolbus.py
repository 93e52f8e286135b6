"""Unit tests of poolbus.py against a tiny in-process fake broker (ROUTER + PUB).

The fake speaks just enough of protocol.md to exercise the client: envelopes,
id pairing, error kinds, late replies, and scripted keepalive failures."""

import os
import socket
import sys
import threading
import time
import unittest

import msgpack
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import poolbus  # noqa: E402
from poolbus import Keepalive, PoolError, PoolTimeout  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FakeBroker:
    """A ROUTER that answers a subset of the API from an in-memory table.

    delay_ms[op]: reply that op late; keepalive_errors: kinds to answer the next
    keepalives with (one per call), then succeed; calls: every request seen."""

    def __init__(self):
        self.ctx = zmq.Context()
        self.api = "tcp://127.0.0.1:%d" % free_port()
        self.stream = "tcp://127.0.0.1:%d" % free_port()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(self.api)
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.bind(self.stream)
        self.delay_ms = {}
        self.keepalive_errors = []
        self.calls = []
        self.allocs = {}
        self.next_alloc = 1
        self.available = {"cpu": 4.0, "mem": 8.0 * (1 << 30)}
        self.queue = []
        self.quotas = []
        self.draining = False
        self._late = []  # (due, frames)
        self._stop = threading.Event()
        self._publish = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def publish(self, topic, body):
        with self._lock:
            self._publish.append([topic.encode(), msgpack.packb(body)])

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.router.close(0)
        self.pub.close(0)
        self.ctx.term()

    def ops_called(self, op):
        return sum(1 for c in self.calls if c.get("op") == op)

    def _run(self):
        while not self._stop.is_set():
            if self.router.poll(10, zmq.POLLIN):
                frames = self.router.recv_multipart()
                envelope, body = frames[:-1], frames[-1]
                request = msgpack.unpackb(body, raw=False)
                self.calls.append(request)
                reply = self._answer(request)
                reply.update({"v": 1, "id": request.get("id")})
                out = envelope + [msgpack.packb(reply, use_bin_type=True)]
                delay = self.delay_ms.get(request.get("op"), 0)
                if delay:
                    self._late.append((time.monotonic() + delay / 1000.0, out))
                else:
                    self.router.send_multipart(out)
            now = time.monotonic()
            for due, out in [x for x in self._late if x[0] <= now]:
                self._late.remove((due, out))
                self.router.send_multipart(out)
            with self._lock:
                pending, self._publish = self._publish, []
            for frames in pending:
                self.pub.send_multipart(frames)

    def _answer(self, r):
        def err(kind, message=""):
            return {"ok": False, "error": {"kind": kind, "message": message}}
        op = r.get("op")
        if op == "ping":
            return {"ok": True}
        if op == "pools":
            return {"ok": True, "pools": [{"id": "p", "resources": {"cpu": 4.0}, "available": self.available,
                                           "allocs": len(self.allocs), "last_seen_ms": 1}]}
        if op == "offers":
            return {"ok": True, "offers": [{"id": "p/1", "pool": "p", "available": self.available}]}
        if op == "offer":
            if r.get("offer") != "p/1":
                return err("not_exist", "no offer")
            return {"ok": True, "offer": {"id": "p/1", "pool": "p", "available": self.available}}
        if op == "accept":
            want = r["meta"]["want"]
            if not want:
                return err("precondition", "empty want")
            if any(v > self.available.get(k, 0.0) for k, v in want.items()):
                return err("not_exist", "offer too small")
            alloc_id = "p/a%d" % self.next_alloc
            self.next_alloc += 1
            self.allocs[alloc_id] = {"id": alloc_id, "pool": "p", "resources": want, "meta": r["meta"],
                                     "created_ms": 1000, "last_keepalive_ms": 0, "expires_ms": 121000}
            return {"ok": True, "alloc": self.allocs[alloc_id]}
        if op == "allocate":
            if r.get("width") != 0:
                return err("unavailable", "fake allocates width 0 only")
            if "count" not in r:
                return self._answer({"op": "accept", "offer": "p/1", "meta": {"want": r["min"]}})
            if not isinstance(r["count"], int) or r["count"] < 1:
                return err("invalid", "count must be >= 1")
            allocs = []
            for _ in range(r["count"]):
                one = self._answer({"op": "accept", "offer": "p/1", "meta": {"want": r["min"]}})
                if not one["ok"]:
                    for a in allocs:  # all or none
                        del self.allocs[a["id"]]
                    return err("unavailable", "gang does not fit")
                allocs.append(one["alloc"])
            return {"ok": True, "alloc": allocs[0], "allocs": allocs}
        if op == "queue":
            return {"ok": True, "queue": self.queue}
        if op == "quotas":
            return {"ok": True, "quotas": self.quotas}
        if op == "drain":
            if r.get("pool") != "p":
                return err("not_exist", "no pool")
            self.draining = r.get("drain", True)
            return {"ok": True, "pool": {"id": "p", "resources": {"cpu": 4.0}, "available": self.available,
                                         "allocs": len(self.allocs), "last_seen_ms": 1, "labels": {},
                                         "draining": self.draining}}
        if op == "allocs":
            return {"ok": True, "allocs": [a for a in self.allocs.values()
                                           if r.get("pool") in (None, a["pool"])]}
        if op in ("inspect", "keepalive", "free"):
            alloc = self.allocs.get(r.get("alloc"))
            if op == "keepalive" and self.keepalive_errors:
                return err(self.keepalive_errors.pop(0), "scripted")
            if alloc is None:
                return err("not_exist", "no alloc")
            if op == "inspect":
                return {"ok": True, "alloc": alloc}
            if op == "free":
                del self.allocs[r["alloc"]]
                return {"ok": True}
            granted = min(int(r["interval_ms"]), 300000)
            alloc["last_keepalive_ms"] = 5000
            alloc["expires_ms"] = 5000 + granted
            return {"ok": True, "interval_ms": granted}
        return err("invalid", "unknown op")


def wait_until(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in %.1fs" % timeout)
        time.sleep(0.01)


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.broker = FakeBroker()
        self.addCleanup(self.broker.close)
        self.client = poolbus.Client(self.broker.api, timeout_ms=2000)
        self.addCleanup(self.client.close)

    def test_round_trip(self):
        self.assertTrue(self.client.ping())
        self.assertEqual(self.client.pools()[0]["id"], "p")
        self.assertEqual(self.client.offers()[0]["id"], "p/1")
        self.assertEqual(self.client.offer("p/1")["pool"], "p")
        a = self.client.accept("p/1", "cpu=1,mem=1GiB", owner="me", labels={"a": "b"})
        self.assertEqual(a["resources"], {"cpu": 1.0, "mem": float(1 << 30)})
        request = self.broker.calls[-1]
        self.assertEqual(request["v"], 1)
        self.assertEqual(request["meta"], {"want": {"cpu": 1.0, "mem": float(1 << 30)}, "owner": "me",
                                           "labels": {"a": "b"}})
        self.assertEqual(self.client.inspect(a["id"])["id"], a["id"])
        self.assertEqual(self.client.keepalive(a["id"], 10_000_000), 300000)
        self.assertEqual([x["id"] for x in self.client.allocs(pool="p")], [a["id"]])
        self.assertEqual(self.broker.calls[-1]["pool"], "p")
        self.client.allocs()
        self.assertNotIn("pool", self.broker.calls[-1])
        self.client.free(a["id"])
        self.assertEqual(self.client.allocs(), [])
        b = self.client.allocate({"cpu": 1})
        self.assertEqual(self.broker.calls[-1]["min"], {"cpu": 1.0})
        self.assertEqual(self.broker.calls[-1]["width"], 0)
        self.assertTrue(b["id"].startswith("p/"))

    def test_error_kinds(self):
        with self.assertRaises(PoolError) as cm:
            self.client.accept("p/1", {})
        self.assertEqual(cm.exception.kind, "precondition")
        with self.assertRaises(PoolError) as cm:
            self.client.inspect("p/nope")
        self.assertEqual((cm.exception.kind, cm.exception.message), ("not_exist", "no alloc"))
        with self.assertRaises(PoolError) as cm:
            self.client.allocate({"cpu": 1}, width=2)
        self.assertEqual(cm.exception.kind, "unavailable")

    def test_timeout_then_late_reply_is_dropped(self):
        self.broker.delay_ms["pools"] = 300
        t0 = time.monotonic()
        with self.assertRaises(PoolTimeout) as cm:
            self.client.call("pools", timeout_ms=100)
        self.assertLess(time.monotonic() - t0, 0.3)
        self.assertEqual(cm.exception.kind, "timeout")
        self.assertIsInstance(cm.exception, TimeoutError)
        self.assertIsInstance(cm.exception, PoolError)
        self.broker.delay_ms.clear()
        time.sleep(0.4)  # let the late pools reply arrive: it must not pass for ping's
        reply = self.client.call("ping")
        self.assertNotIn("pools", reply)

    def test_request_many_pairs_by_id(self):
        self.broker.delay_ms["offers"] = 150
        replies = self.client.request_many([{"op": "offers"}, {"op": "ping"}, {"op": "pools"}])
        self.assertIn("offers", replies[0])
        self.assertEqual(set(replies[1]) - {"v", "id", "ok"}, set())
        self.assertIn("pools", replies[2])
        ids = [c["id"] for c in self.broker.calls[-3:]]
        self.assertEqual(len(set(ids)), 3)

    def test_request_many_missing_reply_is_none(self):
        self.broker.delay_ms["offers"] = 1000
        replies = self.client.request_many([{"op": "offers"}, {"op": "ping"}], timeout_ms=200)
        self.assertIsNone(replies[0])
        self.assertTrue(replies[1]["ok"])


class FailoverTest(unittest.TestCase):
    """Several brokers: a request no broker answers in time goes to the next."""

    def setUp(self):
        self.silent, self.live = FakeBroker(), FakeBroker()
        for b in (self.silent, self.live):
            self.addCleanup(b.close)
        for op in ("ping", "pools", "offers"):
            self.silent.delay_ms[op] = 5000  # answers long after anyone waits

    def test_fails_over_and_keeps_the_one_that_answered(self):
        with poolbus.Client(self.silent.api + "," + self.live.api, timeout_ms=300) as c:
            self.assertTrue(c.ping())
            self.assertEqual((self.silent.ops_called("ping"), self.live.ops_called("ping")), (1, 1))
            self.assertEqual(c.api, self.live.api)
            t1 = time.monotonic()
            self.assertEqual(c.pools()[0]["id"], "p")
            self.assertLess(time.monotonic() - t1, 0.3)  # straight to the live one
            self.assertEqual(len(self.silent.calls), 1)
            replies = c.request_many([{"op": "offers"}, {"op": "ping"}])
            self.assertTrue(all(r and r["ok"] for r in replies))

    def test_an_error_reply_is_an_answer_and_none_answering_is_a_timeout(self):
        with poolbus.Client([self.live.api, self.silent.api], timeout_ms=200) as c:
            with self.assertRaises(PoolError) as cm:
                c.inspect("p/nope")
            self.assertEqual(cm.exception.kind, "not_exist")
            self.assertEqual(c.api, self.live.api)
        self.live.delay_ms["ping"] = 5000
        with poolbus.Client([self.live.api, self.silent.api], timeout_ms=200) as c:
            with self.assertRaises(PoolTimeout):
                c.ping()
        # Each had its turn, once.
        self.assertEqual([r["op"] for r in self.live.calls].count("ping"), 1)
        self.assertEqual([r["op"] for r in self.silent.calls].count("ping"), 1)
        with self.assertRaises(ValueError):
            poolbus.Client("")


class SchedulingClientTest(unittest.TestCase):
    """The second-wave allocate arguments and the queue / quotas / drain ops."""

    FIRST_WAVE_KEYS = {"v", "op", "id", "min", "width"}

    def setUp(self):
        self.broker = FakeBroker()
        self.addCleanup(self.broker.close)
        self.client = poolbus.Client(self.broker.api, timeout_ms=2000)
        self.addCleanup(self.client.close)

    def last(self, op):
        return [c for c in self.broker.calls if c.get("op") == op][-1]

    def test_defaults_send_exactly_the_first_wave_request(self):
        a = self.client.allocate({"cpu": 1})
        self.assertIsInstance(a, dict)
        self.assertEqual(set(self.last("allocate")), self.FIRST_WAVE_KEYS)
        # Explicit defaults are not sent either.
        self.client.allocate({"cpu": 1}, 0, None, None, wait_ms=0, priority=0, count=None, spread=False,
                             constraints=None)
        self.assertEqual(set(self.last("allocate")), self.FIRST_WAVE_KEYS)
        # The old positional signature still works.
        self.client.allocate("cpu=1", 0, "owner-x", {"k": "v"})
        request = self.last("allocate")
        self.assertEqual((request["owner"], request["labels"]), ("owner-x", {"k": "v"}))
        self.assertEqual(set(request), self.FIRST_WAVE_KEYS | {"owner", "labels"})

    def test_new_arguments_are_sent(self):
        self.client.allocate({"cpu": 1}, wait_ms=1500, priority=-3, spread=True,
                             constraints={"zone": ("eu-1", "eu-2"), "arch": "arm64"}, owner="alice")
        request = self.last("allocate")
        self.assertEqual(request["wait_ms"], 1500)
        self.assertEqual(request["priority"], -3)
        self.assertIs(request["spread"], True)
        self.assertEqual(request["constraints"], {"zone": ["eu-1", "eu-2"], "arch": "arm64"})
        self.assertEqual(request["owner"], "alice")
        self.assertNotIn("count", request)
        # A whole-number float becomes an int on the wire.
        self.client.allocate({"cpu": 1}, wait_ms=250.0, priority=2.0)
        request = self.last("allocate")
        self.assertEqual((request["wait_ms"], request["priority"]), (250, 2))
        self.assertIsInstance(request["wait_ms"], int)

    def test_count_returns_the_list_of_allocs(self):
        gang = self.client.allocate({"cpu": 1}, count=3)
        self.assertIsInstance(gang, list)
        self.assertEqual(len(gang), 3)
        self.assertEqual(len({a["id"] for a in gang}), 3)
        self.assertEqual(self.last("allocate")["count"], 3)
        one = self.client.allocate({"cpu": 1}, count=1)  # count 1 is a list too
        self.assertIsInstance(one, list)
        self.assertEqual(len(one), 1)
        self.assertEqual(self.last("allocate")["count"], 1)
        self.assertEqual(len(self.client.allocs()), 4)
        with self.assertRaises(PoolError) as cm:  # a gang that is refused raises, returns nothing
            self.client.allocate({"cpu": 5}, count=2)
        self.assertEqual(cm.exception.kind, "unavailable")
        self.assertEqual(len(self.client.allocs()), 4)

    def test_bad_values_are_passed_on_for_the_broker_to_refuse(self):
        for kwargs in ({"count": 0}, {"wait_ms": -5}, {"constraints": ["zone"]}, {"constraints": {"z": []}},
                       {"constraints": {"z": [1]}}):
            with self.subTest(kwargs=kwargs):
                try:
                    self.client.allocate({"cpu": 1}, **kwargs)
                except PoolError:
                    pass  # the fake refuses only count 0
                request = self.last("allocate")
                for key, value in kwargs.items():
                    self.assertEqual(request[key], value)
        with self.assertRaises(PoolError) as cm:
            self.client.allocate({"cpu": 1}, count=0)
        self.assertEqual(cm.exception.kind, "invalid")

    def test_wait_ms_extends_the_call_deadline(self):
        self.broker.delay_ms["allocate"] = 500
        with poolbus.Client(self.broker.api, timeout_ms=200) as short:
            t0 = time.monotonic()
            with self.assertRaises(PoolTimeout):
                short.allocate({"cpu": 1})  # 200 ms deadline: the 500 ms reply is too late
            self.assertLess(time.monotonic() - t0, 0.45)
            t0 = time.monotonic()
            a = short.allocate({"cpu": 1}, wait_ms=1000)  # 200 + 1000 ms: it arrives in time
            self.assertGreaterEqual(time.monotonic() - t0, 0.4)
            self.assertTrue(a["id"].startswith("p/"))
            self.assertEqual(self.last("allocate")["wait_ms"], 1000)
            # A negative wait (refused by a real broker) does not shorten the deadline.
            self.broker.delay_ms["allocate"] = 100
            self.assertTrue(short.allocate({"cpu": 1}, wait_ms=-1)["id"].startswith("p/"))

    def test_queue_quotas_drain(self):
        self.broker.queue = [{"id": "q1", "min": {"cpu": 1.0}, "width": 0, "count": 1, "priority": 0,
                              "constraints": {}, "queued_ms": 1, "deadline_ms": 2}]
        self.broker.quotas = [{"owner": "alice", "quota": {"cpu": 2.0}, "used": {"cpu": 1.0}}]
        self.assertEqual(self.client.queue(), self.broker.queue)
        self.assertEqual(set(self.last("queue")), {"v", "op", "id"})
        self.assertEqual(self.client.quotas(), self.broker.quotas)
        pool = self.client.drain("p")
        self.assertEqual((pool["id"], pool["draining"]), ("p", True))
        self.assertEqual((self.last("drain")["pool"], self.last("drain")["drain"]), ("p", True))
        pool = self.client.drain("p", drain=False)
        self.assertIs(pool["draining"], False)
        self.assertIs(self.last("drain")["drain"], False)
        self.assertIs(self.client.drain("p", False)["draining"], False)
        with self.assertRaises(PoolError) as cm:
            self.client.drain("nope")
        self.assertEqual(cm.exception.kind, "not_exist")


class KeepaliveTest(unittest.TestCase):
    def setUp(self):
        self.broker = FakeBroker()
        self.addCleanup(self.broker.close)
        self.client = poolbus.Client(self.broker.api, timeout_ms=2000)
        self.addCleanup(self.client.close)
        self.alloc = self.client.accept("p/1", {"cpu": 1})

    def test_next_wait(self):
        self.assertEqual(Keepalive.next_wait_ms(300000), 270000)
        self.assertEqual(Keepalive.next_wait_ms(120000), 90000)
        self.assertEqual(Keepalive.next_wait_ms(60000), 30000)
        self.assertEqual(Keepalive.next_wait_ms(59000), 29500)  # short lease: half
        self.assertEqual(Keepalive.next_wait_ms(1000), 500)
        self.assertEqual(Keepalive.next_wait_ms(3_600_000), 300000)

    def test_retry_waits_back_off_with_jitter(self):
        ka = Keepalive(self.client, self.alloc["id"], start=False)
        for retry in range(5):
            base = 2000 * 1.5 ** retry
            for _ in range(20):
                w = ka.retry_wait_ms(retry)
                self.assertGreaterEqual(w, base * 0.8 - 1e-6)
                self.assertLessEqual(w, base * 1.2 + 1e-6)
        ka.stop()

    def test_short_lease_renews_at_half_interval(self):
        with Keepalive(self.client, self.alloc["id"], interval_ms=200) as ka:
            t0 = time.monotonic()
            wait_until(lambda: ka.renewals >= 4, 3.0)
            elapsed = time.monotonic() - t0
            self.assertEqual(ka.last_granted_ms, 200)
        # 4 renewals = the first one plus 3 waits of ~100 ms.
        self.assertGreaterEqual(elapsed, 0.25)
        self.assertLess(elapsed, 2.0)
        self.assertFalse(ka.alive)
        self.assertIsNone(ka.error)
        calls = [c for c in self.broker.calls if c.get("op") == "keepalive"]
        self.assertTrue(all(c["interval_ms"] == 200 and c["alloc"] == self.alloc["id"] for c in calls))

    def test_non_fatal_errors_are_retried(self):
        self.broker.keepalive_errors = ["unavailable", "timeout", "internal"]
        lost = []
        ka = Keepalive(self.client, self.alloc["id"], interval_ms=100_000, retry_initial_ms=10,
                       on_lost=lost.append)
        wait_until(lambda: ka.renewals >= 1, 3.0)
        ka.stop()
        self.assertEqual(self.broker.ops_called("keepalive"), 4)
        self.assertIsNone(ka.error)
        self.assertEqual(lost, [])

    def test_gives_up_after_five_tries(self):
        self.broker.keepalive_errors = ["unavailable"] * 10
        lost = []
        ka = Keepalive(self.client, self.alloc["id"], retry_initial_ms=5, on_lost=lost.append)
        ka.join(5)
        self.assertFalse(ka.alive)
        self.assertEqual(self.broker.ops_called("keepalive"), 5)
        self.assertEqual(ka.error.kind, "unavailable")
        self.assertEqual([e.kind for e in lost], ["unavailable"])

    def test_stops_on_not_exist_and_reports_it(self):
        lost = []
        ka = Keepalive(self.client, self.alloc["id"], interval_ms=200, retry_initial_ms=5, on_lost=lost.append)
        wait_until(lambda: ka.renewals >= 1)
        self.client.free(self.alloc["id"])
        ka.join(3)
        self.assertFalse(ka.alive)
        self.assertEqual(ka.error.kind, "not_exist")
        self.assertEqual([e.kind for e in lost], ["not_exist"])
        # not_exist is not retried: exactly one failing call after the free.
        failing = [c for c in self.broker.calls if c.get("op") == "keepalive"][ka.renewals:]
        self.assertEqual(len(failing), 1)

    def test_stop_is_quiet(self):
        lost = []
        ka = Keepalive(self.client, self.alloc["id"], on_lost=lost.append)
        wait_until(lambda: ka.renewals >= 1)
        t0 = time.monotonic()
        ka.stop()
        self.assertLess(time.monotonic() - t0, 1.0, "stop must interrupt the long wait")
        self.assertFalse(ka.alive)
        self.assertIsNone(ka.error)
        self.assertEqual(lost, [])


class SubscriberTest(unittest.TestCase):
    def test_yields_topic_and_body(self):
        broker = FakeBroker()
        self.addCleanup(broker.close)
        with poolbus.Subscriber(broker.stream, "offers.") as sub:
            got = None
            deadline = time.monotonic() + 3
            while got is None and time.monotonic() < deadline:  # slow joiner: publish until seen
                broker.publish("pools.p", {"v": 1, "event": "joined"})
                broker.publish("offers.p", {"v": 1, "pool": "p", "seq": 7})
                got = sub.recv(50)
            self.assertEqual(got, ("offers.p", {"v": 1, "pool": "p", "seq": 7}))
            broker.publish("offers.q", {"seq": 1})
            topic, body = next(iter(sub))
            self.assertTrue(topic.startswith("offers."))
            self.assertIsInstance(body, dict)


class ParseTest(unittest.TestCase):
    def test_resources(self):
        self.assertEqual(poolbus.parse_resources("cpu=4,mem=8GiB,disk=100GB,gpu=1"),
                         {"cpu": 4.0, "mem": 8.0 * (1 << 30), "disk": 100e9, "gpu": 1.0})
        self.assertEqual(poolbus.parse_resources({"cpu": 2}), {"cpu": 2.0})
        self.assertEqual(poolbus.parse_resources("cpu=0.5"), {"cpu": 0.5})
        for bad in ("cpu", "cpu=x", "cpu=1XB", "=1"):
            with self.assertRaises(ValueError):
                poolbus.parse_resources(bad)

    def test_durations(self):
        self.assertEqual(poolbus.parse_duration_ms("500ms"), 500)
        self.assertEqual(poolbus.parse_duration_ms("2s"), 2000)
        self.assertEqual(poolbus.parse_duration_ms("2m"), 120000)
        self.assertEqual(poolbus.parse_duration_ms("1h"), 3600000)
        self.assertEqual(poolbus.parse_duration_ms(250), 250)
        with self.assertRaises(ValueError):
            poolbus.parse_duration_ms("5 days")


if __name__ == "__main__":
    unittest.main()

"""Garbage of every kind at the broker's three inbound sockets (api ROUTER, workers
ROUTER, announce SUB). Every api message that can carry a reply gets an `invalid`
one (echoing its id when it had a readable one); frames that cannot carry a reply
get nothing; and afterwards the same broker process (same pid, never restarted)
still answers ping and still serves its real worker correctly."""

import os
import random
import time
import unittest

import msgpack
import zmq

from harness import GiB, MiB, ClusterTestCase, wait_until

SMALL = {"cpu": 1.0, "mem": 1.0 * GiB, "disk": 1.0 * GiB}


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


# name -> (body, id the reply must echo or None for nil)
API_GARBAGE = {
    "not msgpack": (b"this is not MessagePack", None),
    "reserved byte": (b"\xc1", None),
    "truncated map": (b"\x83\xa2op\xa4pi", None),
    "array": (pack(["ping", 1]), None),
    "string": (pack("ping"), None),
    "int": (pack(42), None),
    "nil": (b"\xc0", None),
    "op not a string": (pack({"op": 5, "id": 9}), 9),
    "missing op": (pack({"id": "only-id"}), "only-id"),
    "unknown op": (pack({"op": "explode", "id": 10}), 10),
    "offer uri not a string": (pack({"op": "offer", "offer": 7, "id": "x"}), "x"),
    "offer uri without pool": (pack({"op": "offer", "offer": "nopool", "id": 11}), 11),
    "interval not an int": (pack({"op": "keepalive", "alloc": "w1/a", "interval_ms": "soon", "id": 12}), 12),
    "negative want": (pack({"op": "accept", "offer": "w1/1", "meta": {"want": {"cpu": -1.0}}, "id": 13}), 13),
    "labels not strings": (pack({"op": "allocate", "min": {"cpu": 1.0}, "labels": {"a": 1}, "id": 14}), 14),
    "width fractional": (pack({"op": "allocate", "min": {"cpu": 1.0}, "width": 1.5, "id": 15}), 15),
    "non-string key": (pack({"op": "ping", "id": 16, 3: "x"}), 16),
    "version 2": (pack({"v": 2, "op": "ping", "id": 17}), 17),
    "trailing bytes": (pack({"op": "ping", "id": 18}) + b"\x00", None),
    "two messages": (pack({"op": "ping", "id": 19}) * 2, None),
    "map32 length 2^32-1": (b"\xdf\xff\xff\xff\xff", None),
    "array32 length 2^32-1": (b"\xdd\xff\xff\xff\xff", None),
    "str32 length 2^32-1": (b"\xdb\xff\xff\xff\xff", None),
    "bin32 length 2^32-1": (b"\xc6\xff\xff\xff\xff", None),
    "map16 of 65535 declared": (b"\xde\xff\xff" + pack("op") + pack("ping"), None),
    "deep nesting": (b"\x91" * 100000 + b"\xc0", None),
    "deep maps": (b"\x81\xa1k" * 1000 + b"\xc0", None),
    "empty body": (b"", None),
    "over 1 MiB": (pack({"op": "ping", "id": 20, "pad": [0] * (MiB + 16)}), None),
}


class BrokerGarbage(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB"),)
    # One broker takes every test's garbage in turn (unless POOLBUS_IT_FRESH=1).
    FRESH_CLUSTER_PER_TEST = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.first_broker_pid = cls.cluster.broker.pid if cls.cluster is not None else None
        cls.context = zmq.Context()

    def setUp(self):
        super().setUp()
        self.broker_pid = self.cluster.broker.pid
        if self.first_broker_pid is not None:
            self.assertEqual(self.broker_pid, self.first_broker_pid, "an earlier test's garbage restarted the broker")

    @classmethod
    def tearDownClass(cls):
        cls.context.destroy(0)
        super().tearDownClass()

    def dealer(self, endpoint, identity=None):
        s = self.context.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        if identity is not None:
            s.setsockopt(zmq.ROUTING_ID, identity)
        s.connect(endpoint)
        self.addCleanup(s.close, 0)
        return s

    def recv(self, socket, timeout_ms=3000):
        if not socket.poll(timeout_ms, zmq.POLLIN):
            return None
        return socket.recv_multipart()

    def assertInvalidReply(self, frames, want_id, what):
        self.assertIsNotNone(frames, "%s: no reply" % what)
        reply = msgpack.unpackb(frames[-1], raw=False, strict_map_key=False)
        self.assertIsInstance(reply, dict, what)
        self.assertEqual(reply.get("v"), 1, what)
        self.assertIs(reply.get("ok"), False, "%s: %r" % (what, reply))
        self.assertEqual(reply["error"]["kind"], "invalid", "%s: %r" % (what, reply))
        self.assertTrue(reply["error"]["message"], what)
        self.assertEqual(reply.get("id"), want_id, "%s: id not echoed: %r" % (what, reply))
        return reply

    def assertBrokerServes(self):
        """Same process, never restarted, answering ping and serving its real worker."""
        self.assertTrue(self.cluster.broker.running, "broker died:\n" + self.cluster.broker.log_text()[-3000:])
        self.assertEqual(self.cluster.broker.pid, self.broker_pid, "broker was restarted")
        self.assertTrue(self.c.call("ping", timeout_ms=3000)["ok"])
        self.assertEqual(self.cluster.pool_ids(), {"w1"})
        alloc = self.c.accept("w1/1", SMALL, owner="garbage-test")
        self.assertEqual(self.c.inspect(alloc["id"])["meta"].get("owner"), "garbage-test")
        self.assertResources(self.c.offer("w1/1")["available"],
                             {"cpu": 3.0, "mem": 7.0 * GiB, "disk": 99.0 * GiB})
        self.c.free(alloc["id"])
        wait_until(lambda: self.c.offer("w1/1")["available"]["cpu"] == 4.0, 5.0, what="offer whole after free")

    # -- api ROUTER -----------------------------------------------------------------
    def test_api_garbage_bodies_get_invalid(self):
        for delimited in (True, False):
            s = self.dealer(self.cluster.api)
            for name, (body, want_id) in API_GARBAGE.items():
                with self.subTest(body=name, delimited=delimited):
                    s.send_multipart([b"", body] if delimited else [body])
                    frames = self.recv(s)
                    self.assertInvalidReply(frames, want_id, name)
                    # The reply comes back on the envelope the request came with.
                    # (An empty frame alone is itself a delimiter: the body is missing.)
                    self.assertEqual(frames[:-1], [b""] if delimited or body == b"" else [], name)
        self.assertBrokerServes()

    def test_api_wrong_frame_counts_get_invalid(self):
        ping = pack({"op": "ping", "id": 1})
        cases = {
            "two bodies after a delimiter": ([b"", ping, ping], [b""]),
            "two bodies, no delimiter": ([ping, ping], []),
            "five frames": ([b"", ping, b"x", b"y", ping], [b""]),
            "only a delimiter": ([b""], [b""]),
            "delimiter then empty body": ([b"", b""], [b""]),
            "extra envelope frame": ([b"hop", b"", ping, ping], [b"hop", b""]),
        }
        s = self.dealer(self.cluster.api)
        for name, (frames, route) in cases.items():
            with self.subTest(frames=name):
                s.send_multipart(frames)
                reply = self.recv(s)
                self.assertInvalidReply(reply, None, name)
                self.assertEqual(reply[:-1], route, name)
        self.assertBrokerServes()

    def test_api_oversized_frame_is_dropped_and_broker_lives_on(self):
        # Past the ROUTER's 16 MiB max message size ZeroMQ drops the connection:
        # such a frame cannot carry a reply, and must not cost the broker anything.
        s = self.dealer(self.cluster.api)
        s.send_multipart([b"", b"\x00" * (17 * MiB)])
        self.assertIsNone(self.recv(s, 1000), "an oversized frame got a reply")
        self.assertBrokerServes()

    def test_api_random_bytes_get_invalid(self):
        rng = random.Random(20240501)
        s = self.dealer(self.cluster.api)
        for i in range(300):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
            s.send_multipart([b"", body])
            frames = self.recv(s)
            self.assertIsNotNone(frames, "random body %d (%r): no reply" % (i, body))
            reply = msgpack.unpackb(frames[-1], raw=False, strict_map_key=False)
            # Random bytes are almost never a valid request; when they are (a bare
            # map {"op": "ping"} is possible in principle) the reply is simply ok.
            if reply.get("ok") is not True:
                self.assertEqual(reply["error"]["kind"], "invalid", "body %r: %r" % (body, reply))
        self.assertBrokerServes()

    # -- workers ROUTER -----------------------------------------------------------
    def test_workers_router_garbage_gets_nothing_and_changes_nothing(self):
        ghost = self.dealer(self.cluster.workers_ep, identity=b"ghost")
        rng = random.Random(7)
        bodies = [b"garbage", b"", b"\xdf\xff\xff\xff\xff", b"\xdd\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff",
                  b"\x91" * 100000 + b"\xc0", pack([1, 2]), pack("hello"),
                  pack({"v": 1, "type": "hello", "pool": "w1", "run": "r", "ts_ms": 1}),  # not its routing id
                  pack({"v": 1, "type": "hello", "pool": "a/b"}),
                  pack({"v": 1, "type": "reply", "rid": 424242, "ok": True}),  # unknown pool, unknown rid
                  pack({"v": 1, "type": "reply", "rid": -1, "ok": True}),
                  pack({"v": 1, "type": "bye"}),
                  pack({"v": 1, "type": "hello", "pool": "ghost"}) + b"\x00"]
        bodies += [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))) for _ in range(200)]
        for body in bodies:
            ghost.send(body)
        ghost.send_multipart([b"a", b"b", b"c"])
        ghost.send_multipart([b"", pack({"v": 1, "type": "hello", "pool": "ghost"})])
        # w1's own route must survive a stranger's hello naming w1.
        self.assertIsNone(self.recv(ghost, 500), "the workers ROUTER answered garbage")
        self.assertNotIn("ghost", self.cluster.pool_ids())
        self.assertBrokerServes()

    # -- announce SUB ---------------------------------------------------------------
    def test_announce_garbage_is_dropped(self):
        pub = self.context.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.connect(self.cluster.announce_ep)
        self.addCleanup(pub.close, 0)
        rng = random.Random(11)
        ghost_offer = {"v": 1, "pool": "ghost", "run": "r-ghost", "seq": 1,
                       "resources": {"cpu": 64.0}, "available": {"cpu": 64.0},
                       "offers": [{"id": "ghost/1", "pool": "ghost", "available": {"cpu": 64.0}}],
                       "allocs": 0, "ts_ms": 1, "heartbeat_ms": 100}
        messages = [
            [b"offers.w1", b"not msgpack"],
            [b"offers.w1", b"\xdf\xff\xff\xff\xff"],
            [b"allocs.w1", b"\xdd\xff\xff\xff\xff"],
            [b"pools.w1", b"\xdb\xff\xff\xff\xff"],
            [b"offers.w1", b"\x91" * 100000 + b"\xc0"],
            [b"offers.w2", pack(dict(ghost_offer, pool="w1"))],  # topic and body disagree
            [b"pools.w1", pack({"v": 1, "pool": "w1", "event": "left", "ts_ms": 1})],  # not a worker's to say
            [b"junk", b"junk"],
            [b"offers.w1"],
            [b"offers.w1", b"x", b"y"],
            [b"", b""],
            # Valid-looking, but ghost never said hello on the workers ROUTER.
            [b"offers.ghost", pack(ghost_offer)],
        ] + [[rng.choice([b"offers.", b"allocs.", b"pools.", b"x"]) + b"w1",
              bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))] for _ in range(100)]
        # PUB/SUB joins late: repeat the batch for a while so the broker surely sees it.
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            for m in messages:
                pub.send_multipart(m)
            time.sleep(0.1)
        self.assertNotIn("ghost", self.cluster.pool_ids())
        self.assertNotIn("ghost", {o["pool"] for o in self.c.offers()})
        self.assertBrokerServes()


if __name__ == "__main__":
    unittest.main()

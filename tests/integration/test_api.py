"""Client API from the outside: every op of protocol.md's table and every error kind
reachable without security, against a real broker with two real workers."""

import math
import time
import unittest

import msgpack
import zmq

from harness import GiB, MiB, ClusterTestCase, same_resources

W1 = {"cpu": 4.0, "mem": 8.0 * GiB, "disk": 100.0 * GiB}
W2 = {"cpu": 8.0, "mem": 16.0 * GiB, "disk": 200.0 * GiB}
SMALL = {"cpu": 1.0, "mem": 1.0 * GiB, "disk": 10.0 * GiB}


def minus(a, b):
    return {k: a.get(k, 0.0) - b.get(k, 0.0) for k in set(a) | set(b)}


def now_ms():
    return int(time.time() * 1000)


class RawSocket:
    """A bare socket on the API for requests the Client would never send."""

    def __init__(self, ctx, api, kind=zmq.DEALER):
        self.kind = kind
        self.sock = ctx.socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(api)

    def send_body(self, body_bytes, delimiter=True):
        if self.kind == zmq.DEALER and delimiter:
            self.sock.send_multipart([b"", body_bytes])
        else:
            self.sock.send(body_bytes)

    def recv_reply(self, timeout_ms=3000):
        """The decoded reply body, or None when nothing came in time."""
        if not self.sock.poll(timeout_ms, zmq.POLLIN):
            return None
        frames = self.sock.recv_multipart()
        return msgpack.unpackb(frames[-1], raw=False, strict_map_key=False), frames

    def request(self, body, delimiter=True, timeout_ms=3000):
        raw = body if isinstance(body, bytes) else msgpack.packb(body, use_bin_type=True)
        self.send_body(raw, delimiter)
        got = self.recv_reply(timeout_ms)
        return None if got is None else got[0]

    def close(self):
        self.sock.close(0)


class ApiTest(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB"), ("w2", "cpu=8,mem=16GiB,disk=200GiB"))

    def setUp(self):
        super().setUp()
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.term)
        self.raw = RawSocket(self.ctx, self.cluster.api)
        self.addCleanup(self.raw.close)

    def wait_offer(self, pool, available, timeout=3.0):
        def matches():
            o = self.cluster.offer_of(pool)
            return o is not None and same_resources(o["available"], available)
        self.wait_until(matches, timeout, what="offer of %s == %r" % (pool, available))

    def assertInvalidThenAlive(self, body, delimiter=True):
        reply = self.raw.request(body, delimiter)
        self.assertIsNotNone(reply, "no reply to malformed request %r" % (body,))
        self.assertIsInstance(reply, dict)
        self.assertIs(reply.get("ok"), False, "malformed %r answered %r" % (body, reply))
        self.assertEqual(reply.get("error", {}).get("kind"), "invalid", "malformed %r answered %r" % (body, reply))
        self.assertIsInstance(reply["error"].get("message"), str)
        self.assertEqual(reply.get("v"), 1)
        pong = self.raw.request({"op": "ping", "id": "after"})
        self.assertEqual(pong and pong.get("ok"), True, "ping after malformed %r: %r" % (body, pong))
        self.assertEqual(pong["id"], "after")
        return reply

    # -- ping / pools / offers / offer -------------------------------------------
    def test_ping(self):
        self.assertTrue(self.c.ping())
        reply = self.raw.request({"v": 1, "op": "ping", "id": 1})
        self.assertEqual((reply.get("v"), reply.get("id"), reply.get("ok")), (1, 1, True), reply)
        self.assertNotIn("error", reply)

    def test_pools_lists_both_workers(self):
        t0 = now_ms()
        pools = {p["id"]: p for p in self.c.pools()}
        self.assertEqual(set(pools), {"w1", "w2"})
        for pid, total in (("w1", W1), ("w2", W2)):
            p = pools[pid]
            self.assertResources(p["resources"], total)
            self.assertResources(p["available"], total)
            self.assertEqual(p["allocs"], 0)
            self.assertIsInstance(p["allocs"], int)
            self.assertIsInstance(p["last_seen_ms"], int)
            # Seen within the worker timeout (1 s) plus slack, and not in the future.
            self.assertGreater(p["last_seen_ms"], t0 - 3000, p)
            self.assertLessEqual(p["last_seen_ms"], now_ms() + 1000, p)
            for v in p["resources"].values():
                self.assertIsInstance(v, float, "resources must be float64: %r" % p)

    def test_offers_one_whole_offer_per_pool(self):
        offers = self.c.offers()
        self.assertEqual(sorted(o["id"] for o in offers), ["w1/1", "w2/1"])
        for o in offers:
            self.assertEqual(o["id"], o["pool"] + "/1")
            self.assertResources(o["available"], W1 if o["pool"] == "w1" else W2)

    def test_offer_by_uri(self):
        o = self.c.offer("w2/1")
        self.assertEqual(o["id"], "w2/1")
        self.assertEqual(o["pool"], "w2")
        self.assertResources(o["available"], W2)
        self.assertPoolError("not_exist", self.c.offer, "w2/2")
        self.assertPoolError(("not_exist", "unavailable"), self.c.offer, "nosuchpool/1")

    # -- accept ---------------------------------------------------------------------
    def test_accept_returns_inspect_and_shrinks_offer(self):
        t0 = now_ms()
        a = self.c.accept("w1/1", SMALL, owner="alice", labels={"job": "j1", "team": "x"})
        t1 = now_ms()
        self.assertTrue(a["id"].startswith("w1/") and len(a["id"]) > 3, a)
        self.assertNotEqual(a["id"], "w1/", a)
        self.assertEqual(a["pool"], "w1")
        self.assertResources(a["resources"], SMALL)
        self.assertResources(a["meta"]["want"], SMALL)
        self.assertEqual(a["meta"].get("owner"), "alice")
        self.assertEqual(a["meta"].get("labels"), {"job": "j1", "team": "x"})
        self.assertIsInstance(a["created_ms"], int)
        self.assertGreaterEqual(a["created_ms"], t0 - 1000)
        self.assertLessEqual(a["created_ms"], t1 + 1000)
        self.assertEqual(a["last_keepalive_ms"], 0)
        self.assertEqual(a["expires_ms"], a["created_ms"] + 120000)
        for v in a["resources"].values():
            self.assertIsInstance(v, float)

        inspected = self.c.inspect(a["id"])
        for key in ("id", "pool", "created_ms", "last_keepalive_ms", "expires_ms"):
            self.assertEqual(inspected[key], a[key], key)
        self.assertResources(inspected["resources"], SMALL)

        self.wait_offer("w1", minus(W1, SMALL))
        self.wait_offer("w2", W2)
        o = self.c.offer("w1/1")
        self.assertResources(o["available"], minus(W1, SMALL))

        def pool_counts():
            p = {p["id"]: p for p in self.c.pools()}["w1"]
            return p["allocs"] == 1 and same_resources(p["available"], minus(W1, SMALL))
        self.wait_until(pool_counts, 3.0, what="pools shows w1 with 1 alloc")

        # A second accept shrinks it further; the two allocs have distinct ids.
        b = self.c.accept("w1/1", SMALL)
        self.assertNotEqual(a["id"], b["id"])
        self.wait_offer("w1", minus(minus(W1, SMALL), SMALL))

    def test_accept_whole_offer_removes_it(self):
        a = self.c.accept("w1/1", W1)
        self.assertResources(a["resources"], W1)
        self.wait_until(lambda: self.cluster.offer_of("w1") is None, 3.0, what="w1 offer gone")
        self.assertPoolError("not_exist", self.c.accept, "w1/1", SMALL)
        self.c.free(a["id"])
        self.wait_offer("w1", W1)

    def test_accept_empty_want_is_precondition(self):
        self.assertPoolError("precondition", self.c.accept, "w1/1", {})
        self.assertEqual(self.c.allocs(), [])

    def test_accept_too_big_is_not_exist(self):
        self.assertPoolError("not_exist", self.c.accept, "w1/1", {"cpu": 5.0, "mem": GiB, "disk": GiB})
        self.assertPoolError("not_exist", self.c.accept, "w1/1", {"cpu": 1.0, "mem": 9.0 * GiB})
        self.assertPoolError("not_exist", self.c.accept, "w1/1", {"cpu": 1.0, "gpu": 1.0})
        self.assertEqual(self.c.allocs(), [])
        self.wait_offer("w1", W1)

    def test_accept_unknown_pool_or_offer(self):
        # protocol: "no such pool" is not_exist; "a pool that is not connected" is unavailable.
        self.assertPoolError(("not_exist", "unavailable"), self.c.accept, "nosuchpool/1", SMALL)
        self.assertPoolError("not_exist", self.c.accept, "w1/2", SMALL)
        self.assertEqual(self.c.allocs(), [])

    def test_bad_uris_are_invalid(self):
        for uri in ("", "w1", "/1", "w1/"):
            with self.subTest(uri=uri):
                self.assertPoolError("invalid", self.c.offer, uri)
                self.assertPoolError("invalid", self.c.accept, uri, SMALL)
                self.assertPoolError("invalid", self.c.inspect, uri)
                self.assertPoolError("invalid", self.c.keepalive, uri, 1000)
                self.assertPoolError("invalid", self.c.free, uri)
        self.assertEqual(self.c.allocs(), [])

    # -- allocate -----------------------------------------------------------------
    def test_allocate_best_fit_min(self):
        want = {"cpu": 1.0, "mem": GiB, "disk": GiB}
        # Both offers >= max (= min); distance to max: w1 7/8+3, w2 15/8+7 -> w1.
        a = self.c.allocate(want, owner="bob", labels={"k": "v"})
        self.assertEqual(a["pool"], "w1")
        self.assertResources(a["resources"], want)
        self.assertEqual(a["meta"].get("owner"), "bob")
        self.assertEqual(a["meta"].get("labels"), {"k": "v"})
        self.assertEqual(a["expires_ms"], a["created_ms"] + 120000)
        self.assertEqual(self.c.inspect(a["id"])["id"], a["id"])

    def test_allocate_with_width_takes_max(self):
        # min*(1+1) = cpu 2, mem 2 GiB, disk 2 GiB; w1 is nearer; w1 keeps cpu 2 so want = max.
        a = self.c.allocate({"cpu": 1.0, "mem": GiB, "disk": GiB}, width=1)
        self.assertEqual(a["pool"], "w1")
        self.assertResources(a["resources"], {"cpu": 2.0, "mem": 2.0 * GiB, "disk": 2.0 * GiB})

    def test_allocate_takes_whole_offer_when_max_would_drain_it(self):
        # max = cpu 8, mem 8 GiB, disk 4 GiB: only w2 is >= max, and taking max would
        # leave w2 with cpu 0, so the whole offer is taken.
        a = self.c.allocate({"cpu": 2.0, "mem": 2.0 * GiB, "disk": GiB}, width=3)
        self.assertEqual(a["pool"], "w2")
        self.assertResources(a["resources"], W2)
        self.wait_until(lambda: self.cluster.offer_of("w2") is None, 3.0, what="w2 offer gone")

    def test_allocate_smaller_offer_when_none_reaches_max(self):
        # max = cpu 40, beyond both; smaller offers by distance to max: w2 (32+...) before w1.
        a = self.c.allocate({"cpu": 1.0, "mem": GiB, "disk": GiB}, width=39)
        self.assertEqual(a["pool"], "w2")
        self.assertResources(a["resources"], W2)

    def test_allocate_too_big_is_unavailable(self):
        self.assertPoolError("unavailable", self.c.allocate, {"cpu": 100.0})
        self.assertPoolError("unavailable", self.c.allocate, {"cpu": 1.0, "mem": 17.0 * GiB})
        self.assertEqual(self.c.allocs(), [])

    def test_allocate_fills_then_unavailable(self):
        # w1 (4 cpu) and w2 (8 cpu): twelve 1-cpu allocs fit, the thirteenth does not.
        got = [self.c.allocate({"cpu": 1.0, "mem": 0.5 * GiB, "disk": GiB}) for _ in range(12)]
        self.assertEqual(sorted(a["pool"] for a in got).count("w1"), 4)
        self.assertPoolError("unavailable", self.c.allocate, {"cpu": 1.0, "mem": 0.5 * GiB, "disk": GiB})

    # -- allocs / inspect ------------------------------------------------------------
    def test_allocs_with_and_without_filter(self):
        a = self.c.accept("w1/1", SMALL)
        b = self.c.accept("w2/1", SMALL)
        c = self.c.accept("w2/1", SMALL)
        everything = {x["id"]: x for x in self.c.allocs()}
        self.assertEqual(set(everything), {a["id"], b["id"], c["id"]})
        self.assertEqual(everything[a["id"]]["pool"], "w1")
        self.assertResources(everything[b["id"]]["resources"], SMALL)
        self.assertEqual({x["id"] for x in self.c.allocs(pool="w1")}, {a["id"]})
        self.assertEqual({x["id"] for x in self.c.allocs(pool="w2")}, {b["id"], c["id"]})
        for x in self.c.allocs(pool="w2"):
            self.assertEqual(x["pool"], "w2")
            self.assertEqual(x["last_keepalive_ms"], 0)

    def test_inspect_unknown_alloc_is_not_exist(self):
        self.assertPoolError("not_exist", self.c.inspect, "w1/no-such-alloc")
        self.assertPoolError(("not_exist", "unavailable"), self.c.inspect, "nosuchpool/a")

    # -- keepalive ----------------------------------------------------------------
    def test_keepalive_grants_and_moves_expiry(self):
        a = self.c.accept("w2/1", SMALL)
        t0 = now_ms()
        self.assertEqual(self.c.keepalive(a["id"], 10000), 10000)
        i = self.c.inspect(a["id"])
        self.assertGreaterEqual(i["last_keepalive_ms"], max(a["created_ms"], t0 - 1000))
        self.assertLessEqual(i["last_keepalive_ms"], now_ms() + 1000)
        self.assertEqual(i["expires_ms"], i["last_keepalive_ms"] + 10000)
        self.assertEqual(i["created_ms"], a["created_ms"])

        self.assertEqual(self.c.keepalive(a["id"], 3_600_000), 300000)  # capped at 5 minutes
        j = self.c.inspect(a["id"])
        self.assertEqual(j["expires_ms"], j["last_keepalive_ms"] + 300000)
        self.assertGreaterEqual(j["last_keepalive_ms"], i["last_keepalive_ms"])

        # A whole-number float is accepted where an int is expected.
        reply = self.raw.request({"op": "keepalive", "id": 3, "alloc": a["id"], "interval_ms": 5000.0})
        self.assertEqual(reply.get("ok"), True, reply)
        self.assertEqual(reply["interval_ms"], 5000)

    def test_keepalive_non_positive_interval_is_invalid(self):
        a = self.c.accept("w2/1", SMALL)
        self.assertPoolError("invalid", self.c.keepalive, a["id"], 0)
        self.assertPoolError("invalid", self.c.keepalive, a["id"], -5)
        self.assertEqual(self.c.inspect(a["id"])["last_keepalive_ms"], 0)

    def test_keepalive_unknown_alloc_is_not_exist(self):
        self.assertPoolError("not_exist", self.c.keepalive, "w1/no-such-alloc", 1000)

    # -- free ---------------------------------------------------------------------
    def test_free_then_inspect_and_free_again(self):
        a = self.c.accept("w1/1", SMALL)
        self.wait_offer("w1", minus(W1, SMALL))
        self.c.free(a["id"])
        self.assertPoolError("not_exist", self.c.inspect, a["id"])
        self.assertPoolError("not_exist", self.c.free, a["id"])
        self.assertPoolError("not_exist", self.c.keepalive, a["id"], 1000)
        self.assertNotIn(a["id"], {x["id"] for x in self.c.allocs()})
        self.wait_offer("w1", W1)

    # -- envelopes and ids ----------------------------------------------------------
    def test_id_is_echoed(self):
        for ident in (42, "abc", -7, [1, "x"], {"k": 1}):
            with self.subTest(id=ident):
                reply = self.raw.request({"op": "ping", "id": ident})
                self.assertEqual(reply["id"], ident)
        reply = self.raw.request({"op": "ping"})
        self.assertIn("id", reply)
        self.assertIsNone(reply["id"])
        # Errors echo the id too.
        reply = self.raw.request({"op": "inspect", "id": 99, "alloc": "w1/no-such-alloc"})
        self.assertEqual((reply["ok"], reply["id"], reply["error"]["kind"]), (False, 99, "not_exist"))

    def test_req_socket(self):
        req = RawSocket(self.ctx, self.cluster.api, zmq.REQ)
        try:
            for n in range(3):
                reply = req.request({"op": "ping", "id": n})
                self.assertEqual((reply["ok"], reply["id"]), (True, n))
            reply = req.request({"op": "offer", "id": "o", "offer": "w1/1"})
            self.assertEqual(reply["offer"]["id"], "w1/1")
        finally:
            req.close()

    def test_dealer_without_delimiter(self):
        self.raw.send_body(msgpack.packb({"op": "ping", "id": "nodelim"}), delimiter=False)
        reply, frames = self.raw.recv_reply()
        self.assertEqual(len(frames), 1, "reply must carry exactly the envelope received (none): %r" % frames)
        self.assertEqual((reply["ok"], reply["id"]), (True, "nodelim"))

    def test_dealer_with_delimiter(self):
        self.raw.send_body(msgpack.packb({"op": "ping", "id": "delim"}), delimiter=True)
        reply, frames = self.raw.recv_reply()
        self.assertEqual(frames[0], b"")
        self.assertEqual(len(frames), 2)
        self.assertEqual((reply["ok"], reply["id"]), (True, "delim"))

    def test_many_requests_in_flight_pair_by_id(self):
        n = 40
        for i in range(n):
            op = {"op": "ping"} if i % 2 else {"op": "offer", "offer": "w%d/1" % (1 + i % 4 // 2)}
            self.raw.send_body(msgpack.packb(dict(op, id=i)))
        seen = {}
        for _ in range(n):
            got = self.raw.recv_reply(5000)
            self.assertIsNotNone(got, "only %d/%d replies" % (len(seen), n))
            seen[got[0]["id"]] = got[0]
        self.assertEqual(set(seen), set(range(n)))
        for i, reply in seen.items():
            self.assertTrue(reply["ok"], reply)
            if i % 2 == 0:
                self.assertEqual(reply["offer"]["pool"], "w%d" % (1 + i % 4 // 2))

    def test_unknown_keys_ignored_and_v_optional(self):
        self.assertEqual(self.raw.request({"op": "ping", "id": 1, "zzz": [1, 2], "extra": {"a": None}})["ok"],
                         True)
        self.assertEqual(self.raw.request({"v": 1, "op": "ping", "id": 2})["ok"], True)
        self.assertEqual(self.raw.request({"op": "ping", "id": 3})["ok"], True)

    # -- malformed requests ----------------------------------------------------------
    def test_not_msgpack(self):
        self.assertInvalidThenAlive(b"\xc1\xc1\xc1")
        self.assertInvalidThenAlive(b"\x92\x01")  # truncated array
        self.assertInvalidThenAlive(b"\x82\xa2op")  # truncated map

    def test_not_a_map(self):
        self.assertInvalidThenAlive(msgpack.packb([1, 2, 3]))
        self.assertInvalidThenAlive(msgpack.packb("ping"))
        self.assertInvalidThenAlive(msgpack.packb(7))
        self.assertInvalidThenAlive(msgpack.packb(None))

    def test_trailing_bytes(self):
        self.assertInvalidThenAlive(msgpack.packb({"op": "ping", "id": 1}) + b"\x00")
        self.assertInvalidThenAlive(msgpack.packb({"op": "ping"}) + msgpack.packb({"op": "ping"}))

    def test_non_string_keys(self):
        self.assertInvalidThenAlive(msgpack.packb({1: "ping", "op": "ping"}))

    def test_missing_or_unknown_op(self):
        reply = self.assertInvalidThenAlive({"v": 1, "id": 5})
        self.assertEqual(reply["id"], 5)
        reply = self.assertInvalidThenAlive({"op": "frobnicate", "id": "u"})
        self.assertEqual(reply["id"], "u")
        self.assertInvalidThenAlive({"op": "", "id": 1})

    def test_wrong_types(self):
        bad = [
            {"op": 5},
            {"op": b"ping"},
            {"op": "offer"},
            {"op": "offer", "offer": 5},
            {"op": "accept", "offer": "w1/1"},
            {"op": "accept", "offer": "w1/1", "meta": "cpu=1"},
            {"op": "accept", "offer": "w1/1", "meta": {}},
            {"op": "accept", "offer": "w1/1", "meta": {"want": [1]}},
            {"op": "accept", "offer": "w1/1", "meta": {"want": {"cpu": "1"}}},
            {"op": "accept", "offer": "w1/1", "meta": {"want": {"cpu": 1}, "owner": 5}},
            {"op": "accept", "offer": "w1/1", "meta": {"want": {"cpu": 1}, "labels": {"a": 1}}},
            {"op": "allocate"},
            {"op": "allocate", "min": "cpu=1"},
            {"op": "allocate", "min": {"cpu": 1}, "width": "2"},
            {"op": "allocate", "min": {"cpu": 1}, "width": -1},
            {"op": "allocate", "min": {"cpu": 1}, "width": 1.5},
            {"op": "allocs", "pool": 3},
            {"op": "inspect"},
            {"op": "inspect", "alloc": ["w1", "1"]},
            {"op": "keepalive", "alloc": "w1/x"},
            {"op": "keepalive", "alloc": "w1/x", "interval_ms": "1000"},
            {"op": "free"},
            {"op": "free", "alloc": None},
        ]
        for body in bad:
            with self.subTest(body=body):
                self.assertInvalidThenAlive(dict(body, id="bad"))
        self.assertEqual(self.c.allocs(), [])
        self.wait_offer("w1", W1)

    def test_negative_or_non_finite_resources(self):
        for value in (-1.0, -1, math.nan, math.inf, -math.inf):
            with self.subTest(value=value):
                self.assertInvalidThenAlive({"op": "accept", "offer": "w1/1",
                                             "meta": {"want": {"cpu": 1.0, "mem": value}}})
                self.assertInvalidThenAlive({"op": "allocate", "min": {"cpu": value}})
        self.assertEqual(self.c.allocs(), [])
        self.wait_offer("w1", W1)

    def test_unsupported_version(self):
        self.assertInvalidThenAlive({"v": 2, "op": "ping", "id": 1})
        self.assertInvalidThenAlive({"v": 0, "op": "ping", "id": 1})
        self.assertInvalidThenAlive({"v": "1", "op": "ping", "id": 1})

    def test_body_over_one_mib(self):
        body = msgpack.packb({"op": "ping", "id": "big", "pad": "x" * (MiB + 1024)})
        reply = self.raw.request(body, timeout_ms=2000)
        if reply is not None:  # "answered invalid (or dropped)"
            self.assertEqual((reply.get("ok"), reply.get("error", {}).get("kind")), (False, "invalid"), reply)
        # The broker may drop the body (even the connection, e.g. ZMQ_MAXMSGSIZE): the
        # DEALER reconnects by itself, and the broker must answer again soon after.
        def pong():
            reply = self.raw.request({"op": "ping", "id": "after"}, timeout_ms=500)
            return reply is not None and reply.get("id") == "after" and reply.get("ok") is True
        self.wait_until(pong, 5.0, what="ping answered after a > 1 MiB body")

    def test_malformed_never_changes_state(self):
        before = self.c.pools()
        for body in (b"\xc1", msgpack.packb({"op": "accept", "offer": "w1/1", "meta": {"want": {"cpu": -4}}}),
                     msgpack.packb({"op": "accept", "offer": "w1/1", "meta": {"want": {"cpu": 4}}}) + b"!",
                     msgpack.packb({"v": 2, "op": "accept", "offer": "w1/1", "meta": {"want": {"cpu": 4}}})):
            self.assertInvalidThenAlive(body)
        self.assertEqual(self.c.allocs(), [])
        after = {p["id"]: p for p in self.c.pools()}
        for p in before:
            self.assertResources(after[p["id"]]["available"], p["available"])


if __name__ == "__main__":
    unittest.main()

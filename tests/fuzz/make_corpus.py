#!/usr/bin/python3
"""Writes the seed corpus of every fuzz target into tests/fuzz/corpus/<target>/:
valid messages as protocol.md and schemas/PROTOCOL.md spell them (packed with
python3-msgpack, resources as float64 like the C++ encoders) plus tricky ones
(forged length prefixes, deep nesting, wrong types, trailing bytes).

Seeds are named seed-*; crashing inputs found by scripts/fuzz.sh are kept beside
them as crash-* and are never overwritten here. Run it again after changing it:
  /usr/bin/python3 tests/fuzz/make_corpus.py
"""

import os

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
GiB = float(1 << 30)


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


RES = {"cpu": 4.0, "mem": 8 * GiB, "disk": 100 * GiB}
META = {"want": {"cpu": 1.0, "mem": GiB}, "owner": "alice", "labels": {"run": "r1", "team": "x"}}
INSPECT = {"id": "w1/a1", "pool": "w1", "taskdb_alloc_id": "sha256:00", "resources": RES, "meta": META,
           "created_ms": 1700000000000, "last_keepalive_ms": 0, "expires_ms": 1700000120000}
OFFER = {"id": "w1/1", "pool": "w1", "available": RES}
POOL = {"id": "w1", "resources": RES, "available": RES, "allocs": 0, "last_seen_ms": 1700000000000}

# Bytes no decoder may choke on: forged lengths, truncations, nesting, odd types.
TRICKY = {
    "empty": b"",
    "nil": b"\xc0",
    "not-msgpack": b"hello, broker",
    "reserved-byte": b"\xc1",
    "map32-huge": b"\xdf\xff\xff\xff\xff",
    "array32-huge": b"\xdd\xff\xff\xff\xff",
    "str32-huge": b"\xdb\xff\xff\xff\xff",
    "bin32-huge": b"\xc6\xff\xff\xff\xff",
    "ext32-huge": b"\xc9\xff\xff\xff\xff\x01",
    "map16-truncated": b"\xde\x00\x10\xa2op",
    "deep-arrays": b"\x91" * 200 + b"\xc0",
    "deep-maps": b"\x81\xa1k" * 100 + b"\xc0",
    "array": pack([1, 2, 3]),
    "string": pack("ping"),
    "int-key": pack({1: "ping"}),
    "op-int": pack({"op": 7}),
    "trailing": pack({"op": "ping"}) + b"\x00",
    "two-maps": pack({"op": "ping"}) * 2,
    "float-nan": pack({"cpu": float("nan")}),
    "float32": b"\x81\xa3cpu\xca\x40\x80\x00\x00",
    "ext": b"\xd4\x01\x02",
    "timestamp": b"\xd6\xff\x00\x00\x00\x01",
    "big-uint": pack({"rid": 2 ** 64 - 1, "v": 1}),
    "neg-int": pack({"rid": -5, "v": 1}),
}

API_REQUESTS = {
    "ping": {"v": 1, "op": "ping", "id": 1},
    "ping-noid": {"op": "ping"},
    "pools": {"v": 1, "op": "pools", "id": "abc"},
    "offers": {"v": 1, "op": "offers", "id": [1, {"x": None}]},
    "offer": {"v": 1, "op": "offer", "id": 2, "offer": "w1/1"},
    "accept": {"v": 1, "op": "accept", "id": 3, "offer": "w1/1", "meta": META},
    "allocate": {"v": 1, "op": "allocate", "id": 4, "min": {"cpu": 1.0}, "width": 2, "owner": "bob",
                 "labels": {"a": "b"}},
    "allocs": {"v": 1, "op": "allocs", "id": 5, "pool": "w1"},
    "inspect": {"v": 1, "op": "inspect", "id": 6, "alloc": "w1/a1"},
    "keepalive": {"v": 1, "op": "keepalive", "id": 7, "alloc": "w1/a1", "interval_ms": 30000},
    "free": {"v": 1, "op": "free", "id": 8, "alloc": "w1/a1"},
    "bad-uri": {"op": "offer", "offer": "nopool"},
    "v2": {"v": 2, "op": "ping"},
    "width-float": {"op": "allocate", "min": {"cpu": 1}, "width": 1.5},
    "interval-zero": {"op": "keepalive", "alloc": "w1/a1", "interval_ms": 0},
    "neg-res": {"op": "allocate", "min": {"cpu": -1}},
    "huge-res": {"op": "allocate", "min": {"mem": 1e300}},
}

API_REPLIES = {
    "ok": {"v": 1, "id": 1, "ok": True},
    "error": {"v": 1, "id": 1, "ok": False, "error": {"kind": "not_exist", "message": "no such offer"}},
    "error-unknown-kind": {"v": 1, "id": 1, "ok": False, "error": {"kind": "weird", "message": "?"}},
    "pools": {"v": 1, "id": 2, "ok": True, "pools": [POOL, POOL]},
    "offers": {"v": 1, "id": 3, "ok": True, "offers": [OFFER]},
    "offer": {"v": 1, "id": 4, "ok": True, "offer": OFFER},
    "alloc": {"v": 1, "id": 5, "ok": True, "alloc": INSPECT},
    "allocs": {"v": 1, "id": 6, "ok": True, "allocs": [INSPECT, INSPECT]},
    "keepalive": {"v": 1, "id": 7, "ok": True, "interval_ms": 60000},
}

WORKER_REQUESTS = {
    "accept": {"v": 1, "rid": 1, "op": "accept", "offer": "1", "meta": META},
    "free": {"v": 1, "rid": 2, "op": "free", "alloc": "a1"},
    "keepalive": {"v": 1, "rid": 3, "op": "keepalive", "alloc": "a1", "interval_ms": 1000},
    "inspect": {"v": 1, "rid": 4, "op": "inspect", "alloc": "a1"},
    "allocs": {"v": 1, "rid": 5, "op": "allocs"},
    "offers": {"v": 1, "rid": 6, "op": "offers"},
    "slash-id": {"v": 1, "rid": 7, "op": "free", "alloc": "w1/a1"},
    "rid-float": {"v": 1, "rid": 8.0, "op": "offers"},
}

WORKER_MESSAGES = {
    "hello": {"v": 1, "type": "hello", "pool": "w1", "run": "r-1", "ts_ms": 1700000000000},
    "reply-ok": {"v": 1, "type": "reply", "rid": 1, "ok": True},
    "reply-alloc": {"v": 1, "type": "reply", "rid": 2, "ok": True, "alloc": INSPECT},
    "reply-allocs": {"v": 1, "type": "reply", "rid": 3, "ok": True, "allocs": [INSPECT]},
    "reply-offers": {"v": 1, "type": "reply", "rid": 4, "ok": True, "offers": [OFFER]},
    "reply-keepalive": {"v": 1, "type": "reply", "rid": 5, "ok": True, "interval_ms": 1000},
    "reply-error": {"v": 1, "type": "reply", "rid": 6, "ok": False,
                    "error": {"kind": "unavailable", "message": "busy"}},
    "hello-slash": {"v": 1, "type": "hello", "pool": "a/b"},
    "type-unknown": {"v": 1, "type": "bye"},
    # Over 16 KiB: the broker keeps such a list as the worker's bytes (relaying decode).
    "reply-allocs-long": {"v": 1, "type": "reply", "rid": 7, "ok": True,
                          "allocs": [dict(INSPECT, id="w1/a%d" % i) for i in range(120)]},
    "reply-allocs-long-bad": {"v": 1, "type": "reply", "rid": 8, "ok": True,
                              "allocs": [dict(INSPECT, id="w1/a%d" % i) for i in range(119)] + [{"id": "w1/x"}]},
}

ANNOUNCEMENTS = {
    "offers": {"v": 1, "pool": "w1", "run": "r-1", "seq": 3, "resources": RES, "available": RES,
               "offers": [OFFER], "allocs": 0, "ts_ms": 1700000000000, "heartbeat_ms": 1000},
    "offers-none": {"v": 1, "pool": "w1", "seq": 4, "resources": RES, "available": {},
                    "offers": [], "allocs": 2, "ts_ms": 1},
    "alloc-created": {"v": 1, "pool": "w1", "event": "created", "alloc": INSPECT, "ts_ms": 5},
    "alloc-collected": {"v": 1, "pool": "w1", "event": "collected", "alloc": INSPECT, "ts_ms": 6},
    "pool-stopped": {"v": 1, "pool": "w1", "event": "stopped", "ts_ms": 7},
    "pool-joined": {"v": 1, "pool": "w1", "event": "joined", "ts_ms": 8},
    "pool-bad-event": {"v": 1, "pool": "w1", "event": "exploded", "ts_ms": 8},
}

UNITS = ["500ms", "30s", "2m", "1h", "1m30s", "1.5s", ".5s", "", " ", "-1s", "1", "1x", "99999999999999999h",
         "8GiB", "100GB", "512", "1.5TiB", "1e3", "cpu=4,mem=8GiB,disk=100GiB,gpu=1", "cpu=4,cpu=5",
         "cpu=", "=4", "cpu=4,,mem=1", "mem=99999999999999999999TiB", "cpu=0.0005", "cpu = 4 , mem = 1KB",
         "a=1,b=2,c=3,d=4", "cpu=9000000000000000"]

JSON = dict(TRICKY)
JSON.update({"reply-alloc": API_REPLIES["alloc"], "floats": [0.1, 4.0, -0.0, float("inf"), 1e300],
             "bin": b"\x00\xff", "control": "a\x01\"\\\n"})


def write(target, seeds):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.startswith("seed-"):
            os.remove(os.path.join(directory, name))
    for name, seed in seeds.items():
        body = seed if isinstance(seed, (bytes, bytearray)) else pack(seed)
        if isinstance(seed, str) and target == "units":
            body = seed.encode()
        with open(os.path.join(directory, "seed-" + name), "wb") as f:
            f.write(body)


def with_tricky(seeds):
    out = dict(TRICKY)
    out.update(seeds)
    return out


def main():
    write("api_request", with_tricky(API_REQUESTS))
    write("api_reply", with_tricky(API_REPLIES))
    write("worker_request", with_tricky(WORKER_REQUESTS))
    write("worker_message", with_tricky(WORKER_MESSAGES))
    write("announcements", with_tricky(ANNOUNCEMENTS))
    write("units", {"%02d" % i: text for i, text in enumerate(UNITS)})
    json_seeds = {}
    for name, seed in JSON.items():
        json_seeds[name] = seed if isinstance(seed, bytes) and name in TRICKY else pack(seed)
    write("json", json_seeds)


if __name__ == "__main__":
    main()

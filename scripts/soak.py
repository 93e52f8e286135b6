#!/usr/bin/python3
"""Soak test with invariants: many clients accept, keep alive, let expire and free
allocs on several workers while workers and the broker are SIGKILLed and restarted.

Checked (any breach is a violation; exit 1 if there is one):
  capacity  - for every pool, the sum of its live allocs never exceeded its total:
              (a) every sample of the broker's `allocs` (expired-but-uncollected
              allocs included, which is stricter), and (b) a sweep over the live
              intervals the clients saw acknowledged: [created_ms, end], end being the
              earliest the lease could have ended (or the free's send time).
  durability - an acknowledged alloc is never answered not_exist while its lease
              surely still ran (so no restart lost it); at the end every alloc not
              freed still exists or had expired (collected on purpose), and no freed
              alloc came back.
  views     - at the end, the broker's allocs per pool equal what each worker has on
              disk (its state.db, read after a SIGTERM), and `pools` counts match.

Usage: /usr/bin/python3 scripts/soak.py [--seconds 30] [--clients 8] [--workers 3] [--bin DIR]
"""

import argparse
import os
import random
import signal
import sqlite3
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from harness import GiB, Cluster, PoolError, wait_until  # noqa: E402

WORKER_CPU = 4.0
WANT = {"mem": 1.0 * GiB, "disk": 1.0 * GiB}


def now_ms():
    return int(time.time() * 1000)


class Ledger:
    """What clients were told, shared by every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.allocs = {}  # id -> record
        self.ops = {}
        self.violations = []

    def count(self, op, result):
        with self.lock:
            key = "%s:%s" % (op, result)
            self.ops[key] = self.ops.get(key, 0) + 1

    def violate(self, what):
        with self.lock:
            self.violations.append(what)
        print("VIOLATION: " + what, flush=True)


class Soak:
    def __init__(self, args):
        self.args = args
        self.pools = ["s%d" % i for i in range(1, args.workers + 1)]
        workers = [(p, "cpu=%g,mem=16GiB,disk=100GiB" % WORKER_CPU) for p in self.pools]
        self.cluster = Cluster(workers, bin_dir_path=args.bin, worker_timeout="1s", heartbeat="200ms",
                               request_timeout="1s")
        self.ledger = Ledger()
        self.stop_clients = threading.Event()
        self.stop_faults = threading.Event()
        self.faults = {}
        self.samples = 0

    # -- clients --------------------------------------------------------------
    def client(self, seed):
        rnd = random.Random(seed)
        client = self.cluster.new_client(timeout_ms=2000)
        held = []
        ledger = self.ledger
        while not self.stop_clients.is_set():
            r = rnd.random()
            sent = now_ms()
            target = None
            op = None
            try:
                if len(held) < 3 and r < 0.35:
                    op = "accept"
                    pool = rnd.choice(self.pools)
                    cpu = rnd.choice((0.5, 1.0, 2.0))
                    alloc = client.accept("%s/1" % pool, dict(WANT, cpu=cpu), owner="soak%d" % seed,
                                          labels={"client": str(seed)})
                    with ledger.lock:
                        ledger.allocs[alloc["id"]] = {"pool": pool, "cpu": cpu, "created_ms": alloc["created_ms"],
                                                      "lo_exp": alloc["expires_ms"], "state": "live",
                                                      "end_ms": None}
                    held.append(alloc["id"])
                    ledger.count(op, "ok")
                    target, op, sent = alloc["id"], "keepalive", now_ms()
                    interval = rnd.randint(800, 2500)
                    granted = client.keepalive(target, interval)
                    ledger.allocs[target]["lo_exp"] = sent + granted
                elif held and r < 0.75:
                    op, target = "keepalive", rnd.choice(held)
                    interval = rnd.randint(800, 2500)
                    granted = client.keepalive(target, interval)
                    ledger.allocs[target]["lo_exp"] = sent + granted
                elif held and r < 0.87:
                    op, target = "free", rnd.choice(held)
                    client.free(target)
                    held.remove(target)
                    rec = ledger.allocs[target]
                    rec["state"], rec["end_ms"] = "freed", sent
                elif held and r < 0.95:
                    op, target = "let_expire", held.pop(rnd.randrange(len(held)))
                    ledger.allocs[target]["state"] = "abandoned"
                else:
                    op = "allocs"
                    client.allocs()
                ledger.count(op, "ok")
            except PoolError as e:
                if e.kind == "not_exist" and "is not in the mux" in str(e):
                    # The broker does not know the pool (yet): it restarted and the
                    # pool has not re-announced, or the worker is down. Says nothing
                    # about the alloc; counted apart.
                    ledger.count(op, "not_exist(pool not in mux)")
                    time.sleep(0.02)
                    continue
                ledger.count(op, e.kind)
                if op == "keepalive" and e.kind in ("timeout", "unavailable", "internal"):
                    # It may still have been applied (the reply was lost): the lease
                    # may now end as early as sent + interval.
                    rec = ledger.allocs[target]
                    rec["lo_exp"] = min(rec["lo_exp"], sent + interval)
                if e.kind == "not_exist" and target is not None:
                    rec = ledger.allocs[target]
                    # Legal only for a collected alloc, i.e. one whose lease had
                    # ended; it ended no sooner than lo_exp.
                    if sent < rec["lo_exp"]:
                        ledger.violate("%s of %s answered not_exist %d ms before its lease could end"
                                       % (op, target, rec["lo_exp"] - sent))
                    rec["state"] = "gone"
                    if target in held:
                        held.remove(target)
            time.sleep(rnd.uniform(0.005, 0.03))

    # -- observers and faults --------------------------------------------------
    def sampler(self):
        client = self.cluster.new_client(timeout_ms=1500)
        while not self.stop_clients.is_set():
            try:
                by_pool = {}
                for a in client.allocs():
                    by_pool[a["pool"]] = by_pool.get(a["pool"], 0.0) + a["resources"].get("cpu", 0.0)
                self.samples += 1
                for pool, cpu in by_pool.items():
                    if cpu > WORKER_CPU + 1e-9:
                        self.ledger.violate("pool %s lists %.1f cpu of allocs > total %.1f" % (pool, cpu, WORKER_CPU))
            except PoolError:
                pass
            time.sleep(0.25)

    def fault_loop(self):
        rnd = random.Random(7)
        while not self.stop_faults.wait(rnd.uniform(2.0, 4.0)):
            kind = rnd.choice(["worker", "worker", "broker"])
            if kind == "worker":
                wid = rnd.choice(self.pools)
                self.cluster.kill_worker(wid, signal.SIGKILL)
                time.sleep(rnd.uniform(0.2, 1.5))
                self.cluster.start_worker(wid, wait=False)
                key = "worker SIGKILL+restart"
            else:
                self.cluster.kill_broker(signal.SIGKILL)
                time.sleep(rnd.uniform(0.2, 1.0))
                self.cluster.start_broker(wait=False)
                key = "broker SIGKILL+restart"
            self.faults[key] = self.faults.get(key, 0) + 1
            print("fault: %s" % key, flush=True)

    # -- final checks -----------------------------------------------------------
    def sweep_capacity(self):
        """Client-side: per pool, acknowledged live intervals never sum above the total."""
        events = {}
        for alloc_id, rec in self.ledger.allocs.items():
            end = rec["end_ms"] if rec["state"] == "freed" else rec["lo_exp"]
            if end <= rec["created_ms"]:
                continue
            events.setdefault(rec["pool"], []).extend([(rec["created_ms"], 1, rec["cpu"]), (end, 0, -rec["cpu"])])
        peak = {}
        for pool, evs in events.items():
            evs.sort()  # at equal times the end (0) comes before the start (1)
            used = 0.0
            for t, _, delta in evs:
                used += delta
                peak[pool] = max(peak.get(pool, 0.0), used)
                if used > WORKER_CPU + 1e-9:
                    self.ledger.violate("pool %s: acknowledged live allocs reached %.1f cpu at %d" % (pool, used, t))
                    break
        return peak

    def final_checks(self):
        c = self.cluster
        if not c.broker.running:
            c.start_broker()
        for wid, proc in c.workers.items():
            if not proc.running:
                c.start_worker(wid, wait=False)
        c.wait_pools(set(self.pools), 15.0)
        client = c.new_client(timeout_ms=3000)
        # Every worker answers again before we judge.
        for pool in self.pools:
            wait_until(lambda: client.allocs(pool=pool) is not None, 10.0, what="allocs of %s" % pool)
        now = now_ms()
        for alloc_id, rec in self.ledger.allocs.items():
            try:
                client.inspect(alloc_id)
                exists = True
            except PoolError as e:
                if e.kind != "not_exist":
                    self.ledger.violate("final inspect of %s: %s" % (alloc_id, e))
                    continue
                exists = False
            if rec["state"] == "freed" and exists:
                self.ledger.violate("freed alloc %s came back" % alloc_id)
            if rec["state"] in ("live", "abandoned") and not exists and now < rec["lo_exp"]:
                self.ledger.violate("alloc %s vanished before its lease ended" % alloc_id)

        # Broker's view against each worker's disk.
        time.sleep(3 * c.heartbeat_s)
        broker_allocs = {}
        for a in client.allocs():
            broker_allocs.setdefault(a["pool"], set()).add(a["id"])
        counts = {p["id"]: p["allocs"] for p in client.pools()}
        for pool in self.pools:
            code = c.workers[pool].stop()
            if code != 0:
                self.ledger.violate("worker %s exited %r on SIGTERM" % (pool, code))
            db = os.path.join(c.root, "state-" + pool, "state.db")
            con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
            on_disk = {"%s/%s" % (pool, row[0]) for row in con.execute("SELECT local_id FROM allocs")}
            con.close()
            listed = broker_allocs.get(pool, set())
            if listed != on_disk:
                self.ledger.violate("pool %s: broker lists %d allocs, disk has %d (diff %s)"
                                    % (pool, len(listed), len(on_disk), sorted(listed ^ on_disk)[:5]))
            if counts.get(pool) != len(listed):
                self.ledger.violate("pool %s: pools says %r allocs, allocs lists %d" % (pool, counts.get(pool),
                                                                                        len(listed)))
        return sum(len(v) for v in broker_allocs.values())

    def run(self):
        t0 = time.monotonic()
        threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(self.args.clients)]
        threads.append(threading.Thread(target=self.sampler, daemon=True))
        faults = threading.Thread(target=self.fault_loop, daemon=True)
        for t in threads:
            t.start()
        faults.start()
        time.sleep(max(0.0, self.args.seconds - 3.0))
        self.stop_faults.set()
        faults.join(30)
        time.sleep(min(3.0, self.args.seconds))
        self.stop_clients.set()
        for t in threads:
            t.join(30)
        peak = self.sweep_capacity()
        remaining = self.final_checks()
        elapsed = time.monotonic() - t0
        ops = sum(n for k, n in self.ledger.ops.items())
        print("\n=== soak: %.1f s, %d workers, %d clients ===" % (elapsed, len(self.pools), self.args.clients))
        print("operations: %d" % ops)
        for k in sorted(self.ledger.ops):
            print("  %-24s %d" % (k, self.ledger.ops[k]))
        print("acknowledged allocs: %d (freed %d, left to expire %d, collected/gone %d, alive at end %d)"
              % (len(self.ledger.allocs),
                 sum(1 for r in self.ledger.allocs.values() if r["state"] == "freed"),
                 sum(1 for r in self.ledger.allocs.values() if r["state"] == "abandoned"),
                 sum(1 for r in self.ledger.allocs.values() if r["state"] == "gone"), remaining))
        print("faults injected: %d %s" % (sum(self.faults.values()), dict(self.faults)))
        print("capacity samples of the broker's allocs: %d; peak acknowledged cpu per pool: %s (total %g)"
              % (self.samples, {k: round(v, 1) for k, v in sorted(peak.items())}, WORKER_CPU))
        print("violations: %d" % len(self.ledger.violations))
        for v in self.ledger.violations[:20]:
            print("  " + v)
        return 1 if self.ledger.violations else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--bin", default=None, help="directory of pool-broker/pool-worker (default $POOLBUS_BIN)")
    parser.add_argument("--keep", action="store_true", help="keep the cluster's directory (logs, state)")
    args = parser.parse_args()
    soak = Soak(args)
    try:
        code = soak.run()
    finally:
        soak.cluster.stop()
        if code_dir_kept(args, soak):
            print("logs and state in %s" % soak.cluster.root)
        else:
            soak.cluster.cleanup()
    return code


def code_dir_kept(args, soak):
    return args.keep or bool(soak.ledger.violations)


if __name__ == "__main__":
    sys.exit(main())

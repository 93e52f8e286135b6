"""Several brokers at once (protocol.md "Several brokers"): two real brokers and
two real workers, each worker given --connect/--announce once per broker. Both
brokers list and route to both pools; the worker stays the one authority over
its resources, so accepts racing through both brokers never oversubscribe a
pool; an alloc taken through one broker is freed through the other; a client
given both API endpoints keeps an alloc alive across the loss of one broker,
and a restarted broker relearns every pool."""

import os
import shutil
import tempfile
import threading
import time
import unittest

from harness import (PoolError, Process, bin_dir, binaries_present, free_ports, poolbus, wait_until)

HEARTBEAT = "200ms"
CPUS = 4


class Broker:
    def __init__(self, root, name):
        api, stream, workers, announce = free_ports(4)
        self.api = "tcp://127.0.0.1:%d" % api
        self.stream = "tcp://127.0.0.1:%d" % stream
        self.workers = "tcp://127.0.0.1:%d" % workers
        self.announce = "tcp://127.0.0.1:%d" % announce
        self.proc = Process(name, [os.path.join(bin_dir(), "pool-broker"), "--api", self.api, "--stream", self.stream,
                                   "--workers", self.workers, "--announce", self.announce,
                                   "--worker-timeout", "1s", "--request-timeout", "1s"],
                            os.path.join(root, name + ".log"))


@unittest.skipUnless(binaries_present(), "pool-broker/pool-worker not found in %s" % bin_dir())
class SeveralBrokersTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="poolbus-brokers-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.brokers = [Broker(self.root, "broker-a"), Broker(self.root, "broker-b")]
        self.workers = {}
        for wid in ("w1", "w2"):
            argv = [os.path.join(bin_dir(), "pool-worker"), "--id", wid, "--resources", "cpu=%d,mem=8GiB,disk=10GiB" % CPUS,
                    "--state-dir", os.path.join(self.root, "state-" + wid), "--heartbeat", HEARTBEAT]
            for b in self.brokers:
                argv += ["--connect", b.workers, "--announce", b.announce]
            self.workers[wid] = Process(wid, argv, os.path.join(self.root, wid + ".log"))
        for p in [b.proc for b in self.brokers] + list(self.workers.values()):
            p.start()
            self.addCleanup(p.stop)
        self.clients = [self.client(b.api) for b in self.brokers]
        for c in self.clients:
            wait_until(lambda: {p["id"] for p in c.pools()} == {"w1", "w2"}, 10.0, what="both pools on a broker")

    def client(self, api, timeout_ms=2000):
        c = poolbus.Client(api, timeout_ms=timeout_ms)
        self.addCleanup(c.close)
        return c

    def logs(self):
        return "\n".join("--- %s\n%s" % (p.name, p.log_text()[-3000:])
                         for p in [b.proc for b in self.brokers] + list(self.workers.values()))

    def allocs_on(self, client, pool):
        return sorted(a["id"] for a in client.allocs(pool=pool))

    def test_accepts_through_both_brokers_never_oversubscribe(self):
        results, lock = [], threading.Lock()

        def take(client):
            for _ in range(CPUS):
                try:
                    a = client.accept("w1/1", {"cpu": 1})
                except PoolError as e:
                    a = e.kind
                with lock:
                    results.append(a)

        threads = [threading.Thread(target=take, args=(self.client(b.api),)) for b in self.brokers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        taken = [r for r in results if isinstance(r, dict)]
        self.assertEqual(len(results), 2 * CPUS)
        self.assertEqual(len(taken), CPUS, "w1 has %d cpus; got %r\n%s" % (CPUS, results, self.logs()))
        self.assertTrue(all(r in ("not_exist", "unavailable") for r in results if not isinstance(r, dict)), results)
        want = sorted(a["id"] for a in taken)
        for c in self.clients:  # both brokers see the worker's truth
            self.assertEqual(self.allocs_on(c, "w1"), want)
            wait_until(lambda: [p["available"].get("cpu") for p in c.pools() if p["id"] == "w1"] == [0.0], 5.0,
                       what="w1 shows no cpu left on each broker")

    def test_an_alloc_taken_through_one_broker_is_freed_through_the_other(self):
        a_client, b_client = self.clients
        alloc = a_client.allocate({"cpu": 2})
        self.assertEqual(b_client.inspect(alloc["id"])["id"], alloc["id"])
        b_client.free(alloc["id"])
        with self.assertRaises(PoolError) as cm:
            a_client.inspect(alloc["id"])
        self.assertEqual(cm.exception.kind, "not_exist")

    def test_a_client_of_both_keeps_its_alloc_alive_across_a_broker_loss(self):
        a, b = self.brokers
        both = self.client([a.api, b.api], timeout_ms=1000)
        alloc = both.allocate({"cpu": 1})
        self.assertEqual(both.api, a.api)
        a.proc.kill()
        granted = both.keepalive(alloc["id"], 60000)  # a's timeout, then b answers
        self.assertGreater(granted, 0)
        self.assertEqual(both.api, b.api)
        self.assertEqual(both.inspect(alloc["id"])["last_keepalive_ms"] > 0, True)
        # A restarted broker relearns every pool from the workers' hellos and announcements.
        a.proc.start()
        fresh = self.client(a.api)
        wait_until(lambda: {p["id"] for p in fresh.pools()} == {"w1", "w2"}, 5.0,
                   what="the restarted broker lists both pools again")
        self.assertEqual(fresh.inspect(alloc["id"])["id"], alloc["id"])
        both.free(alloc["id"])

    def test_a_subscriber_of_both_streams_sees_each_worker_event_once(self):
        streams = [b.stream for b in self.brokers]
        with poolbus.Subscriber(streams, ["allocs.", "offers.w1"]) as sub:
            wait_until(lambda: sub.recv(200) is not None, 5.0, what="the subscription is live")
            alloc = self.clients[0].accept("w1/1", {"cpu": 1})
            self.clients[1].free(alloc["id"])
            events, deadline = [], time.monotonic() + 3.0
            while time.monotonic() < deadline:
                got = sub.recv(200)
                if got and got[0] == "allocs.w1" and got[1]["alloc"]["id"] == alloc["id"]:
                    events.append(got[1]["event"])
            self.assertEqual(events, ["created", "freed"], "each once, though both brokers republish them")
        with poolbus.Subscriber(streams[0], "allocs.") as one:  # one broker: nothing is dropped
            wait_until(lambda: self.clients[0].ping(), 1.0)
            self.assertFalse(one._dedupe)

    def test_worker_flags_come_in_pairs(self):
        r = Process("bad", [os.path.join(bin_dir(), "pool-worker"), "--id", "x", "--connect", "tcp://127.0.0.1:1",
                            "--connect", "tcp://127.0.0.1:2", "--announce", "tcp://127.0.0.1:3",
                            "--state-dir", os.path.join(self.root, "bad")], os.path.join(self.root, "bad.log"))
        r.start()
        self.assertEqual(r.popen.wait(10), 2)
        self.assertIn("come in pairs", r.log_text())


if __name__ == "__main__":
    unittest.main()

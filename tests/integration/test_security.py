"""CURVE security end to end (docs/security.md): keys made with `poolctl keygen`,
a broker with --curve-dir and an authorized_keys file, workers and clients with
their own keys. Refused peers get nothing and the broker logs them; the right
ones work; allocs belong to the key that took them."""

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

from harness import (Cluster, PoolError, bin_dir, binaries_present, poolbus, same_resources, wait_until,
                     _die_with_parent)
from poolbus import PoolTimeout
import dash_support as ds

W1_RES = "cpu=4,mem=8GiB,disk=100GiB"
IMPOSTOR_RES = "cpu=64,mem=512GiB,disk=1000GiB"

# name -> role in authorized_keys; "stranger" gets a key but is not listed.
IDENTITIES = {"alice": "client", "bob": "client", "ops": "admin", "dash": "observer",
              "w1": "worker", "evil": "worker", "stranger": None}


def run(argv, timeout=20.0):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, text=True, preexec_fn=_die_with_parent)


def keygen(out, name, role="client"):
    r = run([os.path.join(bin_dir(), "poolctl"), "keygen", "--out", out, "--name", name, "--role", role])
    if r.returncode != 0:
        raise AssertionError("poolctl keygen failed: %s" % r.stderr)
    return r.stdout


def body_of(dash, path):
    return json.loads(dash.get(path).text)


def public_key(directory, name):
    with open(os.path.join(directory, name + ".pub")) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")][0]


@unittest.skipUnless(binaries_present(), "pool-broker/pool-worker not found in %s" % bin_dir())
class SecurityTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="poolbus-sec-")
        cls.broker_dir = os.path.join(cls.root, "broker")
        cls.keys = os.path.join(cls.root, "keys")
        cls.keygen_output = keygen(cls.broker_dir, "broker", "admin")
        lines = ["# role public-key name"]
        for name, role in IDENTITIES.items():
            out = keygen(cls.keys, name, role or "client")
            if role is not None:
                lines.append(out.strip().splitlines()[-1])  # the printed authorized_keys line
        with open(os.path.join(cls.broker_dir, "authorized_keys"), "w") as f:
            f.write("\n".join(lines) + "\n")
        shutil.copy(os.path.join(cls.broker_dir, "broker.pub"), os.path.join(cls.keys, "broker.pub"))
        cls.cluster = Cluster(workers=[("w1", W1_RES, ["--curve-dir", cls.keys, "--curve-name", "w1"])],
                              broker_args=["--curve-dir", cls.broker_dir], start=False)
        cls.cluster.client_curve = cls.curve("alice")
        try:
            cls.cluster.start()
        except BaseException:
            print(cls.cluster.log_text())
            cls.cluster.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()
        shutil.rmtree(cls.root, ignore_errors=True)

    @classmethod
    def curve(cls, name):
        return poolbus.load_curve(cls.keys, name)

    def client(self, name=None, timeout_ms=3000):
        c = poolbus.Client(self.cluster.api, timeout_ms=timeout_ms, curve=self.curve(name) if name else None)
        self.addCleanup(c.close)
        return c

    def broker_log(self):
        return self.cluster.broker.log_text()

    def assertLogged(self, text, timeout=5.0):
        wait_until(lambda: text in self.broker_log(), timeout, what="broker log to mention %r" % text)

    def tearDown(self):
        c = self.client("ops")
        for a in c.allocs():
            try:
                c.free(a["id"])
            except PoolError:
                pass

    # -- the right peers work --------------------------------------------------
    def test_authorized_client_works_and_owns_what_it_takes(self):
        alice = self.client("alice")
        self.assertTrue(alice.ping())
        self.assertEqual({p["id"] for p in alice.pools()}, {"w1"})
        a = alice.allocate({"cpu": 1, "mem": 1 << 30, "disk": 1 << 30}, owner="mallory")
        self.assertEqual(a["meta"]["owner"], "client:alice")  # the key's identity, not what was sent
        offer = alice.offers()[0]
        b = alice.accept(offer["id"], {"cpu": 1}, owner="someone-else")
        self.assertEqual(alice.inspect(b["id"])["meta"]["owner"], "client:alice")
        alice.free(a["id"])
        alice.free(b["id"])

    def test_poolctl_with_curve(self):
        base = [os.path.join(bin_dir(), "poolctl"), "--api", self.cluster.api, "--curve-dir", self.keys]
        r = run(base + ["--curve-name", "alice", "pools", "--json"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("w1", r.stdout)
        r = run(base + ["--curve-name", "alice", "allocate", "--min", "cpu=1", "--json"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("client:alice", r.stdout)
        r = run([os.path.join(bin_dir(), "poolctl"), "--api", self.cluster.api, "--timeout", "500ms", "pools"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("timeout", r.stderr)
        self.assertIn("public key: ", self.keygen_output)
        self.assertIn("admin %s broker" % public_key(self.broker_dir, "broker"), self.keygen_output)

    # -- refused peers get nothing, and the broker says so ---------------------
    def test_plaintext_client_gets_nothing(self):
        plain = self.client(None, timeout_ms=500)
        with self.assertRaises(PoolTimeout):
            plain.ping()
        self.assertLogged("security: refused a connection on api")
        self.assertLogged("plaintext peer")

    def test_unknown_key_is_refused(self):
        stranger = self.client("stranger", timeout_ms=500)
        with self.assertRaises(PoolTimeout):
            stranger.ping()
        self.assertLogged("security: refused key %s on api" % public_key(self.keys, "stranger"))

    def test_wrong_server_key_gets_nothing(self):
        pub, sec, _ = self.curve("alice")
        wrong = poolbus.Client(self.cluster.api, timeout_ms=500, curve=(pub, sec, public_key(self.keys, "bob")))
        self.addCleanup(wrong.close)
        with self.assertRaises(PoolTimeout):
            wrong.ping()

    def test_pool_dash_reads_the_stream_as_observer_and_the_api_as_client(self):
        if not ds.dash_present():
            self.fail("pool-dash not found at %s" % ds.dash_binary())
        a = self.client("alice").allocate({"cpu": 1, "mem": 1 << 30, "disk": 1 << 30})
        dash = ds.PoolDash(self.cluster, extra_args=["--curve-dir", self.keys, "--curve-name", "alice",
                                                     "--observer-name", "dash"]).start()
        self.addCleanup(dash.stop)

        wait_until(lambda: body_of(dash, "/api/stats")["broker_up"] is True, 10.0, what="pool-dash reaches the broker")
        wait_until(lambda: [p["allocs"] for p in body_of(dash, "/api/pools")["pools"]] == [1], 10.0,
                   what="pool-dash shows w1 with its alloc (the stream, as observer)")
        r = dash.get("/api/allocs")
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual([x["id"] for x in json.loads(r.text)["allocs"]], [a["id"]])
        # With no keys the broker refuses it: the page says so, /metrics too.
        plain = ds.PoolDash(self.cluster).start()
        self.addCleanup(plain.stop)
        wait_until(lambda: plain.get("/metrics").text.count("poolbus_broker_up 0") == 1, 10.0,
                   what="a keyless pool-dash reports the broker unreachable")
        self.assertEqual(body_of(plain, "/api/pools")["pools"], [])

    def test_worker_key_cannot_use_the_api(self):
        with self.assertRaises(PoolTimeout):
            self.client("w1", timeout_ms=500).ping()
        self.assertLogged("role worker (w1) may not use api")

    def test_observer_may_watch_but_not_ask(self):
        with poolbus.Subscriber(self.cluster.stream, "offers.", curve=self.curve("dash")) as sub:
            got = sub.recv(5000)
            self.assertIsNotNone(got, "the observer saw no offer on the stream")
            self.assertEqual(got[0], "offers.w1")
        with self.assertRaises(PoolTimeout):
            self.client("dash", timeout_ms=500).ping()
        self.assertLogged("role observer (dash) may not use api")
        with poolbus.Subscriber(self.cluster.stream, "") as plain, \
                poolbus.Subscriber(self.cluster.stream, "", curve=self.curve("stranger")) as unknown:
            self.assertIsNone(plain.recv(1500))
            self.assertIsNone(unknown.recv(500))
        self.assertLogged("security: refused a connection on stream")
        self.assertLogged("security: refused key %s on stream" % public_key(self.keys, "stranger"))

    # -- ownership ---------------------------------------------------------------
    def test_only_the_owner_or_an_admin_may_keep_alive_or_free(self):
        alice, bob, ops = self.client("alice"), self.client("bob"), self.client("ops")
        a = alice.allocate({"cpu": 1, "mem": 1 << 30, "disk": 1 << 30})
        uri = a["id"]
        with self.assertRaises(PoolError) as cm:
            bob.keepalive(uri, 60_000)
        self.assertEqual(cm.exception.kind, "unauthorized")
        with self.assertRaises(PoolError) as cm:
            bob.free(uri)
        self.assertEqual(cm.exception.kind, "unauthorized")
        self.assertEqual(bob.inspect(uri)["meta"]["owner"], "client:alice")  # still there, still alice's
        self.assertLogged("security: client:bob may not free %s (owner client:alice)" % uri)
        self.assertGreater(alice.keepalive(uri, 60_000), 0)
        self.assertGreater(ops.keepalive(uri, 60_000), 0)
        ops.free(uri)
        with self.assertRaises(PoolError) as cm:
            alice.free(uri)
        self.assertEqual(cm.exception.kind, "not_exist")
        b = bob.allocate({"cpu": 1})
        self.assertEqual(b["meta"]["owner"], "client:bob")
        bob.free(b["id"])

    def test_only_an_admin_may_drain(self):
        alice, ops = self.client("alice"), self.client("ops")
        with self.assertRaises(PoolError) as cm:
            alice.drain("w1")
        self.assertEqual(cm.exception.kind, "unauthorized")
        self.assertFalse(alice.pools()[0]["draining"])  # nothing changed
        self.assertLogged("security: client:alice may not drain w1 (admins only)")
        self.assertTrue(ops.drain("w1")["draining"])
        try:
            self.assertEqual(alice.offers(), [])
        finally:
            self.assertFalse(ops.drain("w1", drain=False)["draining"])
        wait_until(lambda: len(alice.offers()) == 1, 5.0, what="the offer back after the undrain")

    # -- no pool hijacking -------------------------------------------------------
    def test_a_second_worker_with_another_key_cannot_take_a_live_pool(self):
        state = os.path.join(self.root, "state-impostor")
        os.makedirs(state, exist_ok=True)
        impostor = self.cluster.add_worker("impostor", IMPOSTOR_RES, ["--curve-dir", self.keys, "--curve-name", "evil"])
        # Same pool id as the live w1, its own (authorized worker) key.
        impostor.argv[impostor.argv.index("--id") + 1] = "w1"
        impostor.argv[impostor.argv.index("--state-dir") + 1] = state
        try:
            impostor.start()
            self.assertLogged("dropped an announcement for pool w1 from worker:evil: the pool is live under worker:w1")
            alice = self.client("alice")
            w1_total = poolbus.parse_resources(W1_RES)
            deadline = time.monotonic() + 1.5  # several impostor heartbeats
            while time.monotonic() < deadline:
                offer = self.cluster.offer_of("w1")
                self.assertIsNotNone(offer)
                self.assertTrue(same_resources(offer["available"], w1_total), offer)
                time.sleep(0.1)
            a = alice.allocate({"cpu": 2})
            self.assertEqual(a["pool"], "w1")
            self.assertTrue(same_resources(a["resources"], {"cpu": 2}, ["cpu"]))
            # The real w1 served it (the impostor has 64 cpus): its own offer shrank.
            wait_until(lambda: abs(self.cluster.offer_of("w1")["available"]["cpu"] - 2) < 1e-6, 3.0,
                       what="w1's offer down to 2 cpus")
            self.assertGreater(alice.keepalive(a["id"], 60_000), 0)
            alice.free(a["id"])
        finally:
            impostor.stop()
            del self.cluster.workers["impostor"]

    # -- key files -----------------------------------------------------------------
    def test_a_readable_secret_key_is_refused(self):
        loose = os.path.join(self.root, "loose")
        shutil.copytree(self.keys, loose)
        os.chmod(os.path.join(loose, "w1.key"), 0o644)
        r = run([os.path.join(bin_dir(), "pool-worker"), "--id", "x", "--connect", self.cluster.workers_ep,
                 "--announce", self.cluster.announce_ep, "--state-dir", os.path.join(self.root, "state-x"),
                 "--resources", "cpu=1", "--curve-dir", loose, "--curve-name", "w1"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("accessible by group/others (mode 0644)", r.stderr)
        self.assertIn("chmod 600", r.stderr)
        os.chmod(os.path.join(loose, "alice.key"), 0o640)
        r = run([os.path.join(bin_dir(), "poolctl"), "--api", self.cluster.api, "--curve-dir", loose,
                 "--curve-name", "alice", "pools"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("chmod 600", r.stderr)
        with self.assertRaises(PermissionError):
            poolbus.load_curve(loose, "alice")

    def test_broker_generates_its_keys_on_first_start(self):
        fresh = os.path.join(self.root, "fresh-broker")
        os.makedirs(fresh)
        with open(os.path.join(fresh, "authorized_keys"), "w") as f:
            f.write("client %s alice\n" % public_key(self.keys, "alice"))
        c = Cluster(workers=[], broker_args=["--curve-dir", fresh, "--curve-generate"], start=False)
        try:
            c.broker.start()
            wait_until(lambda: os.path.exists(os.path.join(fresh, "broker.pub")), 5.0, what="broker.pub")
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(fresh, "broker.key")).st_mode), 0o600)
            pub, sec, _ = self.curve("alice")
            c.client_curve = (pub, sec, public_key(fresh, "broker"))
            wait_until(lambda: c.client(timeout_ms=300).ping(), 5.0, what="ping over CURVE")
        finally:
            c.cleanup()
        no_keys = os.path.join(self.root, "no-keys")
        os.makedirs(no_keys)
        r = run([os.path.join(bin_dir(), "pool-broker"), "--curve-dir", no_keys, "--api", "tcp://127.0.0.1:0"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--curve-generate", r.stderr)


if __name__ == "__main__":
    unittest.main()

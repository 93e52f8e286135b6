"""poolctl from the outside: each API command with --json (stdout parsed as JSON),
and its exit codes (1 with a one-line error on stderr; non-zero on a bad flag)."""

import json
import os
import subprocess
import unittest

from harness import GiB, ClusterTestCase, bin_dir, free_ports, poolbus

SMALL_SPEC = "cpu=1,mem=1GiB,disk=1GiB"
SMALL = {"cpu": 1.0, "mem": 1.0 * GiB, "disk": 1.0 * GiB}


def unwrap(doc, key):
    """poolctl may print the bare value or the reply map: accept both."""
    if isinstance(doc, dict) and key in doc and not (key == "alloc" and "pool" in doc):
        return doc[key]
    return doc


class PoolctlTest(ClusterTestCase):
    WORKERS = (("c1", "cpu=4,mem=8GiB,disk=100GiB"), ("c2", "cpu=8,mem=16GiB,disk=200GiB"))

    def setUp(self):
        if not os.access(os.path.join(bin_dir(), "poolctl"), os.X_OK):
            self.fail("poolctl not found in %s" % bin_dir())
        super().setUp()

    def ctl(self, *args):
        return self.cluster.poolctl(*args)

    def ctl_json(self, *args):
        done = self.ctl(*(list(args) + ["--json"]))
        self.assertEqual(done.returncode, 0, "poolctl %s: rc=%d stderr=%r" % (args, done.returncode, done.stderr))
        try:
            return json.loads(done.stdout)
        except ValueError as e:
            self.fail("poolctl %s --json printed non-JSON (%s): %r" % (args, e, done.stdout[:500]))

    def assertOneLineError(self, done, rc=1):
        if rc is None:
            self.assertNotEqual(done.returncode, 0, done)
        else:
            self.assertEqual(done.returncode, rc, "rc; stdout=%r stderr=%r" % (done.stdout, done.stderr))
        lines = done.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, "want one error line on stderr, got %r" % done.stderr)
        self.assertTrue(lines[0].strip())

    def test_json_flag_before_or_after_the_command(self):
        # protocol.md's synopsis puts [--json] after the command; a global flag
        # before it is the other natural reading. Both must work.
        for argv in (["--json", "pools"], ["pools", "--json"]):
            with self.subTest(argv=argv):
                done = self.ctl(*argv)
                self.assertEqual(done.returncode, 0, "poolctl %s: %r" % (" ".join(argv), done.stderr))
                pools = unwrap(json.loads(done.stdout), "pools")
                self.assertEqual({p["id"] for p in pools}, {"c1", "c2"})

    def test_api_list_fails_over_past_a_broker_that_does_not_answer(self):
        dead = "tcp://127.0.0.1:%d" % free_ports(1)[0]  # nothing listens there
        argv = [os.path.join(bin_dir(), "poolctl"), "--api", dead + "," + self.cluster.api, "--timeout", "500ms",
                "--json", "pools"]
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual({p["id"] for p in unwrap(json.loads(done.stdout), "pools")}, {"c1", "c2"})
        # Only dead ones: the call's own timeout, once per endpoint, then exit 1.
        argv[2] = dead + "," + dead
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20)
        self.assertOneLineError(done)
        self.assertIn("timeout", done.stderr)
        argv[2] = dead + ",not-an-endpoint"
        self.assertNotEqual(subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20).returncode, 0)
        # The Python client takes the same list, and keeps the broker that answered.
        with poolbus.Client([dead, self.cluster.api], timeout_ms=500) as c:
            self.assertEqual({p["id"] for p in c.pools()}, {"c1", "c2"})
            self.assertEqual(c.api, self.cluster.api)

    def test_pools_and_offers(self):
        pools = unwrap(self.ctl_json("pools"), "pools")
        self.assertEqual({p["id"] for p in pools}, {"c1", "c2"})
        for p in pools:
            self.assertIn("resources", p)
            self.assertIn("available", p)
        offers = unwrap(self.ctl_json("offers"), "offers")
        self.assertEqual({o["id"] for o in offers}, {"c1/1", "c2/1"})
        c1 = [o for o in offers if o["id"] == "c1/1"][0]
        self.assertResources(c1["available"], {"cpu": 4.0, "mem": 8.0 * GiB, "disk": 100.0 * GiB})

    def test_accept_inspect_keepalive_free(self):
        alloc = unwrap(self.ctl_json("accept", "c1/1", "--want", SMALL_SPEC), "alloc")
        self.assertEqual(alloc["pool"], "c1")
        self.assertResources(alloc["resources"], SMALL)
        uri = alloc["id"]
        self.assertEqual(self.c.inspect(uri)["id"], uri)

        inspected = unwrap(self.ctl_json("inspect", uri), "alloc")
        self.assertEqual((inspected["id"], inspected["created_ms"]), (uri, alloc["created_ms"]))

        listed = unwrap(self.ctl_json("allocs"), "allocs")
        self.assertEqual([a["id"] for a in listed], [uri])

        granted = unwrap(self.ctl_json("keepalive", uri, "--interval", "10s"), "interval_ms")
        self.assertEqual(granted, 10000)
        after = self.c.inspect(uri)
        self.assertEqual(after["expires_ms"], after["last_keepalive_ms"] + 10000)

        done = self.ctl("free", uri)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertPoolError("not_exist", self.c.inspect, uri)

        done = self.ctl("free", uri)
        self.assertOneLineError(done, 1)
        done = self.ctl("inspect", uri)
        self.assertOneLineError(done, 1)

    def test_allocate(self):
        alloc = unwrap(self.ctl_json("allocate", "--min", SMALL_SPEC), "alloc")
        self.assertEqual(alloc["pool"], "c1")  # best fit
        self.assertResources(alloc["resources"], SMALL)
        wide = unwrap(self.ctl_json("allocate", "--min", SMALL_SPEC, "--width", "1"), "alloc")
        self.assertResources(wide["resources"], {k: 2 * v for k, v in SMALL.items()})
        self.assertEqual({a["id"] for a in self.c.allocs()}, {alloc["id"], wide["id"]})

    def test_errors_exit_1_with_one_line(self):
        self.assertOneLineError(self.ctl("accept", "c1/1", "--want", "cpu=100"), 1)      # not_exist
        self.assertOneLineError(self.ctl("allocate", "--min", "cpu=100"), 1)             # unavailable
        self.assertOneLineError(self.ctl("inspect", "c1/nope"), 1)                       # not_exist
        self.assertOneLineError(self.ctl("inspect", "noslash"), 1)                       # invalid
        self.assertOneLineError(self.ctl("keepalive", "c1/nope", "--interval", "1s"), 1)
        self.assertEqual(self.c.allocs(), [])

    def test_bad_flags_exit_non_zero(self):
        for args in (["--no-such-flag", "pools"], ["pools", "--bogus"], ["no-such-command"],
                     ["accept", "c1/1", "--want", "cpu=lots"], ["keepalive", "c1/x", "--interval", "soon"],
                     ["allocate", "--min", SMALL_SPEC, "--width", "-1"], ["accept"]):
            with self.subTest(args=args):
                done = self.ctl(*args)
                self.assertNotEqual(done.returncode, 0, "poolctl %s succeeded: %r" % (args, done.stdout))
                self.assertTrue(done.stderr.strip(), "no error on stderr for %s" % args)
                self.assertEqual(len(done.stderr.strip().splitlines()), 1,
                                 "want one line on stderr for %s: %r" % (args, done.stderr))
        self.assertEqual(self.c.allocs(), [])

    def test_bad_flags_of_other_programs(self):
        import subprocess
        for prog, args in (("pool-broker", ["--worker-timeout", "soon"]), ("pool-broker", ["--nope"]),
                           ("pool-worker", ["--id", "x", "--resources", "cpu=-1"]),
                           ("pool-worker", ["--id", "x", "--heartbeat", "fast"]),
                           ("pool-worker", ["--bogus"])):
            with self.subTest(prog=prog, args=args):
                done = subprocess.run([os.path.join(bin_dir(), prog)] + args, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, timeout=10)
                self.assertNotEqual(done.returncode, 0)
                self.assertTrue(done.stderr.strip())


if __name__ == "__main__":
    unittest.main()

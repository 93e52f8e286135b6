"""The deployable install: `cpack -G DEB` in the build tree makes the .deb; it is
unpacked into a scratch root (dpkg -x) and the installed programs run from there
with the installed config files, as the systemd units run them (the command line
overriding the endpoints, as it overrides any config key); the units pass
`systemd-analyze verify` (their ExecStart pointed into the scratch root)."""

import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

from harness import Process, bin_dir, free_ports, wait_until

BUILD = os.path.dirname(os.path.abspath(bin_dir()))


def run(argv, timeout=60, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)


@unittest.skipUnless(shutil.which("cpack") and shutil.which("dpkg-deb"), "!!! cpack or dpkg-deb missing: NOT run")
@unittest.skipUnless(os.path.exists(os.path.join(BUILD, "CPackConfig.cmake")), "no CPackConfig.cmake in %s" % BUILD)
class InstallTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="poolbus-install-")
        made = run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", cls.tmp],
                   timeout=300, cwd=BUILD)
        if made.returncode != 0:
            raise AssertionError("cpack failed:\n%s\n%s" % (made.stdout, made.stderr))
        debs = glob.glob(os.path.join(cls.tmp, "poolbus_*.deb"))
        assert len(debs) == 1, debs
        cls.deb = debs[0]
        cls.root = os.path.join(cls.tmp, "root")
        unpacked = run(["dpkg", "-x", cls.deb, cls.root])
        assert unpacked.returncode == 0, unpacked.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def test_package_metadata_and_layout(self):
        info = run(["dpkg-deb", "-I", self.deb]).stdout
        for dep in ("libcaf-core0.17", "libzmq5", "libsqlite3-0", "libcpp-httplib0.11", "python3-zmq", "python3-msgpack"):
            self.assertIn(dep, info)
        self.assertIn("/etc/poolbus/broker.toml", run(["dpkg-deb", "-I", self.deb, "conffiles"]).stdout)
        for f in ("usr/bin/pool-broker", "usr/bin/pool-worker", "usr/bin/pool-exec-init", "usr/bin/poolctl",
                  "usr/bin/pool-dash"):
            self.assertTrue(os.access(self.path(f), os.X_OK), f)
        for f in ("etc/poolbus/broker.toml", "etc/poolbus/dash.toml", "usr/share/doc/poolbus/examples/worker.toml",
                  "usr/lib/systemd/system/pool-broker.service", "usr/lib/systemd/system/pool-worker@.service",
                  "usr/lib/systemd/system/pool-dash.service", "usr/lib/python3/dist-packages/poolbus.py"):
            self.assertTrue(os.path.isfile(self.path(f)), f)

    @unittest.skipUnless(shutil.which("systemd-analyze"), "!!! systemd-analyze missing: units NOT verified")
    def test_units_verify(self):
        units = os.path.join(self.tmp, "units")
        os.makedirs(units, exist_ok=True)
        for name, as_name in (("pool-broker.service", None), ("pool-dash.service", None),
                              ("pool-worker@.service", "pool-worker@w1.service")):
            with open(self.path("usr/lib/systemd/system", name)) as f:
                text = f.read().replace("/usr/bin/", self.path("usr/bin") + "/")
            with open(os.path.join(units, as_name or name), "w") as f:
                f.write(text)
        checked = run(["systemd-analyze", "verify", "--man=no"] + sorted(glob.glob(os.path.join(units, "*"))))
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)

    def test_installed_programs_run_a_cluster_from_their_configs(self):
        api, stream, workers, announce, http = ["tcp://127.0.0.1:%d" % p for p in free_ports(4)] + [free_ports(1)[0]]
        logs = os.path.join(self.tmp, "logs")
        os.makedirs(logs, exist_ok=True)
        # The installed broker config, its endpoints overridden on the command line.
        broker = Process("broker", [self.path("usr/bin/pool-broker"), "--config", self.path("etc/poolbus/broker.toml"),
                                    "--api", api, "--stream", stream, "--workers", workers, "--announce", announce],
                         os.path.join(logs, "broker.log"))
        # A worker config made from the installed example, as an operator would.
        with open(self.path("usr/share/doc/poolbus/examples/worker.toml")) as f:
            example = f.read()
        config = os.path.join(self.tmp, "worker-w1.toml")
        with open(config, "w") as f:
            f.write(example.replace("tcp://broker-1:7702", workers).replace("tcp://broker-1:7703", announce)
                    + '\nresources = "cpu=2,mem=2GiB,disk=2GiB"\n')
        worker = Process("worker", [self.path("usr/bin/pool-worker"), "--config", config, "--id", "w1",
                                    "--state-dir", os.path.join(self.tmp, "state-w1")], os.path.join(logs, "w1.log"))
        dash = Process("dash", [self.path("usr/bin/pool-dash"), "--config", self.path("etc/poolbus/dash.toml"),
                                "--api", api, "--stream", stream, "--http", "127.0.0.1:%d" % http],
                       os.path.join(logs, "dash.log"))
        for p in (broker, worker, dash):
            p.start()
            self.addCleanup(p.stop)

        def pools():
            r = run([self.path("usr/bin/poolctl"), "--api", api, "--timeout", "1s", "--json", "pools"])
            return json.loads(r.stdout)["pools"] if r.returncode == 0 else []

        wait_until(lambda: [p["id"] for p in pools()] == ["w1"], 15.0,
                   what="the installed worker in the installed broker's pools")
        self.assertEqual(pools()[0]["labels"], {"zone": "eu-1"})  # from the example config
        client = run(["/usr/bin/python3", "-c", "import poolbus; print(poolbus.Client(%r).pools()[0]['id'])" % api],
                     env=dict(os.environ, PYTHONPATH=self.path("usr/lib/python3/dist-packages")))
        self.assertEqual(client.stdout.strip(), "w1", client.stderr)
        def dash_pools():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/stats" % http, timeout=2) as r:
                    return json.loads(r.read())["pools"]
            except (OSError, ValueError):
                return None

        wait_until(lambda: dash_pools() == 1, 15.0, what="the installed pool-dash sees the pool")
        bad = run([self.path("usr/bin/pool-broker"), "--config", os.path.join(self.tmp, "missing.toml")])
        self.assertNotEqual(bad.returncode, 0)


if __name__ == "__main__":
    unittest.main()

"""Integration-test harness: runs real pool-broker / pool-worker processes on free
loopback ports and drives them through protocol.md only (ZeroMQ + MessagePack,
via clients/python/poolbus.py).

Invariants: every process it starts is stopped by stop() (and, should the test
process die, by PR_SET_PDEATHSIG); synchronisation is always a deadline-bounded
poll of observable state (wait_until), never a fixed sleep.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "clients", "python"))
if CLIENT_DIR not in sys.path:
    sys.path.insert(0, CLIENT_DIR)

import poolbus  # noqa: E402  (path set up above)
from poolbus import PoolError  # noqa: E402,F401

PYTHON = "/usr/bin/python3"
GiB = 1 << 30
MiB = 1 << 20


def bin_dir():
    return os.environ.get("POOLBUS_BIN") or os.path.normpath(os.path.join(HERE, "..", "..", "build", "bin"))


def binaries_present():
    d = bin_dir()
    return all(os.access(os.path.join(d, b), os.X_OK) for b in ("pool-broker", "pool-worker"))


def require_binaries(test_case_class):
    """Class decorator: skip (loudly) when the binaries are not built."""
    return unittest.skipUnless(binaries_present(), "pool-broker/pool-worker not found in %s" % bin_dir())(
        test_case_class)


def free_ports(n):
    """n distinct loopback ports that were free a moment ago (bind to 0, close)."""
    ports = set()
    while len(ports) < n:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        ports.add(s.getsockname()[1])
        s.close()
    return sorted(ports)


def _die_with_parent():
    # Runs in the child between fork and exec: SIGKILL it when the test process dies.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def wait_until(predicate, timeout=5.0, interval=0.03, what=None):
    """Polls predicate() every `interval` s until it returns a truthy value, which
    is returned. A PoolError/OSError raised by the predicate counts as "not yet".
    Raises AssertionError at the deadline, naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except (PoolError, OSError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                                 % (timeout, what or getattr(predicate, "__name__", "condition"), last))
        time.sleep(interval)


class Process:
    """One child process with its log file (stdout+stderr, appended across restarts)."""

    def __init__(self, name, argv, log_path):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.popen = None

    def start(self):
        assert not self.running, "%s already running" % self.name
        with open(self.log_path, "ab") as log:
            log.write(("=== start %s: %s\n" % (self.name, " ".join(self.argv))).encode())
            log.flush()
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        return self

    @property
    def running(self):
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def send_signal(self, sig):
        if self.running:
            self.popen.send_signal(sig)

    def kill(self, sig=signal.SIGKILL, timeout=5.0):
        """Sends sig and waits for the exit; returns the exit code (None if it outlived timeout)."""
        if self.popen is None:
            return None
        self.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """SIGTERM, then SIGKILL after 3 s: never leaves the process behind."""
        if self.popen is None:
            return None
        code = self.kill(signal.SIGTERM, 3.0) if self.running else self.popen.returncode
        if self.running:
            code = self.kill(signal.SIGKILL, 5.0)
        return code

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class Cluster:
    """A broker and its workers on free loopback ports, each worker with its own state dir.

    workers: [(id, "cpu=4,mem=8GiB,disk=100GiB"), ...] or (id, resources, [extra args])."""

    def __init__(self, workers=(("w1", "cpu=4,mem=8GiB,disk=100GiB"),), bin_dir_path=None,
                 worker_timeout="1s", heartbeat="200ms", request_timeout="1s", broker_args=(), start=True):
        self.bin_dir = bin_dir_path or bin_dir()
        self.root = tempfile.mkdtemp(prefix="poolbus-it-")
        self.log_dir = os.path.join(self.root, "logs")
        os.makedirs(self.log_dir)
        api, stream, workers_port, announce = free_ports(4)
        self.api = "tcp://127.0.0.1:%d" % api
        self.stream = "tcp://127.0.0.1:%d" % stream
        self.workers_ep = "tcp://127.0.0.1:%d" % workers_port
        self.announce_ep = "tcp://127.0.0.1:%d" % announce
        self.worker_timeout = worker_timeout
        self.worker_timeout_s = poolbus.parse_duration_ms(worker_timeout) / 1000.0
        self.heartbeat = heartbeat
        self.heartbeat_s = poolbus.parse_duration_ms(heartbeat) / 1000.0
        self.request_timeout = request_timeout
        self.broker = Process("broker", [
            os.path.join(self.bin_dir, "pool-broker"),
            "--api", self.api, "--stream", self.stream,
            "--workers", self.workers_ep, "--announce", self.announce_ep,
            "--worker-timeout", worker_timeout, "--request-timeout", request_timeout,
        ] + list(broker_args), os.path.join(self.log_dir, "broker.log"))
        self.workers = {}
        self.worker_resources = {}
        for spec in workers:
            self.add_worker(*spec)
        self._closeables = []
        self._client = None
        self.client_curve = None  # (public, secret, server_public) for a CURVE broker
        if start:
            try:
                self.start()
            except BaseException:
                self.stop()
                sys.stderr.write("\n===== cluster failed to start; process logs =====\n%s\n" % self.log_text())
                raise

    # -- processes ------------------------------------------------------------
    def add_worker(self, worker_id, resources, extra_args=()):
        state_dir = os.path.join(self.root, "state-" + worker_id)
        os.makedirs(state_dir, exist_ok=True)
        self.worker_resources[worker_id] = poolbus.parse_resources(resources)
        self.workers[worker_id] = Process("worker-" + worker_id, [
            os.path.join(self.bin_dir, "pool-worker"), "--id", worker_id,
            "--connect", self.workers_ep, "--announce", self.announce_ep,
            "--resources", resources, "--state-dir", state_dir, "--heartbeat", self.heartbeat,
        ] + list(extra_args), os.path.join(self.log_dir, "worker-%s.log" % worker_id))
        return self.workers[worker_id]

    def start(self, timeout=10.0):
        self.start_broker()
        for worker_id in self.workers:
            self.start_worker(worker_id, wait=False)
        self.wait_pools(set(self.workers), timeout)
        return self

    def start_broker(self, wait=True, timeout=10.0):
        self.broker.start()
        if wait:
            wait_until(lambda: self.client().call("ping", timeout_ms=200), timeout, what="broker ping")

    def start_worker(self, worker_id, wait=True, timeout=10.0):
        self.workers[worker_id].start()
        if wait:
            self.wait_pools({worker_id}, timeout)

    def kill_worker(self, worker_id, sig=signal.SIGKILL):
        return self.workers[worker_id].kill(sig)

    def kill_broker(self, sig=signal.SIGKILL):
        return self.broker.kill(sig)

    def stop(self):
        for c in self._closeables:
            try:
                c.close()
            except Exception:
                pass
        self._closeables = []
        self._client = None
        for proc in list(self.workers.values()) + [self.broker]:
            proc.stop()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- talking to it --------------------------------------------------------
    def client(self, timeout_ms=3000):
        """A shared client (created on first use); new_client() for a private one."""
        if self._client is None:
            self._client = self.new_client(timeout_ms)
        return self._client

    def new_client(self, timeout_ms=3000):
        c = poolbus.Client(self.api, timeout_ms=timeout_ms, curve=self.client_curve)
        self._closeables.append(c)
        return c

    def subscriber(self, topic=""):
        s = poolbus.Subscriber(self.stream, topic, curve=self.client_curve)
        self._closeables.append(s)
        return s

    def poolctl(self, *args, timeout=20.0):
        argv = [os.path.join(self.bin_dir, "poolctl"), "--api", self.api, "--stream", self.stream] + list(args)
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, text=True, preexec_fn=_die_with_parent)

    # -- observations -------------------------------------------------------
    def pool_ids(self):
        return {p["id"] for p in self.client().pools()}

    def wait_pools(self, ids, timeout=10.0):
        ids = set(ids)
        return wait_until(lambda: ids <= self.pool_ids(), timeout, what="pools %s listed" % sorted(ids))

    def wait_pool_gone(self, pool_id, timeout):
        return wait_until(lambda: pool_id not in self.pool_ids(), timeout, what="pool %s gone" % pool_id)

    def offer_of(self, pool_id):
        for o in self.client().offers():
            if o["pool"] == pool_id:
                return o
        return None

    def free_all(self, timeout=5.0):
        """Frees every alloc of every live pool and waits until each offer is whole again."""
        c = self.client()
        failures = []
        for a in c.allocs():
            try:
                c.free(a["id"])
            except PoolError as e:
                failures.append("%s: %s" % (a["id"], e))
        if failures:
            raise AssertionError("could not free the allocs left by an earlier test: " + "; ".join(failures))
        live = self.pool_ids()

        def whole():
            offers = {o["pool"]: o for o in c.offers()}
            for pid in live:
                o = offers.get(pid)
                if o is None or not same_resources(o["available"], self.worker_resources[pid]):
                    return False
            return True
        wait_until(whole, timeout, what="every offer whole again")

    def log_text(self):
        parts = []
        for proc in [self.broker] + list(self.workers.values()):
            parts.append("----- %s (%s) -----\n%s" % (proc.name, proc.log_path, proc.log_text()))
        return "\n".join(parts)


def same_resources(a, b, keys=None):
    """Resource maps equal up to float rounding; missing keys count as 0."""
    keys = keys or set(a) | set(b)
    return all(abs(float(a.get(k, 0)) - float(b.get(k, 0))) <= 1e-6 * max(1.0, abs(float(b.get(k, 0))))
               for k in keys)


class ClusterTestCase(unittest.TestCase):
    """A fresh cluster per test (or, with FRESH_CLUSTER_PER_TEST = False, one per class
    whose setUp frees every alloc so each test starts from whole offers). When a
    test fails, the log lines the processes wrote during it are printed to stderr."""

    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB"), ("w2", "cpu=8,mem=16GiB,disk=200GiB"))
    WORKER_TIMEOUT = "1s"
    HEARTBEAT = "200ms"
    REQUEST_TIMEOUT = "1s"
    BROKER_ARGS = ()
    FRESH_CLUSTER_PER_TEST = True  # a cluster starts in ~0.3 s: isolate tests by default

    @classmethod
    def make_cluster(cls):
        return Cluster(cls.WORKERS, worker_timeout=cls.WORKER_TIMEOUT, heartbeat=cls.HEARTBEAT,
                       request_timeout=cls.REQUEST_TIMEOUT, broker_args=cls.BROKER_ARGS)

    @classmethod
    def fresh_per_test(cls):
        # POOLBUS_IT_FRESH=0/1 overrides the class: 0 shares one cluster per class (faster,
        # and it also catches state one test leaves that breaks the next).
        override = os.environ.get("POOLBUS_IT_FRESH")
        return cls.FRESH_CLUSTER_PER_TEST if override not in ("0", "1") else override == "1"

    @classmethod
    def setUpClass(cls):
        cls.cluster = None
        if not binaries_present():
            if os.environ.get("POOLBUS_BIN"):  # ctest named the binaries: missing ones are a failure
                raise AssertionError("POOLBUS_BIN=%s has no pool-broker/pool-worker" % bin_dir())
            raise unittest.SkipTest("pool-broker/pool-worker not found in %s (set POOLBUS_BIN)" % bin_dir())
        if not cls.fresh_per_test():
            cls.cluster = cls.make_cluster()

    @classmethod
    def tearDownClass(cls):
        if cls.cluster is not None:
            cls.cluster.cleanup()
            cls.cluster = None

    def _remember_log_offsets(self):
        self._log_offsets = {p.log_path: os.path.getsize(p.log_path) if os.path.exists(p.log_path) else 0
                             for p in [self.cluster.broker] + list(self.cluster.workers.values())}

    def setUp(self):
        if self.fresh_per_test():
            self.cluster = self.make_cluster()
            self.addCleanup(self._cleanup_fresh)
        else:
            self._remember_log_offsets()
            # A test may have killed processes: bring the whole cluster back first.
            if not self.cluster.broker.running:
                self.cluster.start_broker()
            for wid, proc in self.cluster.workers.items():
                if not proc.running:
                    self.cluster.start_worker(wid, wait=False)
            self.cluster.wait_pools(set(self.cluster.workers), 10.0)
            self.cluster.free_all()
        self.c = self.cluster.client()

    def _cleanup_fresh(self):
        self._fresh_logs = self.cluster.log_text()
        self.cluster.cleanup()

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        self._fresh_logs = None
        outcome = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            sys.stderr.write("\n===== process logs for %s =====\n%s\n===== end logs =====\n"
                             % (self.id(), self._logs_since_setup()))
        return outcome

    def _logs_since_setup(self):
        if self._fresh_logs is not None:
            return self._fresh_logs
        offsets = getattr(self, "_log_offsets", None)
        cluster = getattr(type(self), "cluster", None)
        if not offsets or cluster is None:
            return "(no logs)"
        parts = []
        for path, offset in offsets.items():
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    parts.append("----- %s -----\n%s" % (os.path.basename(path),
                                                        f.read().decode("utf-8", "replace")))
            except OSError as e:
                parts.append("----- %s: %s" % (path, e))
        return "\n".join(parts)

    # -- assertion helpers ------------------------------------------------------
    def assertPoolError(self, kinds, fn, *args, **kwargs):
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        with self.assertRaises(PoolError) as cm:
            fn(*args, **kwargs)
        self.assertIn(cm.exception.kind, kinds, "expected error kind %s, got %r" % (kinds, cm.exception))
        return cm.exception

    def assertResources(self, got, want, msg=None):
        self.assertTrue(same_resources(got, want), msg or "resources %r != %r" % (got, want))

    def wait_until(self, predicate, timeout=5.0, what=None):
        return wait_until(predicate, timeout, what=what)

"""Execs that cannot escape (issue: per-alloc users and PID namespaces, safe
outputs, disk limits, no wedged workers), tried as an attacker would, end to end
through the broker:

- one alloc's exec cannot read another alloc's files, the worker's store, or a
  secret key of the worker's, and sees no process outside its own namespace;
- daemons (setsid -f, a double fork with setsid, a process ignoring SIGTERM)
  are gone after free, after expiry collection, and after the worker stops;
- a FIFO or a symlinked directory listed as an output fails that exec only;
- a 1 GiB output is hashed while the worker keeps heartbeating and answering;
- logs are capped; an alloc's disk bounds what it writes (error "disk"); the
  worker keeps a floor of free space and survives an exec that fills its disk.

These need root (per-alloc uids, namespaces, a tmpfs state dir): elsewhere the
suite says so and skips, loudly.
"""

import os
import signal
import subprocess
import tempfile
import time
import unittest

from harness import GiB, MiB, Cluster, ClusterTestCase, wait_until

ROOT = os.geteuid() == 0
UIDS = (881000, 881099)


def processes_with(marker):
    """Host pids of live processes whose command line holds `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open("/proc/%s/stat" % name) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z" and "pool-exec-init" not in cmdline:
            found.append(int(name))
    return found


DAEMONS = ("setsid -f sleep 1003; "                                     # a new session
           "(setsid sh -c 'sleep 1004 & exit' &); "                      # a double fork with setsid
           "setsid -f sh -c 'trap \"\" TERM; exec sleep 1005'; "        # ignores SIGTERM
           "echo started; exec sleep 1006")
MARKERS = ("sleep 1003", "sleep 1004", "sleep 1005", "sleep 1006")


@unittest.skipUnless(ROOT, "LOUD SKIP: exec isolation tests need root (per-alloc uids, namespaces); run as root")
class Isolation(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB", ["--exec-uids", "%d-%d" % UIDS]),)
    FRESH_CLUSTER_PER_TEST = False

    def run_exec(self, alloc, exec_id, script, outputs=None, timeout_ms=20000):
        self.c.exec_put(alloc, exec_id, ["sh", "-c", script], outputs=outputs)
        return self.c.exec_wait(alloc, exec_id, timeout_ms)

    def stdout(self, alloc, exec_id):
        return self.c.exec_logs(alloc, exec_id, max_bytes=1 << 20)["data"].decode(errors="replace")

    def state_dir(self):
        return os.path.join(self.cluster.root, "state-w1")

    def test_one_alloc_cannot_read_another_nor_the_worker(self):
        a = self.c.allocate({"cpu": 1, "mem": 1 * GiB, "disk": 1 * GiB})["id"]
        b = self.c.allocate({"cpu": 1, "mem": 1 * GiB, "disk": 1 * GiB})["id"]
        done = self.run_exec(a, "secret", "echo topsecret-a; echo topsecret-file > mine; id -u")
        self.assertEqual(done["exit_code"], 0, done)
        uid_a = int(self.stdout(a, "secret").split()[-1])
        # A secret key of the worker's, as pool-worker keeps one (0600, root's).
        key = os.path.join(self.state_dir(), "w1.key")
        with open(key, "w") as f:
            f.write("worker-secret-key")
        os.chmod(key, 0o600)
        state = os.path.join(self.state_dir(), "state.db")
        a_dir = os.path.join(self.state_dir(), "allocs", a.split("/", 1)[1])
        probe = ("id -u; "
                 "cat ../../../../*/execs/*/stdout 2>/dev/null; "
                 "cat ../../../../*/execs/*/work/mine 2>/dev/null; "
                 "cat %s/execs/*/stdout %s/execs/e-secret/work/mine 2>/dev/null; "
                 "cat %s 2>/dev/null | head -c 64; cat %s 2>/dev/null; "
                 "cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'"
                 % (a_dir, a_dir, state, key))
        done = self.run_exec(b, "probe", probe)
        out = self.stdout(b, "probe")
        uid_b = int(out.split()[0])
        self.assertNotEqual(uid_a, uid_b, "two allocs ran as one user")
        for uid in (uid_a, uid_b):
            self.assertTrue(UIDS[0] <= uid <= UIDS[1], uid)
        for leaked in ("topsecret", "SQLite", "worker-secret-key", "pool-worker"):
            self.assertNotIn(leaked, out, "alloc B read %r" % leaked)
        visible = int(out.split()[-1])
        self.assertLessEqual(visible, 6, "the exec saw processes outside its namespace:\n" + out)
        # The files themselves are as described: the store and the keys 0600, allocs 0710 root:<uid>.
        self.assertEqual(os.stat(state).st_mode & 0o077, 0)
        st = os.stat(a_dir)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (0, uid_a, 0o710))
        self.c.free(a)
        self.c.free(b)

    def test_a_client_environment_never_reaches_a_root_process(self):
        # A preload library that drops a file named after the uid it runs as.
        where = tempfile.mkdtemp(prefix="poolbus-preload-", dir="/run")
        os.chmod(where, 0o777)
        try:
            src = os.path.join(where, "evil.c")
            with open(src, "w") as f:
                f.write('#include <stdio.h>\n#include <unistd.h>\n'
                        '__attribute__((constructor)) static void evil(void) { char p[256];'
                        ' snprintf(p, sizeof p, "%s/ran-as-%%d", (int)geteuid());'
                        ' FILE *f = fopen(p, "w"); if (f) fclose(f); }\n' % where)
            lib = os.path.join(where, "evil.so")
            subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, src], check=True)
            os.chmod(lib, 0o755)
            a = self.c.allocate({"cpu": 1, "mem": 1 * GiB, "disk": 1 * GiB})["id"]
            self.c.exec_put(a, "preload", ["true"], env={"LD_PRELOAD": lib})
            done = self.c.exec_wait(a, "preload", 10000)
            self.assertEqual(done["exit_code"], 0, done)
            ran = sorted(n for n in os.listdir(where) if n.startswith("ran-as-"))
            self.assertNotIn("ran-as-0", ran, "a client's LD_PRELOAD ran as root")
            self.assertTrue(ran, "the command itself got its environment")
            self.c.free(a)
        finally:
            subprocess.run(["rm", "-rf", where])

    def assert_daemons_gone(self, why):
        wait_until(lambda: not any(processes_with(m) for m in MARKERS), 10.0,
                   what="every daemon of the alloc gone after %s" % why)

    def start_daemons(self, alloc):
        self.c.exec_put(alloc, "daemons", ["sh", "-c", DAEMONS])
        wait_until(lambda: all(processes_with(m) for m in MARKERS), 10.0, what="the daemons running")

    def test_daemons_are_gone_after_free(self):
        a = self.c.allocate({"cpu": 1, "mem": 1 * GiB, "disk": 1 * GiB})["id"]
        self.start_daemons(a)
        self.c.free(a)
        self.assert_daemons_gone("free")

    def test_daemons_are_gone_after_expiry_collection(self):
        whole = self.cluster.offer_of("w1")
        a = self.c.accept(whole["id"], {"cpu": 1, "mem": 1 * GiB, "disk": 1 * GiB})["id"]
        self.start_daemons(a)
        self.c.keepalive(a, 1)  # its lease ends a millisecond from now
        wait_until(lambda: self.c.inspect(a)["expires_ms"] < time.time() * 1000, 5.0, what="the lease over")
        # An accept of the whole pool needs a's room: the worker collects it.
        offer = wait_until(lambda: self.cluster.offer_of("w1"), 5.0, what="an offer")
        b = self.c.accept(offer["id"], {"cpu": 4, "mem": 8 * GiB, "disk": 100 * GiB})["id"]
        self.assert_daemons_gone("expiry collection")
        self.c.free(b)

    def test_a_fifo_or_a_symlinked_directory_as_output_fails_only_that_exec(self):
        a = self.c.allocate({"cpu": 1, "mem": 1 * GiB, "disk": 1 * GiB})["id"]
        done = self.run_exec(a, "fifo", "mkfifo f", outputs=["f"])
        self.assertEqual(done["exit_code"], 0)
        self.assertIn("not a regular file", done["error"])
        self.assertNotIn("result", done)
        done = self.run_exec(a, "link", "ln -s /etc d", outputs=["d/passwd"])
        self.assertIn("symlink", done["error"])
        self.assertNotIn("result", done)
        # The worker is fine: it answers, and the pool is still listed.
        self.assertIn("w1", [p["id"] for p in self.c.pools()])
        self.assertEqual(self.run_exec(a, "after", "true")["exit_code"], 0)
        self.c.free(a)

    def test_logs_are_capped(self):
        a = self.c.allocate({"cpu": 1, "mem": 1 * GiB, "disk": 1 * GiB})["id"]
        done = self.run_exec(a, "yes", "yes | head -c 100000000; echo end >&2")
        self.assertEqual(done["exit_code"], 0, done)
        first = self.c.exec_logs(a, "yes", offset=(64 << 20) - 10, max_bytes=1 << 16)
        self.assertIn(b"log capped at", first["data"])
        self.assertTrue(first["eof"])
        self.assertEqual(self.c.exec_logs(a, "yes", "stderr")["data"], b"end\n")
        self.c.free(a)

    def test_an_alloc_over_its_disk_is_stopped_with_error_disk(self):
        a = self.c.allocate({"cpu": 1, "mem": 1 * GiB, "disk": 2 * MiB})["id"]
        done = self.run_exec(a, "fill", "for i in 1 2 3 4 5 6 7 8; do head -c 500000 /dev/zero > f$i; done; "
                                        "exec sleep 30")
        self.assertEqual(done["error"], "disk", done)
        # One file larger than the whole disk is refused by the kernel at once (RLIMIT_FSIZE).
        done = self.run_exec(a, "big", "exec truncate -s 1G big", outputs=["big"])
        self.assertEqual(done["error"], "disk", done)
        self.c.free(a)

    def test_a_large_output_is_hashed_while_the_worker_keeps_answering(self):
        a = self.c.allocate({"cpu": 1, "mem": 1 * GiB, "disk": 3 * GiB})["id"]
        sub = self.cluster.subscriber("pools.")
        self.c.exec_put(a, "huge", ["sh", "-c", "head -c 1073741824 /dev/zero > big"], outputs=["big"])
        answered = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = self.c.exec_inspect(a, "huge")
            self.assertIn("w1", [p["id"] for p in self.c.pools()])
            answered += 1
            if state["state"] == "complete":
                break
        self.assertEqual(state["state"], "complete")
        self.assertEqual(state["result"]["files"]["big"]["size"], 1 << 30, state)
        left = []
        while True:
            got = sub.recv(timeout_ms=0)
            if got is None:
                break
            if got[1].get("event") == "left":
                left.append(got)
        self.assertEqual(left, [], "the pool left the broker while an output was hashed")
        self.assertGreater(answered, 3)
        self.c.free(a)


@unittest.skipUnless(ROOT, "LOUD SKIP: exec isolation tests need root; run as root")
class WorkerStop(unittest.TestCase):
    """A stopped worker leaves nothing running."""

    def test_daemons_are_gone_after_the_worker_stops(self):
        cluster = Cluster((("w1", "cpu=2,mem=2GiB,disk=2GiB", ["--exec-uids", "%d-%d" % UIDS]),))
        try:
            c = cluster.client()
            a = c.allocate({"cpu": 1, "mem": 1 * GiB, "disk": 1 * GiB})["id"]
            c.exec_put(a, "daemons", ["sh", "-c", DAEMONS])
            wait_until(lambda: all(processes_with(m) for m in MARKERS), 10.0, what="the daemons running")
            cluster.workers["w1"].send_signal(signal.SIGTERM)
            wait_until(lambda: not cluster.workers["w1"].running, 10.0, what="the worker stopped")
            wait_until(lambda: not any(processes_with(m) for m in MARKERS), 5.0,
                       what="every daemon gone after the worker stopped")
        finally:
            cluster.cleanup()


@unittest.skipUnless(ROOT, "LOUD SKIP: the disk-floor test mounts a tmpfs; run as root")
class DiskFloor(unittest.TestCase):
    """An exec that fills the worker's filesystem is stopped at the floor; the worker lives on."""

    def test_an_exec_filling_the_state_disk_is_stopped_and_the_worker_survives(self):
        mount = tempfile.mkdtemp(prefix="poolbus-floor-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mount], check=True)
        try:
            cluster = Cluster((("w1", "cpu=2,mem=2GiB,disk=1GiB",
                                ["--exec-uids", "%d-%d" % UIDS, "--disk-floor", "24MiB"]),), start=False)
            state = os.path.join(mount, "state-w1")
            os.makedirs(state)
            argv = cluster.workers["w1"].argv
            argv[argv.index("--state-dir") + 1] = state
            cluster.start()
            try:
                c = cluster.client()
                a = c.allocate({"cpu": 1, "mem": 1 * GiB, "disk": 512 * MiB})["id"]
                c.exec_put(a, "fill", ["sh", "-c", "head -c 60000000 /dev/zero > f; exec sleep 60"])
                done = c.exec_wait(a, "fill", 20000)
                self.assertEqual(done["error"], "disk", done)
                # `yes` in an alloc of 1 MiB: its log is capped and its disk is reached.
                small = c.allocate({"cpu": 0.5, "mem": 256 * MiB, "disk": 1 * MiB})["id"]
                c.exec_put(small, "yes", ["yes"])
                self.assertEqual(c.exec_wait(small, "yes", 20000)["error"], "disk")
                # It still commits, answers, and frees; its store is intact.
                c.keepalive(a, 60000)
                c.free(a)
                c.free(small)
                self.assertTrue(cluster.workers["w1"].running)
                b = c.allocate({"cpu": 1, "mem": 1 * GiB, "disk": 1 * GiB})["id"]
                c.free(b)
            finally:
                cluster.cleanup()
        finally:
            subprocess.run(["umount", "-l", mount])
            os.rmdir(mount)


if __name__ == "__main__":
    unittest.main()

"""pool-dash from the outside: a real broker and two real workers, a real pool-dash
on a free port, and its HTTP surface (/tmp/dash_spec.md, protocol.md "Dashboard
and metrics") driven by real clients: headless chromium over the DevTools
protocol (the page updates live, without a reload), a real Prometheus scraping
/metrics, the JSON endpoints, bad input and garbage bytes, and Server-Sent Events
(abrupt disconnects; fan-out latency to 200 clients)."""

import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

from harness import GiB, ClusterTestCase, wait_until
import dash_support as ds

SMALL = {"cpu": 1.0, "mem": 1.0 * GiB, "disk": 10.0 * GiB}
W1 = {"cpu": 4.0, "mem": 8.0 * GiB, "disk": 100.0 * GiB}
W2 = {"cpu": 8.0, "mem": 16.0 * GiB, "disk": 200.0 * GiB}
HIST = "poolbus_dash_api_request_duration_seconds"


def p50(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def now_ms():
    return int(time.time() * 1000)


def js_text(selector):
    """JS: the trimmed textContent of the first match of selector, or null."""
    return "(() => { const e = document.querySelector(%s); return e ? e.textContent.trim() : null; })()" \
        % json.dumps(selector)


def js_count(selector):
    return "document.querySelectorAll(%s).length" % json.dumps(selector)


class DashboardTest(ClusterTestCase):
    WORKERS = (("w1", "cpu=4,mem=8GiB,disk=100GiB", ["--label", "zone=eu-1", "--label", "arch=amd64"]),
               ("w2", "cpu=8,mem=16GiB,disk=200GiB", ["--label", "zone=eu-2", "--label", "arch=amd64"]))
    HEARTBEAT = "200ms"
    WORKER_TIMEOUT = "1s"
    FRESH_CLUSTER_PER_TEST = False  # one cluster and one pool-dash for the class (~1 s saved per test)

    # -- fixtures ----------------------------------------------------------------------
    @classmethod
    def setUpClass(cls):
        cls.class_dash = None
        if not ds.dash_present():
            if os.environ.get("POOLBUS_BIN"):  # ctest named the binaries: a missing one is a failure
                raise AssertionError("POOLBUS_BIN=%s has no pool-dash" % ds.dash_binary())
            raise unittest.SkipTest("pool-dash not found at %s (set POOLBUS_BIN)" % ds.dash_binary())
        super().setUpClass()
        if cls.cluster is not None:
            try:
                cls.class_dash = ds.PoolDash(cls.cluster).start()
            except BaseException:
                cls.cluster.cleanup()
                cls.cluster = None
                raise

    @classmethod
    def tearDownClass(cls):
        if cls.class_dash is not None:
            cls.class_dash.stop()
            cls.class_dash = None
        super().tearDownClass()

    def setUp(self):
        super().setUp()  # a live cluster with every alloc freed and every offer whole
        self._dash_log = None
        if self.fresh_per_test():
            self.dash = ds.PoolDash(self.cluster).start()
            self.addCleanup(self._stop_fresh_dash)  # runs before the cluster's cleanup
        else:
            if not self.class_dash.proc.running:  # it died after the last test's check: start anew
                sys.stderr.write("\n!!! pool-dash was not running at the start of %s; restarting it\n" % self.id())
                self.class_dash.start()
            self.dash = self.class_dash
        self._dash_pid = self.dash.proc.pid
        self._dash_log_offset = os.path.getsize(self.dash.proc.log_path)
        self.addCleanup(self._check_dash_alive)
        # The dash has caught up with the freed allocs of earlier tests.
        self.wait_dash_allocs({"w1": 0, "w2": 0}, 10.0)

    def _check_dash_alive(self):
        self.assertTrue(self.dash.proc.running and self.dash.proc.pid == self._dash_pid,
                        "pool-dash (pid %s) died during %s (exit %s)"
                        % (self._dash_pid, self.id(), self.dash.proc.popen.poll()))

    def _stop_fresh_dash(self):
        self._dash_log = self.dash.proc.log_text()
        self.dash.stop()

    def _logs_since_setup(self):
        text = super()._logs_since_setup()
        dash_log = getattr(self, "_dash_log", None)
        if dash_log is None and getattr(self, "dash", None) is not None:
            try:
                with open(self.dash.proc.log_path, "rb") as f:
                    f.seek(getattr(self, "_dash_log_offset", 0))
                    dash_log = f.read().decode("utf-8", "replace")
            except OSError as e:
                dash_log = "(%s)" % e
        return "%s\n----- dash.log -----\n%s" % (text, dash_log)

    # -- helpers -------------------------------------------------------------------------
    def get_json(self, path, status=200):
        return self.dash.get_json(path, status=status)

    def dash_pools(self):
        return {p["id"]: p for p in self.get_json("/api/pools")["pools"]}

    def wait_dash_allocs(self, want, timeout=10.0):
        """Waits until /api/pools shows these alloc counts ({pool: n})."""
        last = []

        def ok():
            try:
                pools = self.dash_pools()
            except (AssertionError, ValueError, KeyError) as e:  # e.g. a 502 while it connects
                last[:] = [e]
                return False
            last[:] = [{p: pools.get(p, {}).get("allocs") for p in want}]
            return all(p in pools and pools[p]["allocs"] == n for p, n in want.items())
        try:
            wait_until(ok, timeout, what="/api/pools allocs %r" % want)
        except AssertionError as e:
            raise AssertionError("%s; last: %r" % (e, last))

    def accept(self, pool="w1", want=SMALL, **kw):
        return self.c.accept(pool + "/1", want, **kw)

    def broker_snapshot(self):
        """What pool-dash must never change: pools (minus last-seen), allocs (with their
        leases: a keepalive would show), the queue."""
        pools = sorted(({k: v for k, v in p.items() if k != "last_seen_ms"} for p in self.c.pools()),
                       key=lambda p: p["id"])
        allocs = sorted(self.c.allocs(), key=lambda a: a["id"])
        return {"pools": pools, "allocs": allocs, "queue": self.c.queue()}

    def assert_error(self, path, status, kind=None):
        r = self.dash.get(path)
        self.assertEqual(r.status, status, "GET %s: %r" % (path[:120], r))
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"),
                        "GET %s: error Content-Type %r" % (path[:120], r.headers.get("content-type")))
        try:
            err = json.loads(r.body.decode("utf-8")).get("error")  # JSON bodies are UTF-8
        except ValueError as e:
            self.fail("GET %s: the error body is not UTF-8 JSON (%s): %r" % (path[:120], e, r.body[:200]))
        self.assertIsInstance(err, dict, "GET %s: no error object in %r" % (path[:120], r.body[:300]))
        self.assertIsInstance(err.get("kind"), str)
        self.assertIsInstance(err.get("message"), str)
        if kind is not None:
            self.assertEqual(err["kind"], kind, "GET %s: %r" % (path[:120], err))
        return err

    def metric(self, name, **labels):
        return self.dash.metrics().get(name, **labels)

    def wait_metric(self, name, value, timeout=5.0, **labels):
        wait_until(lambda: self.metric(name, **labels) == value, timeout,
                   what="/metrics %s%r == %r (last %r)" % (name, labels, value, self.metric(name, **labels)))

    # -- 1. the page in a real browser ----------------------------------------------------
    @unittest.skipUnless(ds.executable(ds.CHROMIUM),
                         "!!! chromium not found at %s: the browser test was NOT run" % ds.CHROMIUM)
    def test_browser_page_updates_live_without_reload(self):
        browser = ds.Chromium(width=1400, height=900)
        self.addCleanup(browser.close)
        browser.start()
        page = browser.new_page()
        page.set_viewport(1400, 900)
        page.navigate(self.dash.url("/"))
        page.evaluate("window.__poolbusNoReload = 'still-the-same-document'")

        def wait_page(js, want, timeout, what):
            try:
                wait_until(lambda: page.evaluate(js) == want, timeout, interval=0.05, what=what)
            except AssertionError as e:
                raise AssertionError("%s\n  last value: %r\n  uncaught JS errors: %r\n  console: %r\n  "
                                     "chromium log tail: %s" % (e, page.evaluate(js), page.exceptions,
                                                                page.console[-10:], browser.log_text()[-1500:]))

        w1_allocs = js_text('tr[data-pool="w1"] td.allocs')
        w2_allocs = js_text('tr[data-pool="w2"] td.allocs')
        wait_page(js_text("#status"), "live", 15.0, "#status 'live' (EventSource connected)")
        wait_page(js_count('tr[data-pool="w1"]') + " === 1 && " + js_count('tr[data-pool="w2"]') + " === 1",
                  True, 10.0, "rows for w1 and w2")
        wait_page(w1_allocs, "0", 5.0, "w1 td.allocs = 0")

        t0 = time.monotonic()
        a = self.accept("w1", owner="dash-browser", labels={"job": "screenshot"})
        wait_page(w1_allocs, "1", 10.0, "w1 td.allocs = 1 after an accept, without a reload")
        sys.stderr.write("\n[dash] accept -> page shows w1 allocs 1: %.0f ms\n" % ((time.monotonic() - t0) * 1000))
        wait_page(js_count('li[data-topic^="allocs."]') + " > 0", True, 5.0, "an allocs.* entry in the event tail")
        wait_page(js_count('li[data-topic="allocs.w1"]') + " > 0", True, 5.0, "an allocs.w1 entry in the event tail")

        # A few more events for a screenshot worth showing: an alloc on w2 with an exec in it.
        b = self.accept("w2", {"cpu": 2.0, "mem": 2.0 * GiB, "disk": 20.0 * GiB}, owner="dash-browser")
        self.c.exec_put(b["id"], "shot", ["sh", "-c", "echo screenshot"])
        self.assertEqual(self.c.exec_wait(b["id"], "shot", 10000).get("exit_code"), 0)
        wait_page(w2_allocs, "1", 10.0, "w2 td.allocs = 1")
        wait_page(js_count("li[data-topic]") + " >= 4", True, 5.0, "four or more entries in the event tail")
        # And a request that waits, with the page saying why (no pool has the label).
        waiter = threading.Thread(target=lambda: self.assertPoolError(
            ("unavailable",), self.cluster.new_client(timeout_ms=3000).allocate,
            {"cpu": 2.0, "mem": 4.0 * GiB}, owner="carol", wait_ms=4000, constraints={"gpu": "a100"}), daemon=True)
        waiter.start()
        self.addCleanup(waiter.join, 10.0)
        wait_page(js_count("#queue tr[data-request]") + " === 1", True, 5.0, "the waiting request in #queue")
        self.assertIn("no pool has gpu=a100", page.evaluate(js_text("#queue tr[data-request]")) or "")
        # Best effort, for a consistent picture (not hooks of the spec, so not asserted): the
        # page throttles its totals to 2 renders/s and shows ev/s from the 1 s stats tick.
        try:
            wait_until(lambda: "2 allocs" in (page.evaluate(js_text("#summary")) or "2 allocs")
                       and page.evaluate(js_text("#stat-eps")) not in ("0.0", "0"), 3.0, interval=0.1)
        except AssertionError:
            sys.stderr.write("[dash] (summary/ev-s not settled before the screenshot)\n")
        path = os.environ.get("POOLBUS_SCREENSHOT") or os.path.join(
            tempfile.mkdtemp(prefix="poolbus-dash-screenshot-"), "dashboard.png")
        png = page.screenshot(path)
        sys.stderr.write("[dash] screenshot (%d bytes) saved to %s\n" % (len(png), path))
        width, height, distinct = ds.png_info(png)
        self.assertEqual((width, height), (1400, 900), "screenshot size")
        self.assertGreater(len(png), 10000, "a 1400x900 PNG of a rendered dashboard is more than 10 KB")
        self.assertGreater(distinct, 16, "the screenshot is (nearly) uniform: a blank page?")

        # Owner and labels are the callers' text: the page shows them, never runs them.
        x = self.accept("w1", {"cpu": 0.5}, owner='<b id="pwned-owner">x</b>',
                        labels={"html": '<img id="pwned-label" src="x">'})
        self.c.free(x["id"])
        wait_page("[...document.querySelectorAll('li[data-topic=\"allocs.w1\"]')].filter("
                  "(li) => li.textContent.includes(%s)).length >= 2" % json.dumps(x["id"]), True, 10.0,
                  "created and freed of %s in the event tail" % x["id"])
        self.assertEqual(page.evaluate("[!!document.getElementById('pwned-owner'), "
                                       "!!document.getElementById('pwned-label')]"), [False, False],
                         "markup in an owner or a label became DOM elements")

        self.c.free(a["id"])
        wait_page(w1_allocs, "0", 10.0, "w1 td.allocs back to 0 after free")
        self.c.free(b["id"])
        wait_page(w2_allocs, "0", 10.0, "w2 td.allocs back to 0 after free")
        self.assertEqual(page.evaluate("window.__poolbusNoReload"), "still-the-same-document",
                         "the page reloaded: updates must arrive over the EventSource")
        self.assertEqual(page.evaluate(js_text("#status")), "live")
        self.assertEqual(page.exceptions, [], "uncaught JS errors on the page")

    # -- 2. a real Prometheus scraping /metrics ---------------------------------------------
    @unittest.skipUnless(ds.executable(ds.PROMETHEUS),
                         "!!! prometheus not found at %s: the Prometheus test was NOT run" % ds.PROMETHEUS)
    def test_prometheus_scrapes_live_alloc_count(self):
        target = "127.0.0.1:%d" % self.dash.port
        prom = ds.Prometheus(target, metrics_path="/metrics", scrape_interval="1s")
        self.addCleanup(prom.stop)
        prom.start()

        def target_up():
            ts = [t for t in prom.targets() if t.get("scrapeUrl", "").startswith("http://%s/" % target)]
            if ts and ts[0]["health"] != "up":
                self.last_scrape_error = ts[0].get("lastError")
            return bool(ts) and ts[0]["health"] == "up"
        self.last_scrape_error = None
        try:
            wait_until(target_up, 20.0, interval=0.2, what="prometheus target %s health up" % target)
        except AssertionError as e:
            raise AssertionError("%s; last scrape error: %r" % (e, self.last_scrape_error))

        def value(expr):
            got = prom.query(expr)
            return got[0][1] if len(got) == 1 else ("series", got)

        q = 'poolbus_pool_allocs{pool="w1"}'
        wait_until(lambda: value(q) == 0.0, 10.0, interval=0.2, what="prometheus %s == 0" % q)
        self.assertEqual(value("poolbus_pools"), 2.0)
        self.assertEqual(value('poolbus_pool_resources{pool="w2",resource="cpu"}'), 8.0)
        a = self.accept("w1", owner="dash-prometheus")
        t0 = time.monotonic()
        wait_until(lambda: value(q) == 1.0, 15.0, interval=0.2, what="prometheus %s == 1 after accept" % q)
        sys.stderr.write("\n[dash] accept -> prometheus shows 1: %.1f s\n" % (time.monotonic() - t0))
        self.assertEqual(value('poolbus_pool_available{pool="w1",resource="cpu"}'), 3.0)
        self.c.free(a["id"])
        wait_until(lambda: value(q) == 0.0, 15.0, interval=0.2, what="prometheus %s == 0 after free" % q)

    # -- 3. /metrics itself ----------------------------------------------------------------
    def test_metrics_text_format_and_series(self):
        self.dash.get_json("/api/allocs")  # at least one broker API call the latency histogram saw
        r = self.dash.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"),
                        "Content-Type %r" % r.headers.get("content-type"))
        try:
            m = ds.parse_metrics(r.text)
        except ValueError as e:
            self.fail("/metrics is not the Prometheus text format: %s" % e)

        for name in ("poolbus_pools", "poolbus_pool_resources", "poolbus_pool_available", "poolbus_pool_allocs",
                     "poolbus_pool_draining", "poolbus_queue_requests", "poolbus_broker_up",
                     "poolbus_stream_events_per_second", "poolbus_dash_sse_clients"):
            self.assertEqual(m.types.get(name), "gauge", "# TYPE of %s" % name)
        self.assertIn("counter", (m.types.get("poolbus_alloc_events_total"), m.types.get("poolbus_alloc_events")),
                      "# TYPE of poolbus_alloc_events_total")
        self.assertEqual(m.types.get(HIST), "histogram", "# TYPE of %s" % HIST)

        self.assertEqual(m.get("poolbus_pools"), 2.0)
        for pool, res in (("w1", W1), ("w2", W2)):
            for k, v in res.items():
                self.assertEqual(m.get("poolbus_pool_resources", pool=pool, resource=k), v, (pool, k))
                self.assertEqual(m.get("poolbus_pool_available", pool=pool, resource=k), v, (pool, k))
            self.assertEqual(m.get("poolbus_pool_allocs", pool=pool), 0.0, pool)
            self.assertEqual(m.get("poolbus_pool_draining", pool=pool), 0.0, pool)
        self.assertEqual(m.get("poolbus_queue_requests"), 0.0)
        self.assertEqual(m.get("poolbus_broker_up"), 1.0)
        self.assertIsNotNone(m.get("poolbus_dash_sse_clients"))
        # Two workers announce every 200 ms: the stream is never quiet.
        wait_until(lambda: (self.metric("poolbus_stream_events_per_second") or 0) > 0, 12.0,
                   what="poolbus_stream_events_per_second > 0")

        created = m.get("poolbus_alloc_events_total", 0.0, event="created")
        freed = m.get("poolbus_alloc_events_total", 0.0, event="freed")
        a = self.accept("w1", owner="dash-metrics")
        self.wait_metric("poolbus_alloc_events_total", created + 1, event="created")
        self.wait_metric("poolbus_pool_allocs", 1.0, pool="w1")
        self.wait_metric("poolbus_pool_available", 3.0, pool="w1", resource="cpu")
        self.wait_metric("poolbus_pool_available", 7.0 * GiB, pool="w1", resource="mem")
        self.c.free(a["id"])
        self.wait_metric("poolbus_alloc_events_total", freed + 1, event="freed")
        self.wait_metric("poolbus_pool_allocs", 0.0, pool="w1")
        self.wait_metric("poolbus_pool_available", 4.0, pool="w1", resource="cpu")
        self.assertEqual(self.metric("poolbus_alloc_events_total", event="created"), created + 1,
                         "one accept, one created event")

        # The API latency histogram: per op, cumulative buckets ending in +Inf == _count, and a _sum.
        m = self.dash.metrics()
        counts = m.series(HIST + "_count")
        self.assertTrue(counts, "no %s_count series" % HIST)
        self.assertTrue(any(v > 0 for _, v in counts), "%s_count all zero: %r" % (HIST, counts))
        for labels, count in counts:
            self.assertIn("op", labels, "%s_count without an op label: %r" % (HIST, labels))
            buckets = sorted(((float(lbl["le"].replace("+Inf", "inf")), v)
                              for lbl, v in m.series(HIST + "_bucket")
                              if {k: x for k, x in lbl.items() if k != "le"} == labels),
                             key=lambda b: b[0])
            self.assertGreaterEqual(len(buckets), 2, "op %s: buckets %r" % (labels, buckets))
            self.assertEqual(buckets[-1][0], float("inf"), "op %s: no le=\"+Inf\" bucket" % labels)
            self.assertEqual(buckets[-1][1], count, "op %s: +Inf bucket != _count" % labels)
            values = [v for _, v in buckets]
            self.assertEqual(values, sorted(values), "op %s: buckets not cumulative: %r" % (labels, buckets))
            total = m.get(HIST + "_sum", **labels)
            self.assertIsNotNone(total, "op %s: no _sum" % labels)
            self.assertGreaterEqual(total, 0.0)
            if count > 0:
                self.assertLess(total / count, 10.0, "op %s: mean latency over 10 s?" % labels)

    # -- 4. JSON endpoints ----------------------------------------------------------------
    def test_json_pools_allocs_alloc_execs_logs(self):
        body = self.get_json("/api/pools")
        self.assertAlmostEqual(body["now_ms"], now_ms(), delta=5000)
        pools = {p["id"]: p for p in body["pools"]}
        self.assertEqual(set(pools), {"w1", "w2"})
        for pid, res, zone in (("w1", W1, "eu-1"), ("w2", W2, "eu-2")):
            p = pools[pid]
            self.assertEqual(p["resources"], res, pid)
            self.assertEqual(p["available"], res, pid)
            self.assertEqual((p["allocs"], p["labels"], p["draining"]), (0, {"zone": zone, "arch": "amd64"}, False), pid)
            self.assertIsInstance(p["seq"], int)
            self.assertIsInstance(p["last_seen_ms"], int)
            self.assertAlmostEqual(p["last_seen_ms"], body["now_ms"], delta=3000, msg="%s last seen" % pid)

        a = self.accept("w1", owner="dash-json", labels={"job": "j1"})
        uri = a["id"]
        listed = wait_until(lambda: [x for x in self.get_json("/api/allocs")["allocs"] if x["id"] == uri],
                            5.0, what="/api/allocs lists %s" % uri)[0]
        for k in ("id", "pool", "created_ms", "expires_ms", "last_keepalive_ms"):
            self.assertEqual(listed[k], a[k], k)
        self.assertEqual(listed["resources"], SMALL)
        self.assertEqual(listed["meta"].get("owner"), "dash-json")
        self.assertEqual(listed["meta"].get("labels"), {"job": "j1"})

        def ids(**q):
            return [x["id"] for x in self.get_json("/api/allocs?" + ds.query_string(**q))["allocs"]]
        self.assertEqual(ids(owner="dash-json"), [uri])
        self.assertEqual(ids(owner="nobody-at-all"), [])
        self.assertEqual(ids(owner="dash-json", pool="w1"), [uri])
        self.assertEqual(ids(pool="w2"), [])

        got = self.get_json("/api/alloc?" + ds.query_string(uri=uri))
        self.assertEqual(got["alloc"]["id"], uri)
        self.assertEqual(got["alloc"]["meta"].get("owner"), "dash-json")
        self.assertEqual(got["execs"], [])
        err = self.assert_error("/api/alloc?uri=w1/nope", 404, "not_exist")
        self.assertTrue(err["message"])

        self.c.exec_put(uri, "hello", ["sh", "-c", "echo hello-dash"])
        done = self.c.exec_wait(uri, "hello", 10000)
        self.assertEqual(done.get("exit_code"), 0, done)
        got = self.get_json("/api/alloc?uri=" + uri)  # the '/' unescaped works too
        self.assertEqual(len(got["execs"]), 1, got)
        ex = got["execs"][0]
        self.assertEqual((ex["id"], ex["alloc"], ex["state"], ex.get("exit_code")), ("hello", uri, "complete", 0))

        def logs(**q):
            got = self.get_json("/api/logs?" + ds.query_string(alloc=uri, exec="hello", **q))
            return got["text"], got["size"], got["eof"]
        self.assertEqual(logs(stream="stdout"), ("hello-dash\n", 11, True))
        self.assertEqual(logs(stream="stdout", tail=5), ("dash\n", 11, True), "tail=5: the last 5 bytes")
        self.assertEqual(logs(stream="stderr"), ("", 0, True))

        # The event tail: the created event of this alloc, no offers heartbeats.
        def created_in_tail():
            evs = self.get_json("/api/events?" + ds.query_string(topic="allocs.w1", limit=1000))["events"]
            return [e for e in evs if e["event"] == "created" and e["body"]["alloc"]["id"] == uri]
        ev = wait_until(created_in_tail, 5.0, what="/api/events has allocs.w1 created %s" % uri)[0]
        self.assertEqual((ev["topic"], ev["kind"], ev["pool"]), ("allocs.w1", "allocs", "w1"))
        self.assertIsInstance(ev["ts_ms"], int)
        everything = self.get_json("/api/events?limit=1000")["events"]
        self.assertTrue(everything)
        self.assertEqual([e["topic"] for e in everything if e["topic"].startswith("offers.")], [],
                         "offers.* heartbeats must not be in the tail")
        self.assertTrue(all(e["topic"].startswith("allocs.w1") for e in
                            self.get_json("/api/events?topic=allocs.w1")["events"]))
        self.assertLessEqual(len(self.get_json("/api/events?limit=1")["events"]), 1)
        stamps = [e["ts_ms"] for e in everything]
        self.assertEqual(stamps, sorted(stamps), "events oldest first")

        stats = self.get_json("/api/stats")
        self.assertEqual((stats["pools"], stats["queue"], stats["broker_up"]), (2, 0, True), stats)
        self.assertIsInstance(stats["sse_clients"], int)
        self.assertEqual(self.get_json("/api/queue")["queue"], [])
        self.c.free(uri)
        self.assert_error("/api/alloc?" + ds.query_string(uri=uri), 404, "not_exist")

    # -- 5. bad input -----------------------------------------------------------------------
    def test_bad_requests_and_garbage_change_nothing(self):
        a = self.accept("w1", owner="dash-garbage")
        self.wait_dash_allocs({"w1": 1})
        before = self.broker_snapshot()

        cases = [
            ("/no/such/path", 404, None),
            ("/api/nope", 404, None),
            ("/api/pools?x=" + "a" * 5000, 400, "invalid"),
            ("/api/pools?bogus=1", 400, "invalid"),
            ("/api/alloc?uri=%zz", 400, "invalid"),
            ("/api/alloc?uri=w1%2", 400, "invalid"),
            ("/api/alloc", 400, "invalid"),
            ("/api/alloc?uri=" + a["id"] + "&uri=" + a["id"], 400, "invalid"),
            ("/api/logs?" + ds.query_string(alloc=a["id"], exec="e", stream="bogus"), 400, "invalid"),
            ("/api/logs?" + ds.query_string(alloc=a["id"], exec="e", tail=(1 << 20) + 1), 400, "invalid"),
            ("/api/events?limit=many", 400, "invalid"),
            ("/api/events?limit=1001", 400, "invalid"),
            # Bytes that are not UTF-8, decoded from the query: still a UTF-8 JSON error body.
            ("/api/alloc?uri=%ff", 400, "invalid"),
            ("/api/pools?%ff=1", 400, "invalid"),
            ("/api/alloc?uri=w1/%ff", (400, 404), None),
            ("/api/alloc?uri=%c3%28/x", (400, 404, 502), None),
        ]
        for path, status, kind in cases:
            with self.subTest(path=path[:80]):
                statuses = status if isinstance(status, tuple) else (status,)
                r = self.dash.get(path)
                self.assertIn(r.status, statuses, "GET %s: %r" % (path[:120], r))
                self.assert_error(path, r.status, kind)
        r = self.dash.get("/api/pools", method="POST", body=b"{}", headers={"Content-Type": "application/json"})
        self.assertTrue(400 <= r.status < 500, "POST /api/pools: %r (read-only: all GET)" % r)

        # Garbage instead of HTTP, all at once; then a half-sent request and a silent
        # connection held open while /healthz must still answer.
        garbage = [
            b"\x00\x01\x02\xff\xfe" * 2000,
            b"GARBAGE\r\n\r\n",
            b"\r\n\r\n\r\n",
            b"GET " + b"/" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 200000 + b"\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
            b"GET /healthz HTTP/9.9\r\n\r\n",
            b"GET /api/stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            bytes(range(256)) * 64,
        ]
        socks = []
        for payload in garbage:
            s = socket.create_connection((self.dash.host, self.dash.port), timeout=5.0)
            socks.append(s)
            try:
                s.sendall(payload)
            except OSError:  # the server may close on us mid-send: fine
                pass
        held = [socket.create_connection((self.dash.host, self.dash.port), timeout=5.0) for _ in range(2)]
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        t0 = time.monotonic()
        r = self.dash.get("/healthz", timeout=3.0)
        self.assertEqual((r.status, r.text.strip()), (200, "ok"))
        self.assertLess(time.monotonic() - t0, 2.0, "/healthz slow while a request is half-sent")
        for s in socks + held:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
                s.close()
            except OSError:
                pass
        wait_until(lambda: self.dash.get("/healthz", timeout=1.0).status == 200, 5.0, what="/healthz after garbage")
        self.assertTrue(self.dash.proc.running and self.dash.proc.pid == self._dash_pid, "pool-dash died")
        self.assertEqual(self.dash_pools()["w1"]["allocs"], 1)

        # Read-only: every GET above and the page's own endpoints leave the broker as it was.
        for path in ("/", "/app.js", "/style.css", "/api/pools", "/api/queue", "/api/events", "/api/stats",
                     "/api/allocs", "/api/alloc?uri=" + a["id"], "/metrics"):
            self.assertEqual(self.dash.get(path).status, 200, path)
        self.assertEqual(self.broker_snapshot(), before, "the broker changed under a read-only dashboard")
        self.c.free(a["id"])

    def test_broker_outage_reported_and_ticks_keep_coming(self):
        probe = self.open_probe()
        probe.wait_for(lambda e: e.name == "stats" and e.json()["broker_up"] is True, 3.0, "a stats tick")
        self.cluster.kill_broker()
        t_kill = time.monotonic()
        slow = {}

        def broker_call():  # a GET that needs the broker: 502 once the dash's --timeout (5 s) passed
            t = time.monotonic()
            r = self.dash.get("/api/allocs", timeout=15.0)
            slow.update(status=r.status, body=r.body, took=time.monotonic() - t)
        th = threading.Thread(target=broker_call, daemon=True)
        th.start()
        wait_until(lambda: self.get_json("/api/stats")["broker_up"] is False, 15.0, interval=0.2,
                   what="/api/stats broker_up false after the broker was killed")
        t_down = time.monotonic() - t_kill
        self.assertEqual(self.metric("poolbus_broker_up"), 0.0)
        self.assertEqual(self.get("/healthz").status, 200)
        th.join(15.0)
        self.assertEqual(slow.get("status"), 502, "GET /api/allocs with the broker down: %r" % slow)
        # Stats come every second (dash_spec), also while the broker is away: observe 10 s of it.
        probe.wait_for(lambda e: e.name == "stats" and e.json()["broker_up"] is False, 10.0, "stats broker_up false")
        end = t_kill + max(10.0, t_down + 3.0)
        while time.monotonic() < end:
            probe.next_event(end - time.monotonic())
        ticks = [e.t - t_kill for e in list(probe.history) if e.name == "stats" and e.t >= t_kill - 1.5]
        gaps = [b - a for a, b in zip(ticks, ticks[1:])]
        sys.stderr.write("\n[dash] broker down: broker_up false after %.1f s; stats ticks at %s s\n"
                         % (t_down, " ".join("%.1f" % x for x in ticks)))

        self.cluster.start_broker()
        self.cluster.wait_pools(set(self.cluster.workers), 10.0)
        wait_until(lambda: self.get_json("/api/stats")["broker_up"] is True and self.get("/api/allocs").status == 200,
                   15.0, interval=0.2, what="pool-dash sees the broker again")
        self.assertEqual(self.metric("poolbus_broker_up"), 1.0)
        a = self.accept("w1", owner="dash-outage")
        probe.wait_for(lambda e: ds.is_alloc_tail(e, a["id"], "created"), 5.0, "a tail after the broker came back")
        self.c.free(a["id"])
        self.assertLess(max(gaps), 2.5, "SSE stats ticks stalled while the broker was down: gaps %s s"
                        % " ".join("%.1f" % g for g in gaps))

    def get(self, path, **kw):
        return self.dash.get(path, **kw)

    # -- 6. Server-Sent Events ------------------------------------------------------------
    def open_probe(self):
        probe = self.dash.sse()
        self.addCleanup(probe.close)
        self.assertEqual(probe.status, 200)
        self.assertTrue(probe.headers.get("content-type", "").startswith("text/event-stream"), probe.headers)
        first = probe.next_event(5.0)
        self.assertIsNotNone(first, "no event within 5 s of connecting")
        self.assertEqual(first.name, "hello", "the first event must be hello: %r" % first)
        self.assertIsInstance(first.json()["now_ms"], int)
        return probe.start_thread()

    def sse_clients(self):
        return self.get_json("/api/stats")["sse_clients"]

    def wait_sse_clients(self, n, timeout, what):
        wait_until(lambda: self.sse_clients() == n, timeout, interval=0.1,
                   what="%s: /api/stats sse_clients == %d (now %r)" % (what, n, self.sse_clients()))

    def test_sse_events_pool_tail_seen_stats(self):
        probe = self.open_probe()
        a = self.accept("w1", owner="dash-sse")
        got = probe.wait_for_all({
            "pool": lambda e: is_pool(e, "w1") and e.json()["allocs"] == 1,
            "tail": lambda e: ds.is_alloc_tail(e, a["id"], "created")}, 5.0, "pool w1 allocs 1 + tail created")
        pool = got["pool"].json()
        self.assertEqual(pool["resources"], W1)
        self.assertEqual(pool["available"], {"cpu": 3.0, "mem": 7.0 * GiB, "disk": 90.0 * GiB})
        self.assertEqual(pool["draining"], False)
        tail = got["tail"].json()
        self.assertEqual((tail["topic"], tail["pool"]), ("allocs.w1", "w1"))
        self.assertEqual(tail["body"]["alloc"]["meta"].get("owner"), "dash-sse")
        seen = probe.wait_for(lambda e: e.name == "seen" and e.json()["quiet"] == [], 3.0,
                              "seen with no pool quiet (w1 and w2 heartbeat every 200 ms)")
        self.assertIsInstance(seen.json()["now_ms"], int)
        stats = probe.wait_for(lambda e: e.name == "stats", 3.0, "stats (every second)").json()
        self.assertEqual((stats["pools"], stats["broker_up"]), (2, True))
        self.assertGreaterEqual(stats["sse_clients"], 1)
        self.c.free(a["id"])
        probe.wait_for_all({
            "pool": lambda e: is_pool(e, "w1") and e.json()["allocs"] == 0,
            "tail": lambda e: ds.is_alloc_tail(e, a["id"], "freed")}, 5.0, "pool w1 allocs 0 + tail freed")
        self.assertFalse([e for e in probe.history if e.name == "reset"], "a single idle client got reset")

    def test_sse_abrupt_disconnects_cost_nothing(self):
        probe = self.open_probe()
        self.wait_sse_clients(1, 20.0, "clients of earlier tests reaped, only the probe left")
        clients = []
        for i in range(20):
            c = self.dash.sse()
            self.addCleanup(c.close)
            c.wait_for(lambda e: e.name == "hello", 5.0, "hello on client %d" % i)
            clients.append(c)
        self.wait_sse_clients(21, 5.0, "20 clients and the probe connected")
        for i, c in enumerate(clients):
            c.close(abrupt=(i % 2 == 0))  # half RST, half FIN, right after the hello
        t0 = time.monotonic()
        a = self.accept("w1", owner="dash-abrupt")
        ev = probe.wait_for(lambda e: ds.is_alloc_tail(e, a["id"], "created"), 3.0,
                            "the created tail on the live probe after 20 abrupt disconnects")
        sys.stderr.write("\n[dash] after 20 abrupt disconnects, accept -> probe: %.1f ms\n" % ((ev.t - t0) * 1000))
        self.c.free(a["id"])
        probe.wait_for(lambda e: ds.is_alloc_tail(e, a["id"], "freed"), 3.0, "the freed tail on the probe")
        self.wait_sse_clients(1, 20.0, "the 20 dead clients dropped")
        self.assertFalse(probe.closed, "the live probe's stream ended")

    def measure(self, probe, n):
        """n samples of: just before the accept -> the probe reads that alloc's created tail."""
        delays, ids = [], []
        for _ in range(n):
            t0 = time.monotonic()
            a = self.accept("w1", owner="dash-fanout")
            ev = probe.wait_for(lambda e: ds.is_alloc_tail(e, a["id"], "created"), 5.0, "created tail")
            delays.append(ev.t - t0)
            self.c.free(a["id"])
            probe.wait_for(lambda e: ds.is_alloc_tail(e, a["id"], "freed"), 5.0, "freed tail")
            ids.append(a["id"])
        return delays, ids

    def test_sse_fanout_to_200_clients(self):
        probe = self.open_probe()
        self.measure(probe, 2)  # warm-up: connections, caches
        alone, _ = self.measure(probe, 10)
        crowd = ds.SSECrowd(self.dash.host, self.dash.port, 200)
        self.addCleanup(crowd.close)
        wait_until(lambda: self.sse_clients() >= 201, 10.0, what="sse_clients >= 201 (now %r)" % self.sse_clients())
        crowded, ids = self.measure(probe, 10)
        report = crowd.report(ids, timeout=15.0)
        p_alone, p_crowd = p50(alone), p50(crowded)
        sys.stderr.write("\n[dash] SSE accept -> probe sees its created tail: p50 %.2f ms alone (max %.2f), "
                         "p50 %.2f ms with 200 other clients (max %.2f)\n"
                         % (p_alone * 1000, max(alone) * 1000, p_crowd * 1000, max(crowded) * 1000))
        self.assertEqual(len(report), 200)
        tails = [c["tails"] for c in report]
        sys.stderr.write("[dash] tail events per crowd client: min %d, max %d\n" % (min(tails), max(tails)))
        for c in report:
            self.assertEqual(c["status"], 200, c)
            self.assertFalse(c["reset"], "crowd client %d was sent reset" % c["i"])
            self.assertFalse(c["closed"], "crowd client %d: the server closed its stream" % c["i"])
            missing = [i for i in ids if i not in c["created"] or i not in c["freed"]]
            self.assertEqual(missing, [], "crowd client %d missed the created/freed tails of %s" % (c["i"], missing))
            self.assertGreaterEqual(c["tails"], 2 * len(ids), c["i"])
        bound = max(3 * p_alone, p_alone + 0.050)
        self.assertLess(p_crowd, bound, "fan-out to 200 clients: p50 %.1f ms >= bound %.1f ms (alone %.1f ms)"
                        % (p_crowd * 1000, bound * 1000, p_alone * 1000))
        self.assertFalse(probe.closed)


def is_pool(ev, pool_id):
    return ev.name == "pool" and ev.json().get("id") == pool_id


if __name__ == "__main__":
    unittest.main()

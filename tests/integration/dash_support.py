"""Helpers for the pool-dash integration tests (test_dashboard): the pool-dash
process on a cluster, plain HTTP GETs, a Server-Sent-Events reader, a crowd of
SSE clients in a child process, a minimal Chrome DevTools Protocol driver for
headless chromium, a Prometheus launcher and a Prometheus text-format parser.

Only the stdlib and websocket-client. Every process started here dies with the
test process (PR_SET_PDEATHSIG) and is stopped by its close()/stop(); waits are
deadline-bounded polls (harness.wait_until), never fixed sleeps.
"""

import base64
import ctypes
import http.client
import json
import math
import os
import queue
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib

import harness
from harness import wait_until

CHROMIUM = os.environ.get("POOLBUS_CHROMIUM", "/usr/bin/chromium")
PROMETHEUS = os.environ.get("POOLBUS_PROMETHEUS", "/usr/bin/prometheus")


def dash_binary():
    return os.path.join(harness.bin_dir(), "pool-dash")


def dash_present():
    return os.access(dash_binary(), os.X_OK)


def executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _die_with_parent_own_group():
    # In the child before exec: its own process group (so close() can kill the whole
    # tree, e.g. chromium's renderers and zygotes) and SIGKILL when the test dies.
    os.setpgrp()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _kill_group(popen, timeout=5.0):
    """SIGTERM to the child's process group, SIGKILL after `timeout`; reaps the child."""
    if popen is None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(popen.pid, sig)  # the group id is the child's pid (setpgrp)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            popen.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # Grandchildren left in the group after the leader exited.
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# -- plain HTTP --------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # {lower-case name: value}
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<HTTP %s %s %r>" % (self.status, self.headers.get("content-type"), self.body[:300])


def http_get(host, port, path, timeout=5.0, method="GET", body=None, headers=None):
    """One request on a fresh connection (http.client: no proxy, no exception on 4xx/5xx)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def query_string(**params):
    return urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})


class PoolDash:
    """pool-dash on a cluster: --api/--stream of the cluster, --http on a free port."""

    def __init__(self, cluster, port=None, extra_args=()):
        self.cluster = cluster
        self.host = "127.0.0.1"
        self.port = port or harness.free_ports(1)[0]
        self.proc = harness.Process("pool-dash", [
            dash_binary(), "--api", cluster.api, "--stream", cluster.stream,
            "--http", "%s:%d" % (self.host, self.port)] + list(extra_args),
            os.path.join(cluster.log_dir, "dash.log"))

    @property
    def base_url(self):
        return "http://%s:%d" % (self.host, self.port)

    def url(self, path="/"):
        return self.base_url + path

    def start(self, timeout=15.0):
        self.proc.start()
        try:
            wait_until(lambda: self._healthy(), timeout, what="pool-dash /healthz on %s" % self.base_url)
        except AssertionError:
            raise AssertionError("pool-dash did not come up (running=%s); its log:\n%s"
                                 % (self.proc.running, self.proc.log_text()))
        return self

    def _healthy(self):
        if not self.proc.running:
            raise AssertionError("pool-dash exited with %s; its log:\n%s"
                                 % (self.proc.popen.returncode, self.proc.log_text()))
        r = self.get("/healthz", timeout=1.0)
        return r.status == 200 and r.text.strip() == "ok"

    def stop(self):
        return self.proc.stop()

    def get(self, path, timeout=5.0, **kw):
        return http_get(self.host, self.port, path, timeout=timeout, **kw)

    def get_json(self, path, timeout=5.0, status=200):
        r = self.get(path, timeout)
        if r.status != status:
            raise AssertionError("GET %s: status %s, want %s: %r" % (path, r.status, status, r.body[:500]))
        ctype = r.headers.get("content-type", "")
        if not ctype.startswith("application/json"):
            raise AssertionError("GET %s: Content-Type %r, want application/json" % (path, ctype))
        return r.json()

    def stats(self):
        return self.get_json("/api/stats")

    def metrics(self):
        r = self.get("/metrics")
        if r.status != 200:
            raise AssertionError("GET /metrics: status %s: %r" % (r.status, r.body[:300]))
        return parse_metrics(r.text)

    def sse(self, timeout=5.0, **kw):
        return SSEStream(self.host, self.port, timeout=timeout, **kw)


# -- Prometheus text format --------------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$" % _NAME)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


class Metrics:
    """Parsed exposition: samples {(name, ((label, value), ...sorted)): float}, types {name: type}."""

    def __init__(self):
        self.samples = {}
        self.types = {}
        self.helps = {}
        self.lines = []

    def get(self, name, default=None, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def series(self, name):
        """[(labels dict, value)] of every sample named `name`."""
        return [(dict(lbl), v) for (n, lbl), v in self.samples.items() if n == name]

    def __contains__(self, name):
        return any(n == name for n, _ in self.samples)


def _parse_value(text):
    low = text.lower()
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    return float(text)  # raises ValueError on garbage


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_labels(text):
    labels = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if not m:
            raise ValueError("bad label set at %r" % text[pos:])
        if m.group(1) in labels:
            raise ValueError("label %r repeated" % m.group(1))
        labels[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
    return labels


def parse_metrics(text):
    """Strict parse of the Prometheus text format 0.0.4; ValueError names the bad line."""
    out = Metrics()
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                if len(parts) != 4 or parts[3].strip() not in ("counter", "gauge", "histogram", "summary",
                                                              "untyped"):
                    raise ValueError("line %d: bad TYPE line %r" % (n, line))
                if parts[2] in out.types:
                    raise ValueError("line %d: second TYPE for %s" % (n, parts[2]))
                out.types[parts[2]] = parts[3].strip()
            elif len(parts) >= 3 and parts[1] == "HELP":
                out.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError("line %d is not `name{labels} value`: %r" % (n, line))
        try:
            labels = parse_labels(m.group(2) or "")
            value = _parse_value(m.group(3))
        except ValueError as e:
            raise ValueError("line %d (%r): %s" % (n, line, e))
        key = (m.group(1), tuple(sorted(labels.items())))
        if key in out.samples:
            raise ValueError("line %d: duplicate sample %r" % (n, line))
        out.samples[key] = value
        out.lines.append(line)
    return out


# -- Server-Sent Events ------------------------------------------------------------

class Event:
    __slots__ = ("name", "data", "t")

    def __init__(self, name, data, t):
        self.name = name
        self.data = data
        self.t = t  # time.monotonic() when its last byte was read

    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return "<SSE %s %s>" % (self.name, self.data[:200])


class SSEParser:
    """Incremental text/event-stream parser (WHATWG rules: `event:`/`data:` fields,
    `:` comments, a blank line dispatches; CRLF, LF or CR line ends)."""

    def __init__(self):
        self._buf = b""
        self._name = ""
        self._data = []
        self.comments = 0

    def feed(self, chunk, t=None):
        t = time.monotonic() if t is None else t
        self._buf += chunk
        events = []
        while True:
            i = self._buf.find(b"\n")
            j = self._buf.find(b"\r")
            if i < 0 and j < 0:
                break
            if j >= 0 and (i < 0 or j < i):
                if j == len(self._buf) - 1:
                    break  # a CR at the end: wait to see whether an LF follows
                end, nxt = j, j + (2 if self._buf[j + 1:j + 2] == b"\n" else 1)
            else:
                end, nxt = i, i + 1
            line = self._buf[:end].decode("utf-8", "replace")
            self._buf = self._buf[nxt:]
            ev = self._line(line, t)
            if ev is not None:
                events.append(ev)
        return events

    def _line(self, line, t):
        if line == "":
            if not self._data:
                self._name = ""
                return None
            ev = Event(self._name or "message", "\n".join(self._data), t)
            self._name, self._data = "", []
            return ev
        if line.startswith(":"):
            self.comments += 1
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._name = value
        elif field == "data":
            self._data.append(value)
        return None


class Dechunker:
    """HTTP/1.1 chunked transfer decoding, incremental; `done` after the last chunk."""

    def __init__(self):
        self._buf = b""
        self._state = "size"  # size -> data -> crlf -> size ... -> done
        self._left = 0
        self.done = False

    def feed(self, data):
        self._buf += data
        out = []
        while True:
            if self._state == "size":
                i = self._buf.find(b"\r\n")
                if i < 0:
                    if len(self._buf) > 1024:
                        raise ValueError("chunk size line too long: %r" % self._buf[:64])
                    break
                size = int(self._buf[:i].split(b";")[0].strip(), 16)
                self._buf = self._buf[i + 2:]
                if size == 0:
                    self._state, self.done = "done", True
                    break
                self._state, self._left = "data", size
            elif self._state == "data":
                if not self._buf:
                    break
                take = self._buf[:self._left]
                out.append(take)
                self._buf = self._buf[len(take):]
                self._left -= len(take)
                if self._left == 0:
                    self._state = "crlf"
            elif self._state == "crlf":
                if len(self._buf) < 2:
                    break
                if self._buf[:2] != b"\r\n":
                    raise ValueError("chunk not followed by CRLF: %r" % self._buf[:16])
                self._buf = self._buf[2:]
                self._state = "size"
            else:
                break
        return b"".join(out)


class SSEStream:
    """One GET /api/stream over a raw socket. connect() reads the response head;
    events are read synchronously (next_event/wait_for) or, after start_thread(),
    by a background thread that timestamps each on arrival into a queue."""

    def __init__(self, host, port, path="/api/stream", timeout=5.0, connect=True):
        self.host, self.port, self.path = host, port, path
        self.sock = None
        self.status = None
        self.headers = {}
        self.parser = SSEParser()
        self.dechunker = None
        self.history = []  # every event read so far, in order
        self.closed = False  # the server ended the stream
        self._queue = None
        self._thread = None
        self._lock = threading.Lock()
        self._buffered = []  # parsed, not yet returned (synchronous mode)
        if connect:
            self.connect(timeout)

    def connect(self, timeout=5.0):
        self.sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
                           "Cache-Control: no-cache\r\n\r\n" % (self.path, self.host, self.port)).encode())
        deadline = time.monotonic() + timeout
        head = b""
        while b"\r\n\r\n" not in head:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("pool-dash closed /api/stream before the response head: %r" % head)
            head += chunk
            if len(head) > 65536:
                raise ConnectionError("response head too long")
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.dechunker = Dechunker()
        evs = self._events_from(rest, time.monotonic())
        self.history.extend(evs)
        self._buffered.extend(evs)
        return self

    def _events_from(self, raw, t):
        if self.dechunker is not None:
            raw = self.dechunker.feed(raw)
        return self.parser.feed(raw, t) if raw else []

    def _read_some(self, timeout):
        """Events from one recv (waits up to timeout); [] on timeout; sets closed at EOF."""
        if self.closed:
            return []
        self.sock.settimeout(max(0.001, timeout))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return []
        except OSError:
            self.closed = True
            return []
        if not chunk:
            self.closed = True
            return []
        return self._events_from(chunk, time.monotonic())

    def next_event(self, timeout=5.0):
        """The next event (None at the deadline or when the stream ended)."""
        if self._queue is not None:
            try:
                ev = self._queue.get(timeout=max(0.0, timeout))
            except queue.Empty:
                return None
            return ev
        deadline = time.monotonic() + timeout
        while True:
            if self._buffered:
                return self._buffered.pop(0)
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            evs = self._read_some(left)
            self.history.extend(evs)
            self._buffered.extend(evs)

    def wait_for(self, pred, timeout=5.0, what="event"):
        """Reads until pred(event) holds; returns that event. AssertionError at the
        deadline (naming the last events seen). Events that do not match are dropped
        (they stay in history)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            ev = self.next_event(left) if left > 0 else None
            if ev is None:
                if time.monotonic() >= deadline or (self.closed and self._queue is None):
                    raise AssertionError("SSE: no %s within %.1fs (closed=%s, last events: %r)"
                                         % (what, timeout, self.closed, seen[-8:]))
                continue
            try:
                if pred(ev):
                    return ev
            except (ValueError, KeyError, TypeError):
                pass
            seen.append(ev)

    def wait_for_all(self, preds, timeout=5.0, what="events"):
        """Reads until each of preds ({name: pred}) matched an event, in any order;
        returns {name: first matching event}. AssertionError at the deadline."""
        found = {}
        deadline = time.monotonic() + timeout
        seen = []
        while len(found) < len(preds):
            left = deadline - time.monotonic()
            ev = self.next_event(left) if left > 0 else None
            if ev is None:
                if time.monotonic() >= deadline or (self.closed and self._queue is None):
                    raise AssertionError("SSE: %s: only %s matched within %.1fs (closed=%s, last events: %r)"
                                         % (what, sorted(found), timeout, self.closed, seen[-8:]))
                continue
            seen.append(ev)
            for name, pred in preds.items():
                try:
                    if name not in found and pred(ev):
                        found[name] = ev
                except (ValueError, KeyError, TypeError):
                    pass
        return found

    def start_thread(self):
        """From now on a daemon thread reads the socket; next_event/wait_for take from its queue."""
        self._queue = queue.Queue()
        for ev in self._buffered:
            self._queue.put(ev)
        self._buffered = []
        self._thread = threading.Thread(target=self._run, name="sse-reader", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self.closed:
            try:
                sock = self.sock
                sock.settimeout(None)
                chunk = sock.recv(65536)
            except (OSError, AttributeError):  # AttributeError: close() dropped the socket
                self.closed = True
                break
            t = time.monotonic()
            if not chunk:
                self.closed = True
                break
            try:
                evs = self._events_from(chunk, t)
            except ValueError:
                self.closed = True
                break
            with self._lock:
                self.history.extend(evs)
            for ev in evs:
                self._queue.put(ev)

    def close(self, abrupt=False):
        """Closes the socket; abrupt=True sends a TCP RST (SO_LINGER 0) instead of a FIN."""
        if self.sock is None:
            return
        try:
            if abrupt:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.sock.close()
        finally:
            self.sock = None
            self.closed = True
        if self._thread is not None:
            self._thread.join(2.0)


def is_alloc_tail(ev, alloc_id, event):
    """A `tail` event for allocs.<pool> `event` (created/freed/...) of alloc alloc_id."""
    if ev.name != "tail":
        return False
    t = ev.json()
    return (t.get("kind") == "allocs" and t.get("event") == event
            and ((t.get("body") or {}).get("alloc") or {}).get("id") == alloc_id)


# -- a crowd of SSE clients in a child process --------------------------------------

class SSECrowd:
    """N SSE clients on /api/stream in a child Python process (one thread, selectors),
    so reading them does not compete with the test for its GIL. Each reads and parses
    everything and records, per client, the number of `tail` events and the alloc ids
    of allocs.* created/freed tails; report() returns that per client."""

    def __init__(self, host, port, n, timeout=30.0):
        self.n = n
        self.popen = subprocess.Popen(
            [harness.PYTHON, os.path.abspath(__file__), "crowd", host, str(port), str(n)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
            preexec_fn=_die_with_parent_own_group, cwd=harness.HERE)
        ready = self._read_line(timeout)
        if ready is None or ready.get("ready") != n:
            self.close()
            raise AssertionError("SSE crowd: %r of %d clients got their hello within %.0fs"
                                 % (ready, n, timeout))

    def _read_line(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.popen.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                return None
        finally:
            sel.close()
        line = self.popen.stdout.readline()
        return json.loads(line) if line.strip() else None

    def report(self, expect_ids=(), timeout=15.0):
        """Per-client results, once every client has seen the created and freed tails
        of every alloc in expect_ids (or `timeout` s have passed: then as they are)."""
        self.popen.stdin.write((json.dumps({"report": list(expect_ids), "timeout": timeout}) + "\n").encode())
        self.popen.stdin.flush()
        got = self._read_line(timeout + 10.0)
        if got is None:
            raise AssertionError("SSE crowd sent no report within %.0fs" % (timeout + 10.0))
        return got["clients"]

    def close(self):
        if self.popen is None:
            return
        try:
            self.popen.stdin.close()
        except OSError:
            pass
        _kill_group(self.popen, 3.0)
        try:
            self.popen.stdout.close()
        except OSError:
            pass
        self.popen = None


def _crowd_main(host, port, n):
    sel = selectors.DefaultSelector()
    clients = []
    for i in range(n):
        s = SSEStream(host, int(port), connect=False)
        s.sock = socket.create_connection((host, int(port)), timeout=20.0)
        s.sock.sendall(("GET /api/stream HTTP/1.1\r\nHost: %s:%s\r\nAccept: text/event-stream\r\n\r\n"
                        % (host, port)).encode())
        s.sock.setblocking(False)
        st = {"i": i, "status": None, "hello": False, "events": 0, "tails": 0, "created": [], "freed": [],
              "reset": False, "closed": False}
        clients.append((s, st, [b""]))
        sel.register(s.sock, selectors.EVENT_READ, (s, st, clients[-1][2]))
    stdin = sys.stdin.buffer
    sel.register(stdin, selectors.EVENT_READ, None)
    announced = False
    hello_deadline = time.monotonic() + 25.0
    pending = None  # (expected ids, deadline) of a report asked for

    def satisfied(ids):
        return all(all(i in st["created"] and i in st["freed"] for i in ids) for _, st, _ in clients)

    while True:
        if not announced and (all(st["hello"] for _, st, _ in clients) or time.monotonic() > hello_deadline):
            sys.stdout.write(json.dumps({"ready": sum(st["hello"] for _, st, _ in clients)}) + "\n")
            sys.stdout.flush()
            announced = True
        if pending is not None and (satisfied(pending[0]) or time.monotonic() > pending[1]):
            sys.stdout.write(json.dumps({"clients": [st for _, st, _ in clients]}) + "\n")
            sys.stdout.flush()
            pending = None
        for key, _ in sel.select(0.2):
            if key.data is None:
                line = stdin.readline()
                if not line:
                    return  # the test closed our stdin: done
                ask = json.loads(line)
                pending = (set(ask["report"]), time.monotonic() + float(ask["timeout"]))
                continue
            s, st, head = key.data
            try:
                chunk = s.sock.recv(262144)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                st["closed"] = True
                sel.unregister(s.sock)
                continue
            t = time.monotonic()
            if st["status"] is None:
                head[0] += chunk
                if b"\r\n\r\n" not in head[0]:
                    continue
                raw_head, _, chunk = head[0].partition(b"\r\n\r\n")
                st["status"] = int(raw_head.split(b" ", 2)[1])
                if b"transfer-encoding: chunked" in raw_head.lower():
                    s.dechunker = Dechunker()
            for ev in s._events_from(chunk, t) if chunk else []:
                st["events"] += 1
                if ev.name == "hello":
                    st["hello"] = True
                elif ev.name == "reset":
                    st["reset"] = True
                elif ev.name == "tail":
                    st["tails"] += 1
                    try:
                        tl = ev.json()
                        if tl.get("kind") == "allocs" and tl.get("event") in ("created", "freed"):
                            st[tl["event"]].append(tl["body"]["alloc"]["id"])
                    except (ValueError, KeyError, TypeError):
                        pass


# -- Chrome DevTools Protocol --------------------------------------------------------

class CDPError(Exception):
    pass


class Chromium:
    """Headless chromium with --remote-debugging-port=0 in a fresh user-data-dir."""

    def __init__(self, binary=CHROMIUM, width=1400, height=900):
        self.binary = binary
        self.width, self.height = width, height
        self.dir = tempfile.mkdtemp(prefix="poolbus-chromium-")
        self.profile = os.path.join(self.dir, "profile")
        os.makedirs(self.profile)
        self.log_path = os.path.join(self.dir, "chromium.log")
        self.popen = None
        self.port = None
        self.pages = []

    def start(self, timeout=30.0):
        argv = [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--no-default-browser-check", "--no-proxy-server",
                "--disable-extensions", "--mute-audio", "--hide-scrollbars", "--password-store=basic",
                "--use-mock-keychain", "--remote-allow-origins=*",
                "--window-size=%d,%d" % (self.width, self.height),
                "--user-data-dir=" + self.profile, "--remote-debugging-port=0", "about:blank"]
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          preexec_fn=_die_with_parent_own_group)
        port_file = os.path.join(self.profile, "DevToolsActivePort")

        def port():
            if self.popen.poll() is not None:
                raise AssertionError("chromium exited with %s:\n%s" % (self.popen.returncode, self.log_text()))
            try:
                with open(port_file) as f:
                    lines = f.read().split("\n")
                return int(lines[0]) if lines[0].strip() and len(lines) >= 2 else None
            except (OSError, ValueError):
                return None
        self.port = wait_until(port, timeout, interval=0.05, what="chromium's DevToolsActivePort")
        wait_until(lambda: self._http("GET", "/json/version"), 10.0, what="chromium /json/version")
        return self

    def _http(self, method, path):
        r = http_get("127.0.0.1", self.port, path, timeout=5.0, method=method)
        if r.status != 200:
            raise CDPError("%s %s: %s %r" % (method, path, r.status, r.body[:200]))
        return r.json()

    def new_page(self, url="about:blank"):
        """A fresh tab (PUT /json/new) driven over its own DevTools websocket."""
        target = self._http("PUT", "/json/new?" + url)
        page = CDPPage(target["webSocketDebuggerUrl"], target.get("id"))
        self.pages.append(page)
        return page

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def close(self):
        for p in self.pages:
            p.close()
        self.pages = []
        _kill_group(self.popen, 3.0)
        self.popen = None
        shutil.rmtree(self.dir, ignore_errors=True)


class CDPPage:
    """One page target: send(method, params) -> result; events are kept in self.events."""

    def __init__(self, ws_url, target_id=None):
        import websocket  # websocket-client
        self._ws_mod = websocket
        self.target_id = target_id
        self.ws = websocket.create_connection(ws_url, timeout=10, suppress_origin=True)
        self._id = 0
        self.events = []
        self.exceptions = []  # Runtime.exceptionThrown details (uncaught JS errors)
        self.console = []  # (type, text) of console.* calls and Log entries

    def send(self, method, params=None, timeout=15.0):
        self._id += 1
        mid = self._id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("no reply to %s within %.0fs" % (method, timeout))
            self.ws.settimeout(left)
            try:
                raw = self.ws.recv()
            except self._ws_mod.WebSocketTimeoutException:
                continue
            msg = json.loads(raw)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CDPError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self._event(msg)

    def _event(self, msg):
        self.events.append(msg)
        m, p = msg["method"], msg.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.exceptions.append(d.get("exception", {}).get("description") or d.get("text"))
        elif m == "Runtime.consoleAPICalled":
            self.console.append((p.get("type"), " ".join(str(a.get("value", a.get("description", "")))
                                                         for a in p.get("args", []))))
        elif m == "Log.entryAdded":
            e = p.get("entry", {})
            self.console.append((e.get("level"), "%s %s" % (e.get("text"), e.get("url", ""))))

    def evaluate(self, expression, timeout=10.0):
        """The JSON value of a JS expression in the page (promises awaited)."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError("JS exception in %r: %s" % (expression[:120],
                                                       d.get("exception", {}).get("description") or d.get("text")))
        return r.get("result", {}).get("value")

    def navigate(self, url, timeout=20.0):
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Log.enable")
        r = self.send("Page.navigate", {"url": url}, timeout)
        if r.get("errorText"):
            raise CDPError("navigate %s: %s" % (url, r["errorText"]))
        wait_until(lambda: self.evaluate("document.readyState") == "complete", timeout,
                   what="%s loaded" % url)

    def set_viewport(self, width, height):
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                         "deviceScaleFactor": 1, "mobile": False})

    def screenshot(self, path):
        data = base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"}, 30.0)["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def png_info(data):
    """(width, height, distinct byte values in the decoded image data) of a PNG;
    ValueError if it is not one. Few distinct values = a blank page."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG (starts %r)" % data[:8])
    pos, width, height, idat = 8, None, None, []
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if ctype == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
        pos += 12 + length
    if width is None or not idat:
        raise ValueError("PNG without IHDR or IDAT")
    raw = zlib.decompress(b"".join(idat))
    return width, height, len(set(raw))


# -- Prometheus ------------------------------------------------------------------------

class Prometheus:
    """A real prometheus scraping `target` (host:port) every second into a fresh TSDB."""

    def __init__(self, target, metrics_path="/metrics", binary=PROMETHEUS, scrape_interval="1s"):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="poolbus-prometheus-")
        self.port = harness.free_ports(1)[0]
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("global:\n"
                    "  scrape_interval: %s\n"
                    "  scrape_timeout: %s\n"
                    "  evaluation_interval: %s\n"
                    "scrape_configs:\n"
                    "  - job_name: pool-dash\n"
                    "    metrics_path: %s\n"
                    "    static_configs:\n"
                    "      - targets: ['%s']\n" % (scrape_interval, scrape_interval, scrape_interval,
                                                  metrics_path, target))
        self.proc = harness.Process("prometheus", [
            binary, "--config.file=" + self.config, "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
            "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
            os.path.join(self.dir, "prometheus.log"))

    def start(self, timeout=30.0):
        self.proc.start()

        def ready():
            if not self.proc.running:
                raise AssertionError("prometheus exited:\n%s" % self.proc.log_text())
            return http_get("127.0.0.1", self.port, "/-/ready", timeout=1.0).status == 200
        wait_until(ready, timeout, interval=0.1, what="prometheus /-/ready")
        return self

    def api(self, path):
        r = http_get("127.0.0.1", self.port, path, timeout=5.0)
        if r.status != 200:
            raise AssertionError("prometheus %s: %s %r" % (path, r.status, r.body[:300]))
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError("prometheus %s: %r" % (path, body))
        return body["data"]

    def targets(self):
        return self.api("/api/v1/targets")["activeTargets"]

    def query(self, expr):
        """[(labels, float value)] of an instant query."""
        data = self.api("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "crowd":
        _crowd_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit("usage: dash_support.py crowd HOST PORT N")

"""poolbus: a small pure-Python client for the poolbus broker (wire protocol v1).

Talks to the broker's client API (ROUTER, default tcp://127.0.0.1:7700) over a
DEALER socket and to its offer stream (PUB, default tcp://127.0.0.1:7701) over a
SUB socket. Needs only pyzmq and msgpack. See protocol.md for the contract.

    from poolbus import Client, Keepalive
    c = Client()
    alloc = c.allocate({"cpu": 1, "mem": 1 << 30, "disk": 1 << 30})
    with Keepalive(c, alloc["id"]):
        ...                       # the lease is renewed in the background
    c.free(alloc["id"])

With a CURVE broker (docs/security.md), pass the keys:

    c = Client(api, curve=load_curve("~/.poolbus", "alice"))
"""

import collections
import itertools
import os
import random
import stat
import re
import threading
import time

import msgpack
import zmq

__all__ = [
    "PoolError", "PoolTimeout", "Client", "Keepalive", "Subscriber", "RunResult",
    "parse_resources", "parse_duration_ms", "load_curve",
    "DEFAULT_API", "DEFAULT_STREAM", "MAX_KEEPALIVE_INTERVAL_MS",
]

DEFAULT_API = "tcp://127.0.0.1:7700"
DEFAULT_STREAM = "tcp://127.0.0.1:7701"
MAX_KEEPALIVE_INTERVAL_MS = 300_000  # reflow's MaxKeepaliveInterval (5 min)

# Error kinds after which renewing a lease can never succeed (reflow's errors.Fatal
# and friends): the keepalive loop stops on them instead of retrying.
_FATAL_KINDS = frozenset({"not_exist", "fatal", "invalid", "unauthorized", "precondition"})


class PoolError(Exception):
    """An error reply (ok=false) from the broker, or a local failure of a request."""

    def __init__(self, kind, message=""):
        super().__init__("%s: %s" % (kind, message) if message else kind)
        self.kind = kind
        self.message = message


class PoolTimeout(PoolError, TimeoutError):
    """No reply arrived within the client's deadline (kind "timeout")."""

    def __init__(self, message="no reply in time"):
        super().__init__("timeout", message)


# ---------------------------------------------------------------------------
# Value helpers (command-line style strings -> wire values)

_SIZE_UNITS = {
    "": 1, "b": 1,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
    "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "tb": 10 ** 12,
}
_DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def parse_resources(spec):
    """'cpu=4,mem=8GiB,disk=100GiB' -> {'cpu': 4.0, 'mem': 8589934592.0, ...}.

    A dict is returned as a dict of floats, so callers may pass either form."""
    if isinstance(spec, dict):
        return {str(k): float(v) for k, v in spec.items()}
    res = {}
    for item in filter(None, (s.strip() for s in str(spec).split(","))):
        key, sep, value = item.partition("=")
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        if not sep or not key or m is None or m.group(2).lower() not in _SIZE_UNITS:
            raise ValueError("bad resource %r in %r" % (item, spec))
        res[key.strip()] = float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    return res


def parse_duration_ms(spec):
    """'500ms' / '2s' / '2m' / '1h' (or a number of ms) -> int milliseconds."""
    if isinstance(spec, (int, float)):
        return int(spec)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)\s*", spec)
    if m is None:
        raise ValueError("bad duration %r" % (spec,))
    return int(float(m.group(1)) * _DURATION_UNITS[m.group(2)])


# ---------------------------------------------------------------------------
# CURVE keys (same files as poolctl keygen writes)

def _read_key_line(path):
    with open(path, "r") as f:
        for line in f:
            line = line.strip()
            # A Z85 key may start with '#': a 40-character line is the key.
            if line and (len(line) == 40 or not line.startswith("#")):
                if len(line) != 40:
                    raise ValueError("%s holds no Z85 CURVE key" % path)
                return line
    raise ValueError("%s is empty" % path)


def load_curve(directory, name="client"):
    """(client_public, client_secret, server_public) from <directory>/<name>.key
    and <directory>/broker.pub. Refuses a secret key file that group or others
    may access, as the C++ programs do."""
    directory = os.path.expanduser(directory)
    secret_path = os.path.join(directory, name + ".key")
    mode = os.stat(secret_path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError("secret key file %s is accessible by group/others (mode %04o); chmod 600 it"
                              % (secret_path, stat.S_IMODE(mode)))
    secret = _read_key_line(secret_path)
    public = zmq.curve_public(secret.encode()).decode()
    server = _read_key_line(os.path.join(directory, "broker.pub"))
    return public, secret, server


def _apply_curve(socket, curve):
    if curve is None:
        return
    client_public, client_secret, server_public = (k.encode() if isinstance(k, str) else k for k in curve)
    socket.curve_serverkey = server_public
    socket.curve_publickey = client_public
    socket.curve_secretkey = client_secret


# ---------------------------------------------------------------------------
# Request/reply client

class _ClosesOnExit:
    """`with X(...) as x:` closes x on the way out (close() is the subclass's)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _endpoints(spec):
    """"EP1,EP2" or a list of endpoints -> the list (several brokers)."""
    return [e for e in (spec.split(",") if isinstance(spec, str) else list(spec)) if e]


class Client(_ClosesOnExit):
    """Request/reply client over one DEALER socket.

    Thread-safe: a lock serialises calls on the socket. Replies are paired with
    requests by "id"; a reply whose id is no longer awaited (its request timed
    out) is dropped. Use request_many() to keep many requests in flight."""

    def __init__(self, api=DEFAULT_API, timeout_ms=10_000, context=None, curve=None):
        """api: one endpoint, or several ("EP1,EP2" or a list): a request that gets
        no answer within its timeout goes to the next broker, each once round, and
        the one that answered is used from then on (a broker's own error reply, even
        "timeout", is an answer). curve: (client_public, client_secret,
        server_public) Z85 keys, e.g. load_curve(dir, name), for a broker with CURVE
        on; None = plaintext."""
        self.endpoints = _endpoints(api)
        if not self.endpoints:
            raise ValueError("no API endpoint")
        self.timeout_ms = int(timeout_ms)
        self.curve = curve
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._sockets = [self._connect(endpoint) for endpoint in self.endpoints]
        self._current = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = False

    def _connect(self, endpoint):
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        _apply_curve(sock, self.curve)
        sock.connect(endpoint)
        return sock

    @property
    def api(self):
        """The endpoint requests go to now."""
        return self.endpoints[self._current]

    # -- lifetime -----------------------------------------------------------
    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for sock in self._sockets:
                sock.close(0)
            if self._own_context:
                self._context.term()

    # -- generic requests ---------------------------------------------------
    def call(self, op, timeout_ms=None, **args):
        """Sends {"v":1,"op":op,"id":n,**args}; returns the reply map (ok=true)
        or raises PoolError(kind, message) / PoolTimeout."""
        return self._unwrap(self.request_many([dict(args, op=op)], timeout_ms)[0])

    def request_many(self, requests, timeout_ms=None):
        """Sends every request before reading any reply (all in flight at once)
        and returns the raw reply maps in request order. A request that got no
        reply within the deadline yields None in its slot (after the other
        endpoints, if any, had their turn at it)."""
        budget = (self.timeout_ms if timeout_ms is None else timeout_ms) / 1000.0
        with self._lock:
            if self._closed:
                raise PoolError("internal", "client is closed")
            replies = [None] * len(requests)
            todo = list(range(len(requests)))
            for attempt in range(len(self._sockets)):
                if attempt:
                    self._current = (self._current + 1) % len(self._sockets)  # the last one did not answer
                self._exchange(self._sockets[self._current], requests, todo, replies, time.monotonic() + budget)
                todo = [slot for slot in todo if replies[slot] is None]
                if not todo:
                    break
                # A fresh socket: what went unanswered must not wait in the old one's
                # queue and reach the broker later, after the caller was told timeout.
                self._sockets[self._current].close(0)
                self._sockets[self._current] = self._connect(self.endpoints[self._current])
            return replies

    def _exchange(self, sock, requests, slots, replies, deadline):
        """Sends requests[slot] for each slot on sock (fresh ids) and fills replies
        until all came or the deadline passed."""
        slot_of_id = {}
        for slot in slots:
            body = {"v": 1}
            body.update(requests[slot])
            body["id"] = next(self._ids)
            slot_of_id[body["id"]] = slot
            sock.send_multipart([b"", msgpack.packb(body, use_bin_type=True)])
        while slot_of_id:
            remaining_ms = (deadline - time.monotonic()) * 1000.0
            if remaining_ms <= 0 or not sock.poll(max(1, int(remaining_ms)), zmq.POLLIN):
                return
            reply = self._decode(sock.recv_multipart())
            if reply is None:
                continue
            slot = slot_of_id.pop(reply.get("id"), None) if _hashable(reply.get("id")) else None
            if slot is None:
                continue  # a late reply to an earlier, timed-out request
            replies[slot] = reply

    @staticmethod
    def _decode(frames):
        # The broker echoes our envelope (an empty delimiter) before the body.
        if not frames:
            return None
        try:
            reply = msgpack.unpackb(frames[-1], raw=False, strict_map_key=False)
        except Exception:
            return None
        return reply if isinstance(reply, dict) else None

    @staticmethod
    def _unwrap(reply):
        if reply is None:
            raise PoolTimeout()
        if reply.get("ok") is True:
            return reply
        err = reply.get("error") or {}
        if not isinstance(err, dict):
            err = {"kind": "internal", "message": repr(err)}
        kind = err.get("kind", "internal")
        if kind == "timeout":
            raise PoolTimeout(err.get("message", ""))
        raise PoolError(kind, err.get("message", ""))

    # -- the client API (protocol.md table) ----------------------------------
    def ping(self):
        self.call("ping")
        return True

    def pools(self):
        return self.call("pools")["pools"]

    def offers(self):
        return self.call("offers")["offers"]

    def offer(self, uri):
        return self.call("offer", offer=uri)["offer"]

    def accept(self, uri, want, owner=None, labels=None):
        return self.call("accept", offer=uri, meta=_meta(want, owner, labels))["alloc"]

    def allocate(self, min, width=0, owner=None, labels=None,  # noqa: A002 (protocol name)
                 wait_ms=0, priority=0, count=None, spread=False, constraints=None):
        """Lets the broker place `min` (up to min*(1+width)); returns the Inspect.

        wait_ms > 0: when nothing fits now, wait up to that long in the broker's
        queue (this call's own deadline is extended by wait_ms). priority orders
        that queue (higher first). count: a gang of that many allocs, all or
        none; the list of Inspects is returned instead of one. spread: each alloc
        of the gang on a different pool. constraints: {label: value or [values]},
        only pools whose labels match every key. The arguments are passed on as
        given (the broker answers `invalid` to bad ones); the defaults are not
        sent at all, so the request is exactly the first-wave one."""
        args = {"min": parse_resources(min), "width": int(width)}
        if owner is not None:
            args["owner"] = owner
        if labels is not None:
            args["labels"] = dict(labels)
        wait_ms = _as_int(0 if wait_ms is None else wait_ms)
        if wait_ms != 0:
            args["wait_ms"] = wait_ms
        priority = _as_int(0 if priority is None else priority)
        if priority != 0:
            args["priority"] = priority
        if count is not None:
            args["count"] = _as_int(count)
        if spread:
            args["spread"] = True
        if constraints is not None:
            args["constraints"] = _constraints(constraints)
        extra_ms = wait_ms if isinstance(wait_ms, int) and not isinstance(wait_ms, bool) else 0
        timeout_ms = self.timeout_ms + max(0, extra_ms)
        reply = self.call("allocate", timeout_ms=timeout_ms, **args)
        if count is not None:
            allocs = reply.get("allocs")
            return list(allocs) if allocs is not None else [reply["alloc"]]
        return reply["alloc"]

    def queue(self):
        """The requests waiting in the broker's queue, in the order they will be tried."""
        return self.call("queue")["queue"]

    def quotas(self):
        """[{"owner", "quota": Res, "used": Res}] (empty without --quota)."""
        return self.call("quotas")["quotas"]

    def drain(self, pool, drain=True):
        """Drains a pool (drain=False undoes it); returns its `pools` entry."""
        return self.call("drain", pool=pool, drain=bool(drain))["pool"]

    def allocs(self, pool=None):
        if pool is None:
            return self.call("allocs")["allocs"]
        return self.call("allocs", pool=pool)["allocs"]

    def inspect(self, uri):
        return self.call("inspect", alloc=uri)["alloc"]

    def keepalive(self, uri, interval_ms):
        return int(self.call("keepalive", alloc=uri, interval_ms=int(interval_ms))["interval_ms"])

    def free(self, uri):
        self.call("free", alloc=uri)

    # -- execs inside allocs (protocol.md "Execs inside allocs") -------------
    def exec_put(self, alloc, exec_id, cmd, env=None, resources=None, outputs=None):
        """Puts an exec (idempotent by id); returns its ExecInspect."""
        config = {"cmd": [str(a) for a in cmd]}
        if env is not None:
            config["env"] = dict(env)
        if resources is not None:
            config["resources"] = parse_resources(resources)
        if outputs is not None:
            config["outputs"] = list(outputs)
        return self.call("exec_put", alloc=alloc, exec=exec_id, config=config)["exec"]

    def exec_inspect(self, alloc, exec_id):
        return self.call("exec_inspect", alloc=alloc, exec=exec_id)["exec"]

    def execs(self, alloc):
        return self.call("execs", alloc=alloc)["execs"]

    def exec_wait(self, alloc, exec_id, timeout_ms=60_000):
        """The ExecInspect once complete; PoolTimeout when it is not within timeout_ms."""
        # The client waits for the broker's answer a little longer than the wait itself.
        request = {"op": "exec_wait", "alloc": alloc, "exec": exec_id, "timeout_ms": int(timeout_ms)}
        return self._unwrap(self.request_many([request], int(timeout_ms) + self.timeout_ms)[0])["exec"]

    def exec_logs(self, alloc, exec_id, stream="stdout", offset=0, max_bytes=65536):
        """{"data": bytes, "offset": next offset, "eof": bool}."""
        return self.call("exec_logs", alloc=alloc, exec=exec_id, stream=stream, offset=int(offset),
                         max_bytes=int(max_bytes))

    def exec_remove(self, alloc, exec_id):
        self.call("exec_remove", alloc=alloc, exec=exec_id)

    def repo_get(self, alloc, digest, offset=0, max_bytes=65536):
        """One chunk of a repository object: {"data", "offset", "eof"}."""
        return self.call("repo_get", alloc=alloc, digest=digest, offset=int(offset), max_bytes=int(max_bytes))

    def repo_read(self, alloc, digest):
        """A whole repository object, as bytes."""
        out, offset = bytearray(), 0
        while True:
            chunk = self.repo_get(alloc, digest, offset, 512 * 1024)
            out += chunk["data"]
            offset = chunk["offset"]
            if chunk["eof"]:
                return bytes(out)

    def run(self, cmd, min=None, alloc=None, exec_id=None, env=None, resources=None,  # noqa: A002
            outputs=None, stdout=None, stderr=None, poll_ms=200):
        """Runs argv `cmd` in an alloc and returns a RunResult (exit_code, exec,
        stdout, stderr). With `min` (and no `alloc`) it allocates first and
        frees after; the alloc is kept alive meanwhile. The exec's resources
        default to the alloc's. `stdout`/`stderr`: binary file-likes the output
        is streamed to as it comes (e.g. sys.stdout.buffer); the bytes are also
        collected in the result. exit_code is 128+signal when a signal ended it."""
        if (alloc is None) == (min is None):
            raise ValueError("run takes an alloc URI or min, not both or neither")
        owned = alloc is None
        uri = self.allocate(min)["id"] if owned else alloc
        keepalive = Keepalive(self, uri, interval_ms=60_000)
        try:
            if resources is None:
                resources = self.inspect(uri)["resources"]
            exec_id = exec_id or "run-%016x" % random.getrandbits(64)
            self.exec_put(uri, exec_id, cmd, env=env, resources=resources, outputs=outputs)
            sinks = {"stdout": stdout, "stderr": stderr}
            collected = {"stdout": bytearray(), "stderr": bytearray()}
            offsets = {"stdout": 0, "stderr": 0}
            eof = {"stdout": False, "stderr": False}
            final = None
            while True:
                for stream in ("stdout", "stderr"):
                    while not eof[stream]:
                        chunk = self.exec_logs(uri, exec_id, stream, offsets[stream], 512 * 1024)
                        data = chunk["data"]
                        offsets[stream] = chunk["offset"]
                        eof[stream] = chunk["eof"]
                        if data:
                            collected[stream] += data
                            if sinks[stream] is not None:
                                sinks[stream].write(data)
                                sinks[stream].flush()
                        else:
                            break
                if eof["stdout"] and eof["stderr"] and final is not None:
                    break
                try:
                    final = self.exec_wait(uri, exec_id, poll_ms)
                except PoolTimeout:
                    pass
            return RunResult(final, bytes(collected["stdout"]), bytes(collected["stderr"]))
        finally:
            keepalive.stop()
            if owned:
                try:
                    self.free(uri)
                except PoolError:
                    pass


class RunResult:
    """What Client.run returns: the exec's final ExecInspect and its output."""

    def __init__(self, exec_inspect, stdout, stderr):
        self.exec = exec_inspect
        self.stdout = stdout
        self.stderr = stderr

    @property
    def exit_code(self):
        """The command's exit code; 128+signal when a signal ended it; 1 when it
        could not run at all (the exec's error says why)."""
        if "exit_code" in self.exec:
            return int(self.exec["exit_code"])
        if "signal" in self.exec:
            return 128 + int(self.exec["signal"])
        return 1

    def __repr__(self):
        return "RunResult(exit_code=%r, error=%r)" % (self.exit_code, self.exec.get("error"))


def _hashable(value):
    try:
        hash(value)
        return True
    except TypeError:
        return False


def _as_int(value):
    """An int for a whole number (bool and other types are passed on unchanged)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _constraints(constraints):
    """{label: str | [str, ...]} with tuples/sets as lists; anything else unchanged."""
    if not isinstance(constraints, dict):
        return constraints
    out = {}
    for key, value in constraints.items():
        if isinstance(value, (tuple, set, frozenset)):
            value = list(value)
        out[key] = value
    return out


def _meta(want, owner, labels):
    meta = {"want": parse_resources(want)}
    if owner is not None:
        meta["owner"] = owner
    if labels is not None:
        meta["labels"] = dict(labels)
    return meta


# ---------------------------------------------------------------------------
# Keepalive (reflow's pool.Keepalive)

class Keepalive:
    """Keeps an alloc's lease alive from a background thread (reflow's pool.Keepalive).

    Each round asks for `interval_ms`; with the granted interval iv it sleeps
    iv - 30 s (capped at 5 min), or iv / 2 when iv is under 60 s (a short lease,
    where a 30 s offset would leave nothing). A failed renewal with a non-fatal
    kind is retried with backoff 2 s x1.5, 20% jitter, at most 5 tries; not_exist
    (alloc freed or collected) and other fatal kinds stop the loop at once.
    When the loop stops by itself, `error` holds the PoolError and `on_lost`
    (if given) is called with it; stop() ends it quietly."""

    IV_OFFSET_MS = 30_000
    SHORT_LEASE_MS = 60_000
    TRIES = 5
    RETRY_INITIAL_MS = 2_000
    RETRY_FACTOR = 1.5
    RETRY_JITTER = 0.2
    CALL_TIMEOUT_MS = 10_000  # reflow's KeepaliveTimeout

    def __init__(self, client, uri, interval_ms=MAX_KEEPALIVE_INTERVAL_MS, on_lost=None,
                 retry_initial_ms=None, start=True):
        self.uri = uri
        self.interval_ms = int(interval_ms)
        self.on_lost = on_lost
        self.retry_initial_ms = self.RETRY_INITIAL_MS if retry_initial_ms is None else retry_initial_ms
        # An own socket, so renewals never queue behind the caller's requests.
        api = client.api if isinstance(client, Client) else str(client)
        curve = client.curve if isinstance(client, Client) else None
        self._client = Client(api, timeout_ms=self.CALL_TIMEOUT_MS, curve=curve)
        self._stop = threading.Event()
        self.error = None
        self.renewals = 0
        self.last_granted_ms = None
        self._thread = threading.Thread(target=self._run, name="keepalive %s" % uri, daemon=True)
        if start:
            self.start()

    def start(self):
        self._thread.start()
        return self

    def stop(self, timeout=None):
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._client.close()

    def join(self, timeout=None):
        self._thread.join(timeout)

    @property
    def alive(self):
        return self._thread.is_alive()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @classmethod
    def next_wait_ms(cls, granted_ms):
        """How long to sleep after a renewal that granted `granted_ms`."""
        if granted_ms < cls.SHORT_LEASE_MS:
            return granted_ms / 2.0
        return min(granted_ms - cls.IV_OFFSET_MS, MAX_KEEPALIVE_INTERVAL_MS)

    def retry_wait_ms(self, retry):
        base = self.retry_initial_ms * (self.RETRY_FACTOR ** retry)
        return base * (1.0 + self.RETRY_JITTER * (2.0 * random.random() - 1.0))

    def _renew_once(self):
        """Returns the granted interval, or raises the last PoolError."""
        err = None
        for retry in range(self.TRIES):
            if self._stop.is_set():
                return None
            try:
                return self._client.keepalive(self.uri, self.interval_ms)
            except PoolError as e:
                err = e
                if e.kind in _FATAL_KINDS:
                    raise
            if retry + 1 < self.TRIES and self._stop.wait(self.retry_wait_ms(retry) / 1000.0):
                return None
        raise err

    def _run(self):
        try:
            while not self._stop.is_set():
                granted = self._renew_once()
                if granted is None:
                    return
                self.renewals += 1
                self.last_granted_ms = granted
                if self._stop.wait(self.next_wait_ms(granted) / 1000.0):
                    return
        except PoolError as e:
            if self._stop.is_set():
                return
            self.error = e
            if self.on_lost is not None:
                try:
                    self.on_lost(e)
                except Exception:  # a broken callback must not hide the loss
                    pass
        finally:
            self._client.close()


# ---------------------------------------------------------------------------
# Offer stream

class Subscriber(_ClosesOnExit):
    """A SUB socket on the offer stream; iterating yields (topic, body dict).

    recv(timeout_ms) returns one (topic, body) or None when nothing came in time."""

    REPEAT_WINDOW = 4096

    def __init__(self, stream=DEFAULT_STREAM, topic="", context=None, curve=None):
        """stream: one endpoint, or several brokers' ("EP1,EP2" or a list). With
        several, a message that repeats byte for byte one of the last 4096
        received (the same worker message republished by each broker) is dropped."""
        self.stream = stream
        endpoints = _endpoints(stream)
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        _apply_curve(self._socket, curve)
        topics = [topic] if isinstance(topic, (str, bytes)) else list(topic)
        for t in topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, t.encode() if isinstance(t, str) else t)
        for endpoint in endpoints:
            self._socket.connect(endpoint)
        self._dedupe = len(endpoints) > 1
        self._recent = collections.deque()
        self._recent_set = collections.Counter()

    def _repeat(self, frames):
        key = (bytes(frames[0]), bytes(frames[1]))
        seen = self._recent_set[key] > 0
        self._recent.append(key)
        self._recent_set[key] += 1
        if len(self._recent) > self.REPEAT_WINDOW:
            old = self._recent.popleft()
            self._recent_set[old] -= 1
            if not self._recent_set[old]:
                del self._recent_set[old]
        return seen

    def recv(self, timeout_ms=None):
        while True:
            if timeout_ms is not None and not self._socket.poll(int(timeout_ms), zmq.POLLIN):
                return None
            frames = self._socket.recv_multipart()
            if len(frames) != 2 or (self._dedupe and self._repeat(frames)):
                continue
            try:
                body = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
            except Exception:
                continue
            if isinstance(body, dict):
                return frames[0].decode("utf-8", "replace"), body

    def wait_for(self, predicate, timeout_ms):
        """Receives until predicate(topic, body) is true; returns that (topic, body)
        or None at the deadline. Messages that do not match are discarded."""
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            remaining = (deadline - time.monotonic()) * 1000.0
            if remaining <= 0:
                return None
            got = self.recv(max(1, int(remaining)))
            if got is None:
                return None
            if predicate(*got):
                return got

    def __iter__(self):
        while True:
            yield self.recv()

    def close(self):
        self._socket.close(0)
        if self._own_context:
            self._context.term()

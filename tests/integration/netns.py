"""A multi-host network on one machine, for the partition tests: one Linux
network namespace per host, each with a veth pair into a bridge the test creates,
addresses in the benchmarking range 198.18.0.0/15 and no route out of the machine.
Cutting a host's link (its veth's bridge end down) partitions it; healing brings
it back. Everything made here is torn down by close(), also after a failure.

Needs root and iproute2 (`ip netns`). available() says whether this machine can."""

import os
import subprocess

NET = "198.18.0"  # /24 on the bridge; the test's own process is .1


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def available():
    """(True, "") or (False, why not)."""
    if os.geteuid() != 0:
        return False, "network namespaces need root"
    try:
        probe = "pbprobe%d" % (os.getpid() % 100000)
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        return False, "ip netns does not work here: %s" % e
    return True, ""


class Network:
    def __init__(self):
        self.tag = "pb%d" % (os.getpid() % 10000)
        self.bridge = "br" + self.tag
        self.hosts = {}  # name -> (namespace, host-side veth, address)
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", NET + ".1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add_host(self, name, octet):
        """A namespace with one interface at 198.18.0.<octet>; returns the address."""
        ns = "%s-%s" % (self.tag, name)
        outer, inner = "v%s%d" % (self.tag, octet), "e%s%d" % (self.tag, octet)
        address = "%s.%d" % (NET, octet)
        _ip("netns", "add", ns)
        self.hosts[name] = (ns, outer, address)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("-n", ns, "addr", "add", address + "/24", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "set", outer, "master", self.bridge)
        _ip("link", "set", outer, "up")
        return address

    def prefix(self, name):
        """The argv prefix that runs a command inside host `name`."""
        return ["ip", "netns", "exec", self.hosts[name][0]]

    def address(self, name):
        return self.hosts[name][2]

    def cut(self, name):
        _ip("link", "set", self.hosts[name][1], "down")

    def heal(self, name):
        _ip("link", "set", self.hosts[name][1], "up")

    def close(self):
        for ns, outer, _ in self.hosts.values():
            _ip("link", "del", outer, check=False)
            _ip("netns", "del", ns, check=False)
        self.hosts = {}
        _ip("link", "del", self.bridge, check=False)

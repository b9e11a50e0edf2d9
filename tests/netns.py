"""Test hosts in network namespaces: reusable builders and pytest fixtures.

A *host* is a network namespace, a *link* is a veth pair, a *router* is a namespace
with IPv4 and IPv6 forwarding on (``/work/shared/docs/testbed.md``). Everything is
created with a unique name (process id + counter) so parallel or crashed runs never
collide, and everything is deleted when the :class:`Topology` closes -- also when the
test failed or raised. Needs root (mark such tests ``@pytest.mark.netns``).

Quick start (a fixture gives you an empty topology that is always torn down)::

    @pytest.mark.netns
    def test_something(topology: Topology) -> None:
        alice = topology.add_host("alice")
        rtr = topology.add_router("rtr")
        topology.connect(alice, "a0", rtr, "ra")          # veth a0 (alice) <-> ra (rtr)
        alice.add_address("a0", "10.1.0.2/24")            # IPv6: nodad by default
        rtr.add_address("ra", "10.1.0.1/24")
        alice.add_default_route("10.1.0.1")
        alice.run(["ip", "route", "get", "10.1.0.1"])     # runs "on" alice
        rtr.netem("ra", delay_ms=50, loss_pct=5)          # tc netem on rtr's side
        # kernels without sch_netem (this VM's!): NetemUnavailableError above; use a
        # userspace-emulated link instead of a veth pair (tests/net/linkemu.py)
        bob = topology.add_host("bob")
        link = topology.connect_emulated(bob, "b0", rtr, "rb", delay_ms=10)
        link.set(loss_pct=10)                              # live change
        assert udp_roundtrip(alice, bob, "10.2.0.2")      # reachability without ping

    def test_roaming(roaming: RoamingTopology) -> None:   # Alice - rtr - Bob(wlan+eth)
        roaming.bob.del_address("b0", roaming.bob_wlan4)
        ...
    # the same with delay/loss on Bob's links: build_roaming(topology, emulate=True,
    # delay_ms=10), then roaming.links["b0"].set(loss_pct=10)

To get the fixtures, import them in your test package's ``conftest.py`` (as
``tests/net/conftest.py`` does)::

    from tests.netns import roaming, topology
    __all__ = ["roaming", "topology"]

and run ``python -m pytest`` from the repository root (so ``tests`` is importable).

Interface names are per namespace, so tests may all use ``a0``, ``b0`` ...; only the
namespace names (``TestHost.ns``) are unique. Pass ``host.ns`` to code under test
(e.g. ``NetlinkWatcher(netns=host.ns)``) or run a process on the host with
:meth:`TestHost.run` / :meth:`TestHost.popen` (processes started with ``popen`` are
killed by pid at teardown). Namespaces left by a killed run (its pid is gone) are
removed when the next run creates its first topology. ``ping`` is not installed on the
test machines: use :func:`udp_roundtrip`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

_COUNTER = itertools.count(1)
_LIVE_TOPOLOGIES: list[Topology] = []

Command = Sequence[str] | str


class NetnsError(RuntimeError):
    """A namespace command failed; the message carries the command and its stderr."""


class NetemUnavailableError(NetnsError):
    """The kernel cannot do ``tc ... netem``."""


def _argv(cmd: Command) -> list[str]:
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def require_tool(name: str) -> str:
    """Path of ``name`` or a clear failure (CI installs it via scripts/setup.sh)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"required tool {name!r} is not installed (see scripts/setup.sh)")
    return path


def run(cmd: Command, *, check: bool = True, timeout: float = 30.0,
        input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command in the current namespace; raise :class:`NetnsError` on failure."""
    argv = _argv(cmd)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              input=input_text, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{shlex.join(argv)}: {exc}") from exc
    if check and proc.returncode != 0:
        raise NetnsError(f"{shlex.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def run_in(ns: str, cmd: Command, *, check: bool = True,
           timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` inside namespace ``ns`` (``ip netns exec``)."""
    return run(["ip", "netns", "exec", ns, *_argv(cmd)], check=check, timeout=timeout)


_OUR_NAMES = re.compile(r"^(?:md|mdperf|mdmv)(\d+)n\d+")


def remove_stale_namespaces() -> list[str]:
    """Delete namespaces left by test processes that died (SIGKILL, crash): names made
    by this module or by ``mobilityd.*.perf`` whose creating pid no longer exists."""
    listing = run(["ip", "netns", "list"], check=False).stdout
    removed: list[str] = []
    for line in listing.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = _OUR_NAMES.match(name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        alive = os.path.exists(f"/proc/{match.group(1)}")
        if not alive and run(["ip", "netns", "del", name], check=False).returncode == 0:
            removed.append(name)
    return removed


_remove_stale_once = functools.cache(remove_stale_namespaces)


def unique_ns_name(label: str) -> str:
    """A namespace name unique to this process and call: ``md<pid>n<k>-<label>``."""
    return f"md{os.getpid()}n{next(_COUNTER)}-{label}"


@dataclass
class TestHost:
    """One network namespace ("host"). ``name`` is the test's label, ``ns`` the real name."""

    __test__ = False  # not a pytest test class

    name: str
    ns: str
    is_router: bool = False
    processes: list[subprocess.Popen[Any]] = field(default_factory=list)

    # ------------------------------------------------------------ running things
    def run(self, cmd: Command, *, check: bool = True,
            timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command on this host and wait for it."""
        return run_in(self.ns, cmd, check=check, timeout=timeout)

    def popen(self, cmd: Command, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a long-running process on this host; it is killed at teardown."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, *_argv(cmd)],
                                start_new_session=True, **kwargs)
        self.processes.append(proc)
        return proc

    def ip(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``ip -n <ns> ARGS``."""
        return run(["ip", "-n", self.ns, *args])

    def sysctl(self, key: str, value: str | int) -> None:
        self.run(["sysctl", "-qw", f"{key}={value}"])

    # ------------------------------------------------------------ configuration
    def add_address(self, dev: str, cidr: str, *, nodad: bool = True,
                    extra: Sequence[str] = ()) -> None:
        """``ip addr add CIDR dev DEV`` (IPv6 gets ``nodad`` unless ``nodad=False``)."""
        args = ["addr", "add", cidr, "dev", dev, *extra]
        if ":" in cidr and nodad:
            args.append("nodad")
        self.ip(*args)

    def del_address(self, dev: str, cidr: str) -> None:
        self.ip("addr", "del", cidr, "dev", dev)

    def link_up(self, dev: str) -> None:
        self.ip("link", "set", dev, "up")

    def link_down(self, dev: str) -> None:
        self.ip("link", "set", dev, "down")

    def add_route(self, dst: str, via: str | None = None, *, dev: str | None = None,
                  metric: int | None = None) -> None:
        args = ["route", "add", dst]
        if ":" in (via or dst):
            args.insert(0, "-6")
        if via is not None:
            args += ["via", via]
        if dev is not None:
            args += ["dev", dev]
        if metric is not None:
            args += ["metric", str(metric)]
        self.ip(*args)

    def add_default_route(self, via: str, *, dev: str | None = None,
                          metric: int | None = None) -> None:
        self.add_route("default", via, dev=dev, metric=metric)

    def del_default_route(self, via: str, *, dev: str | None = None) -> None:
        args = ["route", "del", "default", "via", via] + (["dev", dev] if dev else [])
        if ":" in via:
            args.insert(0, "-6")
        self.ip(*args)

    def ifindex(self, dev: str) -> int:
        out = self.ip("-o", "link", "show", "dev", dev).stdout
        return int(out.split(":", 1)[0])

    def route_get(self, dst: str) -> str:
        """What ``ip route get DST`` prints here (the kernel's own choice)."""
        return self.ip("route", "get", dst).stdout.strip()

    def kernel_source_for(self, dst: str) -> str | None:
        """The ``src`` the kernel would use toward ``dst`` (``None``: unreachable)."""
        proc = run(["ip", "-n", self.ns, "route", "get", dst], check=False)
        words = proc.stdout.split()
        return words[words.index("src") + 1] if "src" in words else None

    # ------------------------------------------------------------ tc netem
    def netem(self, dev: str, *, delay_ms: float = 0, jitter_ms: float = 0,
              loss_pct: float = 0, rate: str | None = None) -> None:
        """Set (replace) a netem qdisc on ``dev``: delay, jitter, loss, rate.

        Raises :class:`NetemUnavailableError` when the kernel has no ``sch_netem``
        (e.g. minimal VM kernels without CONFIG_NET_SCH_NETEM); use
        :meth:`Topology.connect_emulated` there.
        """
        args = ["tc", "qdisc", "replace", "dev", dev, "root", "netem"]
        if delay_ms or jitter_ms:
            args += ["delay", f"{delay_ms}ms"] + ([f"{jitter_ms}ms"] if jitter_ms else [])
        if loss_pct:
            args += ["loss", f"{loss_pct}%"]
        if rate:
            args += ["rate", rate]
        proc = self.run(args, check=False)
        if proc.returncode != 0 and "kind is unknown" in proc.stderr:
            raise NetemUnavailableError(
                "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM); "
                "use Topology.connect_emulated() for delay and loss")
        if proc.returncode != 0:
            raise NetnsError(f"{shlex.join(args)} exited {proc.returncode}: "
                             f"{proc.stderr.strip()}")

    def clear_netem(self, dev: str) -> None:
        self.run(["tc", "qdisc", "del", "dev", dev, "root"], check=False)

    # ------------------------------------------------------------ teardown
    def stop_processes(self) -> None:
        """Terminate (then kill) the processes started with :meth:`popen`, by pid."""
        for proc in self.processes:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=3)
        self.processes.clear()


_ECHO_SERVER = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""

_ECHO_CLIENT = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[3]))
s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
data, _ = s.recvfrom(2048)
sys.exit(0 if data == b"ping" else 1)
"""


def udp_roundtrip(client: TestHost, server: TestHost, server_address: str, *,
                  port: int = 9999, timeout: float = 3.0) -> bool:
    """True when a UDP datagram from ``client`` to ``server_address`` (on ``server``)
    comes back (no ``ping`` needed; uses this Python)."""
    echo = server.popen([sys.executable, "-c", _ECHO_SERVER, server_address, str(port)],
                        stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout is not None
        if echo.stdout.readline().strip() != "ready":
            raise NetnsError(f"UDP echo server on {server.name} did not start")
        proc = client.run([sys.executable, "-c", _ECHO_CLIENT, server_address, str(port),
                           str(timeout)], check=False, timeout=timeout + 10)
        return proc.returncode == 0
    finally:
        echo.terminate()
        echo.wait(timeout=5)
        server.processes.remove(echo)


@dataclass
class Link:
    """A veth pair between two hosts."""

    host_a: TestHost
    dev_a: str
    host_b: TestHost
    dev_b: str


@dataclass
class EmulatedLink(Link):
    """A TAP pair joined by ``tests/net/linkemu.py``: delay, jitter and loss without
    netem. ``delay_ms`` is one way (the round trip adds twice it)."""

    process: subprocess.Popen[str] | None = None

    def set(self, *, delay_ms: float | None = None, jitter_ms: float | None = None,
            loss_pct: float | None = None) -> None:
        """Change the link live (e.g. 10 % loss during a move)."""
        values = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss_pct": loss_pct}
        words = [f"{k}={v}" for k, v in values.items() if v is not None]
        proc = self.process
        if proc is None or proc.stdin is None or proc.stdout is None or proc.poll() is not None:
            raise NetnsError("link emulator is not running")
        proc.stdin.write("set " + " ".join(words) + "\n")
        proc.stdin.flush()
        answer = proc.stdout.readline().strip()
        if answer != "ok":
            raise NetnsError(f"link emulator refused {words}: {answer}")


class Topology:
    """A set of test hosts and links; :meth:`close` removes all of them.

    Use as a context manager or through the ``topology`` fixture.
    """

    def __init__(self) -> None:
        require_tool("ip")
        _remove_stale_once()
        self.hosts: dict[str, TestHost] = {}
        self.links: list[Link] = []
        _LIVE_TOPOLOGIES.append(self)

    def add_host(self, name: str) -> TestHost:
        """Create a namespace with ``lo`` up."""
        if name in self.hosts:
            raise NetnsError(f"host {name!r} already exists in this topology")
        host = TestHost(name, unique_ns_name(name))
        run(["ip", "netns", "add", host.ns])
        self.hosts[name] = host
        host.link_up("lo")
        return host

    def add_router(self, name: str) -> TestHost:
        """A host that forwards IPv4 and IPv6."""
        host = self.add_host(name)
        host.is_router = True
        host.sysctl("net.ipv4.ip_forward", 1)
        host.sysctl("net.ipv6.conf.all.forwarding", 1)
        return host

    def connect(self, host_a: TestHost, dev_a: str, host_b: TestHost, dev_b: str,
                *, up: bool = True) -> Link:
        """A veth pair ``dev_a`` (in ``host_a``) <-> ``dev_b`` (in ``host_b``)."""
        run(["ip", "link", "add", dev_a, "netns", host_a.ns, "type", "veth",
             "peer", "name", dev_b, "netns", host_b.ns])
        if up:
            host_a.link_up(dev_a)
            host_b.link_up(dev_b)
        link = Link(host_a, dev_a, host_b, dev_b)
        self.links.append(link)
        return link

    def connect_emulated(self, host_a: TestHost, dev_a: str, host_b: TestHost, dev_b: str,
                         *, delay_ms: float = 0, jitter_ms: float = 0, loss_pct: float = 0,
                         seed: int = 0) -> EmulatedLink:
        """Like :meth:`connect` but through the userspace link emulator, for delay and
        loss on kernels without netem. Both devices are up when this returns."""
        emulator = os.path.join(os.path.dirname(os.path.abspath(__file__)), "net",
                                "linkemu.py")
        proc = subprocess.Popen(
            [sys.executable, emulator, "--a", host_a.ns, dev_a, "--b", host_b.ns, dev_b,
             "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms),
             "--loss-pct", str(loss_pct), "--seed", str(seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        host_a.processes.append(proc)  # stopped (by pid) at teardown
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise NetnsError(f"link emulator failed: {err.strip()}")
        link = EmulatedLink(host_a, dev_a, host_b, dev_b, proc)
        self.links.append(link)
        return link

    def close(self) -> None:
        """Stop processes, delete every namespace (veths go with them). Idempotent."""
        errors: list[str] = []
        for host in self.hosts.values():
            host.stop_processes()
        for host in self.hosts.values():
            proc = run(["ip", "netns", "del", host.ns], check=False)
            if proc.returncode != 0 and os.path.exists(f"/var/run/netns/{host.ns}"):
                errors.append(f"{host.ns}: {proc.stderr.strip()}")
        self.hosts.clear()
        self.links.clear()
        if self in _LIVE_TOPOLOGIES:
            _LIVE_TOPOLOGIES.remove(self)
        if errors:
            raise NetnsError("teardown left namespaces behind: " + "; ".join(errors))

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@atexit.register
def _close_leftovers() -> None:
    for topology in list(_LIVE_TOPOLOGIES):
        with contextlib.suppress(NetnsError):
            topology.close()


@dataclass
class RoamingTopology:
    """Alice -- rtr -- Bob, Bob with two interfaces (testbed.md).

    ========  =====  =========================  ===========================
    host      dev    IPv4                       IPv6
    ========  =====  =========================  ===========================
    alice     a0     10.1.0.2/24 (gw .1)        fd00:1::2/64 (gw fd00:1::1)
    bob       b0     10.2.0.2/24 ("wlan")       fd00:2::2/64
    bob       b1     10.4.0.2/24 ("eth")        fd00:4::2/64
    rtr       ra/rb/rc   10.1.0.1, 10.2.0.1, 10.4.0.1 (and ::1 of each /64)
    ========  =====  =========================  ===========================

    Bob's default routes: via b0 metric ``wlan_metric`` (default 600) and via b1
    metric ``eth_metric`` (default 100), so the kernel prefers eth while both are up.
    ``10.3.0.0/24`` / ``fd00:3::/64`` on rb (rtr) is free for "roam to a new subnet".
    With ``emulate=True`` Bob's links (b0, b1) go through the userspace link emulator
    with ``delay_ms`` one way each (Alice-Bob round trip + 2 * delay_ms); change them
    live with ``roaming.links["b0"].set(loss_pct=10)``.
    """

    topology: Topology
    alice: TestHost
    bob: TestHost
    rtr: TestHost
    alice4: str = "10.1.0.2"
    alice6: str = "fd00:1::2"
    bob_wlan4: str = "10.2.0.2/24"
    bob_eth4: str = "10.4.0.2/24"
    bob_wlan6: str = "fd00:2::2/64"
    bob_eth6: str = "fd00:4::2/64"
    links: dict[str, Link] = field(default_factory=dict)


def build_roaming(topology: Topology, *, wlan_metric: int = 600,
                  eth_metric: int = 100, with_eth: bool = True, emulate: bool = False,
                  delay_ms: float = 0.0) -> RoamingTopology:
    """Build the standard Alice / router / Bob(wlan, eth) topology in ``topology``."""
    alice = topology.add_host("alice")
    bob = topology.add_host("bob")
    rtr = topology.add_router("rtr")
    links: dict[str, Link] = {}

    def bob_link(dev: str, peer_dev: str) -> None:
        if emulate:
            links[dev] = topology.connect_emulated(bob, dev, rtr, peer_dev, delay_ms=delay_ms)
        else:
            links[dev] = topology.connect(bob, dev, rtr, peer_dev)

    links["a0"] = topology.connect(alice, "a0", rtr, "ra")
    bob_link("b0", "rb")
    alice.add_address("a0", "10.1.0.2/24")
    alice.add_address("a0", "fd00:1::2/64")
    rtr.add_address("ra", "10.1.0.1/24")
    rtr.add_address("ra", "fd00:1::1/64")
    rtr.add_address("rb", "10.2.0.1/24")
    rtr.add_address("rb", "fd00:2::1/64")
    rtr.add_address("rb", "10.3.0.1/24")
    rtr.add_address("rb", "fd00:3::1/64")
    alice.add_default_route("10.1.0.1")
    alice.add_default_route("fd00:1::1")
    bob.add_address("b0", "10.2.0.2/24")
    bob.add_address("b0", "fd00:2::2/64")
    bob.add_default_route("10.2.0.1", dev="b0", metric=wlan_metric)
    bob.add_default_route("fd00:2::1", dev="b0", metric=wlan_metric)
    if with_eth:
        bob_link("b1", "rc")
        rtr.add_address("rc", "10.4.0.1/24")
        rtr.add_address("rc", "fd00:4::1/64")
        bob.add_address("b1", "10.4.0.2/24")
        bob.add_address("b1", "fd00:4::2/64")
        bob.add_default_route("10.4.0.1", dev="b1", metric=eth_metric)
        bob.add_default_route("fd00:4::1", dev="b1", metric=eth_metric)
    return RoamingTopology(topology, alice, bob, rtr, links=links)


@pytest.fixture
def topology() -> Iterator[Topology]:
    """An empty :class:`Topology`, always torn down (also when the test fails)."""
    require_tool("ip")
    topo = Topology()
    try:
        yield topo
    finally:
        topo.close()


@pytest.fixture
def roaming(topology: Topology) -> RoamingTopology:
    """The standard Alice -- rtr -- Bob(wlan b0, eth b1) topology (see RoamingTopology)."""
    return build_roaming(topology)

"""The test-host helpers of tests/netns.py: unique names, forwarding, IPv4 and IPv6
reachability through the router, netem, processes and -- above all -- teardown that
leaves nothing behind, also when the test body raised."""

from __future__ import annotations

import gzip
import os
import subprocess
import time

import pytest

from mobilityd.net.perf import PerfSetupError, measure_detection, summarize
from tests.netns import (
    EmulatedLink,
    NetemUnavailableError,
    NetnsError,
    RoamingTopology,
    TestHost,
    Topology,
    build_roaming,
    remove_stale_namespaces,
    run_in,
    udp_roundtrip,
)

pytestmark = pytest.mark.netns


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_roaming_topology_forwards_both_families(roaming: RoamingTopology) -> None:
    for dest in ("10.2.0.2", "10.4.0.2", "fd00:2::2", "fd00:4::2"):
        assert udp_roundtrip(roaming.alice, roaming.bob, dest), dest
    for dest in (roaming.alice4, roaming.alice6):
        assert udp_roundtrip(roaming.bob, roaming.alice, dest), dest
    roaming.bob.link_down("b0")  # wlan gone: its addresses are unreachable
    assert not udp_roundtrip(roaming.alice, roaming.bob, "10.2.0.2", timeout=0.5)
    assert roaming.rtr.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"


def test_names_are_unique_and_removed_on_failure() -> None:
    created: list[str] = []
    with pytest.raises(RuntimeError, match="test body failed"), Topology() as topo:
        a = topo.add_host("a")
        b = topo.add_host("a2")
        topo.connect(a, "x0", b, "x1")
        created = [a.ns, b.ns]
        assert a.ns != b.ns and str(os.getpid()) in a.ns
        assert set(created) <= namespaces()
        raise RuntimeError("test body failed")
    assert not set(created) & namespaces()


def test_same_label_in_two_topologies(topology: Topology) -> None:
    with Topology() as other:
        assert other.add_host("alice").ns != topology.add_host("alice").ns
    with pytest.raises(NetnsError):
        topology.add_host("alice")


def kernel_has_netem() -> bool:
    try:
        with gzip.open("/proc/config.gz", "rt") as config:
            return "CONFIG_NET_SCH_NETEM=" in config.read()
    except OSError:
        return True  # no config to read: assume a distribution kernel (module)


def test_netem_and_failed_commands(roaming: RoamingTopology) -> None:
    rtr = roaming.rtr
    if not kernel_has_netem():
        # the helper must say so clearly instead of a bare tc error
        with pytest.raises(NetemUnavailableError, match="CONFIG_NET_SCH_NETEM"):
            rtr.netem("rb", delay_ms=20, loss_pct=1)
    else:
        rtr.netem("rb", delay_ms=20, loss_pct=1)
        shown = rtr.run(["tc", "qdisc", "show", "dev", "rb"]).stdout
        assert "netem" in shown and "delay 20ms" in shown and "loss 1%" in shown
        rtr.clear_netem("rb")
        assert "netem" not in rtr.run(["tc", "qdisc", "show", "dev", "rb"]).stdout
    with pytest.raises(NetnsError, match="exited"):
        run_in(rtr.ns, ["ip", "link", "set", "no-such-dev", "up"])


def test_processes_are_stopped_at_teardown() -> None:
    with Topology() as topo:
        host = topo.add_host("h")
        proc = host.popen(["sleep", "60"])
        assert proc.poll() is None
    assert proc.poll() is not None


def test_measure_detection_cleans_up() -> None:
    before = namespaces()
    latencies = measure_detection(5)
    assert len(latencies) == 5 and all(v >= 0 for v in latencies)
    assert namespaces() == before
    summary = summarize(latencies)
    print(f"\ndetection (watcher, after `ip addr add` returned): {summary}")
    with pytest.raises(PerfSetupError):
        measure_detection(0)


def udp_rtt_ms(client: TestHost, server: TestHost, address: str) -> float:
    started = time.perf_counter()
    assert udp_roundtrip(client, server, address, timeout=3.0)
    return (time.perf_counter() - started) * 1000


def test_emulated_link_delay_and_loss(topology: Topology) -> None:
    """The userspace link emulator: the round trip is at least twice the one-way delay,
    100 % loss cuts the link, and settings change live."""
    a = topology.add_host("a")
    b = topology.add_host("b")
    link = topology.connect_emulated(a, "e0", b, "e1", delay_ms=0)
    a.add_address("e0", "10.8.0.1/24")
    b.add_address("e1", "10.8.0.2/24")
    a.add_address("e0", "fd00:8::1/64")
    b.add_address("e1", "fd00:8::2/64")
    base = udp_rtt_ms(a, b, "10.8.0.2")
    link.set(delay_ms=40)
    slow = udp_rtt_ms(a, b, "fd00:8::2")
    print(f"\nemulated link: round trip incl. process start {base:.1f} ms at 0 ms delay, "
          f"{slow:.1f} ms at 40 ms one-way delay")
    assert slow >= 80  # a lower bound from the delay itself, not a speed check
    link.set(delay_ms=0, loss_pct=100)
    assert not udp_roundtrip(a, b, "10.8.0.2", timeout=0.5)
    link.set(loss_pct=0)
    assert udp_roundtrip(a, b, "10.8.0.2")
    with pytest.raises(NetnsError):
        link.set(loss_pct=200)


def test_roaming_topology_with_emulated_links(topology: Topology) -> None:
    roaming = build_roaming(topology, emulate=True, delay_ms=5)
    assert udp_roundtrip(roaming.alice, roaming.bob, "10.4.0.2")
    assert udp_roundtrip(roaming.bob, roaming.alice, roaming.alice6)
    eth = roaming.links["b1"]
    assert isinstance(eth, EmulatedLink)
    eth.set(loss_pct=100)
    assert not udp_roundtrip(roaming.alice, roaming.bob, "10.4.0.2", timeout=0.5)


def test_stale_namespaces_of_dead_processes_are_removed() -> None:
    """A run killed with SIGKILL leaves its namespaces; the next run removes them."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"md{dead.pid}n1-alice"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        assert stale in remove_stale_namespaces()
        assert stale not in namespaces()
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True, check=False)

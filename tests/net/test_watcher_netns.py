"""The netlink watcher against a real kernel, in test-host namespaces.

Detection latency is printed (run with ``-s`` to see it), never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time

import pytest

from mobilityd.net.errors import WatcherError
from mobilityd.net.events import (
    AddressAdded,
    AddressFamily,
    AddressFlag,
    AddressRemoved,
    AllAddressesLost,
    DefaultRouteChanged,
    LinkDown,
    LinkUp,
    NetEvent,
)
from mobilityd.net.watcher import NetlinkWatcher
from tests.netns import RoamingTopology, TestHost, Topology, run

pytestmark = pytest.mark.netns
WAIT = 10.0  # generous bound so a loaded CI machine does not fail; not a timing check


async def wait_for(watcher: NetlinkWatcher, wanted: type, **fields: object) -> NetEvent:
    """Next event of type ``wanted`` whose attributes equal ``fields``."""
    async with asyncio.timeout(WAIT):
        while True:
            for event in await watcher.next_events():
                if isinstance(event, wanted) and all(
                        getattr(event, k) == v for k, v in fields.items()):
                    return event


def address_line(host: TestHost, address: str) -> str:
    """The one-line ``ip -o addr`` output for ``address`` (flags such as tentative)."""
    out = host.ip("-o", "-6", "addr", "show", "dev", "h0").stdout
    return next(line for line in out.splitlines() if f" {address}/" in line)


async def test_initial_dump(roaming: RoamingTopology) -> None:
    async with NetlinkWatcher(netns=roaming.bob.ns) as watcher:
        added = {e.address for e in watcher.initial_events if isinstance(e, AddressAdded)}
        # loopback and link-local addresses are never announced
        assert added == {"10.2.0.2", "10.4.0.2", "fd00:2::2", "fd00:4::2"}
        ups = {e.ifname for e in watcher.initial_events if isinstance(e, LinkUp)}
        assert {"b0", "b1"} <= ups
        routes = [e for e in watcher.initial_events if isinstance(e, DefaultRouteChanged)]
        assert DefaultRouteChanged(AddressFamily.INET, "10.4.0.1", roaming.bob.ifindex("b1"),
                                   "b1") == watcher.state.default_route(AddressFamily.INET)
        assert routes
        assert watcher.state.default_route(AddressFamily.INET6).gateway == "fd00:4::1"


async def test_address_add_del_and_latency(roaming: RoamingTopology) -> None:
    bob = roaming.bob
    latencies: list[float] = []
    async with NetlinkWatcher(netns=bob.ns) as watcher:
        for i in range(5):
            address = f"10.3.0.{10 + i}"
            bob.add_address("b0", f"{address}/24")
            returned = time.perf_counter()
            event = await wait_for(watcher, AddressAdded, address=address)
            latencies.append((time.perf_counter() - returned) * 1000)
            assert isinstance(event, AddressAdded)
            assert event == AddressAdded(bob.ifindex("b0"), "b0", address, 24,
                                         AddressFamily.INET, AddressFlag.PERMANENT)
            bob.del_address("b0", f"{address}/24")
            await wait_for(watcher, AddressRemoved, address=address)
    print(f"\nwatcher detection after `ip addr add` returned: median "
          f"{statistics.median(latencies):.3f} ms of {len(latencies)}")


async def test_link_down_up_and_default_route(roaming: RoamingTopology) -> None:
    bob = roaming.bob
    async with NetlinkWatcher(netns=bob.ns) as watcher:
        bob.link_down("b1")
        await wait_for(watcher, LinkDown, ifname="b1")
        route = watcher.state.default_route(AddressFamily.INET)
        assert (route.gateway, route.ifname) == ("10.2.0.1", "b0")
        bob.link_up("b1")
        await wait_for(watcher, LinkUp, ifname="b1")


async def test_losing_every_address(topology: Topology) -> None:
    host = topology.add_host("h")
    peer = topology.add_host("p")
    topology.connect(host, "h0", peer, "p0")
    host.add_address("h0", "10.7.0.2/24")
    async with NetlinkWatcher(netns=host.ns) as watcher:
        host.del_address("h0", "10.7.0.2/24")
        await wait_for(watcher, AllAddressesLost)
        assert watcher.state.usable_addresses() == []
        host.add_address("h0", "10.7.0.3/24")
        await wait_for(watcher, AddressAdded, address="10.7.0.3")


async def test_tentative_ipv6_waits_for_dad(topology: Topology) -> None:
    """RFC 4862 §5.4: announced only by the RTM_NEWADDR that ends DAD."""
    host = topology.add_host("h")
    peer = topology.add_host("p")
    topology.connect(host, "h0", peer, "p0")
    async with NetlinkWatcher(netns=host.ns) as watcher:
        host.add_address("h0", "fd00:7::2/64", nodad=False)
        added_at = time.monotonic()
        # the kernel says TENTATIVE right away
        assert "tentative" in address_line(host, "fd00:7::2")
        event = await wait_for(watcher, AddressAdded, address="fd00:7::2")
        waited = time.monotonic() - added_at
        assert "tentative" not in address_line(host, "fd00:7::2")
        assert isinstance(event, AddressAdded)
        print(f"\nIPv6 address announced after DAD, {waited * 1000:.0f} ms after ip addr add")


async def test_dad_failure_never_announced(topology: Topology) -> None:
    """RFC 4862 §5.4.5: a duplicate makes the address dadfailed; it is never usable."""
    host = topology.add_host("h")
    peer = topology.add_host("p")
    topology.connect(host, "h0", peer, "p0")
    peer.add_address("p0", "fd00:8::2/64")
    async with NetlinkWatcher(netns=host.ns) as watcher:
        host.add_address("h0", "fd00:8::2/64", nodad=False)
        host.add_address("h0", "fd00:8::9/64")  # a marker that arrives right away
        await wait_for(watcher, AddressAdded, address="fd00:8::9")
        deadline = time.monotonic() + WAIT
        while "dadfailed" not in address_line(host, "fd00:8::2"):
            assert time.monotonic() < deadline, "kernel never marked the duplicate dadfailed"
            await asyncio.sleep(0.05)
        # let the watcher read whatever the kernel sent meanwhile
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watcher.next_events(), 0.5)
        usable = {u.address for u in watcher.state.usable_addresses()}
        assert "fd00:8::2" not in usable
        assert "fd00:8::9" in usable


async def test_missing_namespace_is_a_typed_error() -> None:
    with pytest.raises(WatcherError):
        await NetlinkWatcher(netns="mobilityd-no-such-namespace").start()


async def test_receive_buffer_overrun_resyncs(topology: Topology) -> None:
    """A burst larger than the socket buffer (ENOBUFS) loses notifications; the watcher
    dumps again and its state matches the kernel."""
    host = topology.add_host("h")
    peer = topology.add_host("p")
    topology.connect(host, "h0", peer, "p0")
    host.add_address("h0", "10.7.0.2/24")
    async with NetlinkWatcher(netns=host.ns, rcvbuf=4096) as watcher:
        batch = "".join(f"addr add 198.18.{i // 200}.{i % 200 + 1}/32 dev h0\n"
                        for i in range(300))
        batch += "addr del 10.7.0.2/24 dev h0\n"
        # the event loop is blocked meanwhile, so the small buffer overruns
        run(["ip", "-n", host.ns, "-batch", "-"], input_text=batch)
        seen: list[NetEvent] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                while True:
                    seen.extend(await watcher.next_events())
        assert watcher.resyncs >= 1
        usable = {u.address for u in watcher.state.usable_addresses()}
        assert len(usable) == 300 and "10.7.0.2" not in usable
        removed = [e for e in seen if isinstance(e, AddressRemoved)]
        assert [e.address for e in removed] == ["10.7.0.2"]

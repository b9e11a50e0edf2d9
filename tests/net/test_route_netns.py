"""RTM_GETROUTE source-address lookup against the kernel, Bob with wlan (b0) and eth (b1).

The reference is always the kernel's own answer (``ip route get``), never a hard-coded
address alone.
"""

from __future__ import annotations

import pytest

from mobilityd.net.errors import InvalidAddressError, RouteLookupError
from mobilityd.net.preferences import PREFER_WIRED, SourcePreferences
from mobilityd.net.route import RouteResolver, prefixes_of, source_address_for
from mobilityd.net.watcher import NetlinkWatcher
from tests.netns import RoamingTopology, Topology

pytestmark = pytest.mark.netns


@pytest.mark.parametrize("dest", ["10.1.0.2", "fd00:1::2"])
def test_kernel_choice_by_metric(roaming: RoamingTopology, dest: str) -> None:
    bob = roaming.bob
    kernel = bob.kernel_source_for(dest)
    assert kernel in ("10.4.0.2", "fd00:4::2")  # eth: metric 100 beats wlan 600
    assert source_address_for(dest, netns=bob.ns) == kernel


@pytest.mark.parametrize("dest", ["10.1.0.2", "fd00:1::2"])
async def test_follows_the_kernel_when_eth_goes_down(roaming: RoamingTopology,
                                                     dest: str) -> None:
    bob = roaming.bob
    async with RouteResolver(netns=bob.ns) as resolver:
        bob.link_down("b1")
        choice = await resolver.lookup(dest)
        assert choice is not None
        assert choice.source == bob.kernel_source_for(dest)
        assert (choice.ifname, choice.source) in (("b0", "10.2.0.2"), ("b0", "fd00:2::2"))


def test_policy_routing_is_respected(roaming: RoamingTopology) -> None:
    """A rule sending Alice's traffic through table 100 (via wlan) wins over metrics."""
    bob = roaming.bob
    bob.ip("route", "add", "default", "via", "10.2.0.1", "dev", "b0", "table", "100")
    bob.ip("rule", "add", "to", "10.1.0.0/24", "lookup", "100", "priority", "100")
    assert bob.kernel_source_for("10.1.0.2") == "10.2.0.2"
    assert source_address_for("10.1.0.2", netns=bob.ns) == "10.2.0.2"


async def test_preferences_on_top(roaming: RoamingTopology) -> None:
    bob = roaming.bob
    async with RouteResolver(netns=bob.ns) as resolver:
        # candidates: one per interface that really reaches Alice
        names = sorted(c.ifname for c in await resolver.candidates("10.1.0.2"))
        assert names == ["b0", "b1"]
        wlan = await resolver.choose("10.1.0.2", SourcePreferences(prefer=("b0",)))
        assert wlan is not None and wlan.source == "10.2.0.2"
        avoid = await resolver.choose("fd00:1::2", SourcePreferences(avoid=("b1",)))
        assert avoid is not None and avoid.source == "fd00:2::2"
        wired = await resolver.choose("10.1.0.2", SourcePreferences(prefer=PREFER_WIRED))
        assert wired is not None and wired.source == bob.kernel_source_for("10.1.0.2")


async def test_on_link_guess_is_not_a_candidate(roaming: RoamingTopology) -> None:
    """Without a route via b0 the IPv4 kernel still answers an oif=b0 lookup by
    assuming Alice is on that link; that answer must not become a candidate."""
    bob = roaming.bob
    bob.ip("route", "del", "default", "via", "10.2.0.1", "dev", "b0")
    async with RouteResolver(netns=bob.ns) as resolver:
        guessed = await resolver.lookup("10.1.0.2", oif=bob.ifindex("b0"))
        assert guessed is not None and guessed.gateway is None
        names = [c.ifname for c in await resolver.candidates("10.1.0.2")]
        assert names == ["b1"]
        # avoiding the only way out still keeps the call reachable (soft avoid)
        choice = await resolver.choose("10.1.0.2", SourcePreferences(avoid=("b1",)))
        assert choice is not None and choice.ifname == "b1"


def test_unreachable_is_none(topology: Topology) -> None:
    host = topology.add_host("h")
    peer = topology.add_host("p")
    topology.connect(host, "h0", peer, "p0")
    host.add_address("h0", "10.7.0.2/24")
    assert host.kernel_source_for("192.0.2.1") is None
    assert source_address_for("192.0.2.1", netns=host.ns) is None
    assert source_address_for("2001:db8::1", netns=host.ns) is None
    assert source_address_for("10.7.0.9", netns=host.ns) == "10.7.0.2"


@pytest.mark.parametrize("bad", ["", "10.1.0", "bob.example", "224.0.0.1", "::"])
def test_bad_destination_is_a_typed_error(bad: str) -> None:
    with pytest.raises(InvalidAddressError):
        source_address_for(bad)


def test_missing_namespace_is_a_typed_error() -> None:
    with pytest.raises(RouteLookupError):
        source_address_for("10.1.0.2", netns="mobilityd-no-such-namespace")


def test_current_namespace_lookup() -> None:
    """Without netns the lookup runs where we are; loopback always has a route."""
    assert source_address_for("127.0.0.1") == "127.0.0.1"


async def test_candidates_from_a_watchers_state(roaming: RoamingTopology) -> None:
    """Names and prefixes taken from a running watcher give the same answers as asking
    the kernel for them."""
    bob = roaming.bob
    async with NetlinkWatcher(netns=bob.ns) as watcher:
        state = watcher.state
        fast = RouteResolver(netns=bob.ns, link_names=state.ifname,
                             local_prefixes=lambda: prefixes_of(state.usable_addresses()))
        async with fast, RouteResolver(netns=bob.ns) as slow:
            for dest in ("10.1.0.2", "fd00:1::2"):
                assert await fast.candidates(dest) == await slow.candidates(dest)
                prefs = SourcePreferences(prefer=("b0",))
                assert await fast.choose(dest, prefs) == await slow.choose(dest, prefs)

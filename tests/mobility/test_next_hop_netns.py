"""Make-before-break moves wait for the new link's gateway (issue 5; ARP RFC 826,
neighbor discovery RFC 4861 §7.2): real `ip` changes on Bob, the kernel's neighbour
table checked at the instant the path monitor decides. Order of events only, no timing.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from mobilityd.mobility.decision import CallPath
from mobilityd.mobility.events import CallPathChanged
from mobilityd.mobility.pathmonitor import Decision, PathMonitor
from mobilityd.net.neighbors import RESOLVED_STATES, NeighborState, NeighborTable
from tests.netns import RoamingTopology

pytestmark = pytest.mark.netns
ALICE = "10.1.0.2"
WAIT = 10.0


async def first_move(monitor: PathMonitor) -> list[Decision]:
    async with asyncio.timeout(WAIT):
        while True:
            decisions = await monitor.next_decisions()
            if any(isinstance(d, CallPathChanged) for d in decisions):
                return decisions


def eth_state(roaming: RoamingTopology, gateway: str = "10.4.0.1") -> NeighborState:
    table = NeighborTable(roaming.bob.ns)
    try:
        return table.state_of(gateway, roaming.bob.ifindex("b1"))
    finally:
        table.close()


async def test_optional_move_waits_for_the_gateway(
        roaming: RoamingTopology, caplog: pytest.LogCaptureFixture) -> None:
    """Ethernet plugged back while the call runs on Wi-Fi: the move is decided only
    once the kernel holds a valid entry for eth's gateway (it had none: the link going
    down flushed it), so the move's first packet leaves at once; the cap (5 s here)
    was not what ended the wait."""
    bob = roaming.bob
    bob.link_down("b1")
    monitor = PathMonitor(netns=bob.ns, hold_down=0.0, resolve_next_hop=5.0)
    await monitor.start()
    try:
        monitor.add_call(CallPath("c1", "10.2.0.2", ALICE, ALICE))
        bob.link_up("b1")
        assert eth_state(roaming) & RESOLVED_STATES == NeighborState.NONE
        with caplog.at_level(logging.INFO, logger="mobilityd.mobility.pathmonitor"):
            bob.add_default_route("10.4.0.1", dev="b1", metric=100)
            decisions = await first_move(monitor)
            state = eth_state(roaming)  # right after the decision, before anything else
        assert CallPathChanged("c1", "10.2.0.2", "10.4.0.2") in decisions
        assert state & RESOLVED_STATES, f"gateway not resolved at the move: {state!r}"
        assert "before next hop" not in caplog.text
    finally:
        monitor.close()


async def test_forced_move_does_not_wait(roaming: RoamingTopology) -> None:
    """Ethernet unplugged while the call runs on it: the move to Wi-Fi is decided at
    once, whatever the state of Wi-Fi's gateway (never resolved here: nothing used
    it and the monitor's wait is for optional moves only)."""
    bob = roaming.bob
    bob.ip("neigh", "flush", "dev", "b0")
    monitor = PathMonitor(netns=bob.ns, hold_down=0.0, resolve_next_hop=5.0)
    await monitor.start()
    try:
        monitor.add_call(CallPath("c1", "10.4.0.2", ALICE, ALICE))
        bob.link_down("b1")
        decisions = await first_move(monitor)
        assert CallPathChanged("c1", "10.4.0.2", "10.2.0.2") in decisions
        assert not monitor.coalescer.waiting_for_next_hop()
    finally:
        monitor.close()


async def test_unanswered_gateway_moves_at_the_cap(
        roaming: RoamingTopology, caplog: pytest.LogCaptureFixture) -> None:
    """A gateway that never answers ARP: the optional move still happens, at the cap,
    with a warning; the entry is still unresolved then."""
    bob = roaming.bob
    bob.link_down("b1")
    monitor = PathMonitor(netns=bob.ns, hold_down=0.0, resolve_next_hop=0.3)
    await monitor.start()
    try:
        monitor.add_call(CallPath("c1", "10.2.0.2", ALICE, ALICE))
        bob.link_up("b1")
        with caplog.at_level(logging.WARNING, logger="mobilityd.mobility.pathmonitor"):
            bob.add_default_route("10.4.0.99", dev="b1", metric=100)  # nobody there
            decisions = await first_move(monitor)
        assert CallPathChanged("c1", "10.2.0.2", "10.4.0.2") in decisions
        assert not eth_state(roaming, "10.4.0.99") & RESOLVED_STATES
        assert "before next hop 10.4.0.99" in caplog.text
    finally:
        monitor.close()

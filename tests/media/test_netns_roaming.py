"""SRTP media between two namespace hosts while Bob roams to a new subnet
(testbed.md; issue 5 steps 1 and 4, media side): Bob's endpoint rebinds with the same
SRTP sessions and port, Alice follows only after an authenticated packet from Bob's new
address, audio flows both ways, no authentication failure, no index reused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.events import MediaEvent, RemoteAddressConfirmed
from mobilityd.media.rtp import build_rtp
from mobilityd.media.srtp import Direction, SrtpKeys, SrtpSession
from tests.netns import RoamingTopology

pytestmark = pytest.mark.netns

A_KEYS = SrtpKeys(bytes(range(16)), bytes(range(14)))
B_KEYS = SrtpKeys(bytes(range(16, 32)), bytes(range(14, 28)))
A_SSRC, B_SSRC = 0xA, 0xB


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def test_bob_roams_to_a_new_subnet(roaming: RoamingTopology) -> None:
    bob_host = roaming.bob
    bob_host.run(["ip", "link", "set", "b1", "down"])  # only the "wlan" is up
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    alice_events: list[MediaEvent] = []
    a_tx = SrtpSession(A_KEYS, Direction.OUTBOUND, keep_index_history=True)
    b_tx = SrtpSession(B_KEYS, Direction.OUTBOUND, keep_index_history=True)
    alice = MediaEndpoint(roaming.alice4, tx=a_tx, rx=SrtpSession(B_KEYS, Direction.INBOUND),
                          netns=roaming.alice.ns, on_rtp=lambda d, s: got_a.append(d),
                          on_event=alice_events.append)
    bob = MediaEndpoint("10.2.0.2", tx=b_tx, rx=SrtpSession(A_KEYS, Direction.INBOUND),
                        netns=bob_host.ns, on_rtp=lambda d, s: got_b.append(d))
    await alice.open()
    await bob.open()
    try:
        alice.set_remote(bob.local_rtp)
        bob.set_remote(alice.local_rtp)
        seq = {"a": 65530, "b": 65530}

        def talk() -> None:
            alice.send_rtp(build_rtp(0, seq["a"], seq["a"] * 160, A_SSRC, b"\xff" * 160))
            bob.send_rtp(build_rtp(0, seq["b"], seq["b"] * 160, B_SSRC, b"\xff" * 160))
            seq["a"] += 1
            seq["b"] += 1

        for _ in range(5):
            talk()
        await until(lambda: len(got_a) == 5 and len(got_b) == 5)
        sessions = (alice.tx, alice.rx, bob.tx, bob.rx)
        old_port = bob.local_rtp[1]

        # Bob roams: the wlan address goes, a new one on another subnet comes.
        bob_host.run(["ip", "addr", "del", roaming.bob_wlan4, "dev", "b0"])
        bob_host.run(["ip", "addr", "add", "10.3.0.7/24", "dev", "b0"])
        bob_host.run(["ip", "route", "replace", "default", "via", "10.3.0.1", "dev", "b0"])
        await bob.rebind("10.3.0.7")
        assert bob.local_rtp == ("10.3.0.7", old_port)

        talk()  # Bob's first packet from the new address; Alice has no update yet
        await until(lambda: len(got_a) == 6)
        assert alice.remote_rtp == ("10.2.0.2", old_port)
        alice.propose_remote(None, any_source=True)  # the verified MIKEY update arrived
        assert alice.remote_rtp == ("10.3.0.7", old_port)  # proof came first: either order
        for _ in range(5):
            talk()
        await until(lambda: len(got_a) == 11 and len(got_b) >= 10)
        assert (alice.tx, alice.rx, bob.tx, bob.rx) == sessions
        assert [e for e in alice_events if isinstance(e, RemoteAddressConfirmed)]
        assert alice.counters.auth_failures == bob.counters.auth_failures == 0
        assert a_tx.index_history is not None and b_tx.index_history is not None
        assert len(a_tx.index_history) == a_tx.counters(A_SSRC).packets == 11
        assert len(b_tx.index_history) == 11
        assert b_tx.get_roc(B_SSRC) == 1 and alice.rx is not None
        assert alice.rx.get_roc(B_SSRC) == 1
    finally:
        alice.close()
        bob.close()

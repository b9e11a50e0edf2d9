"""Both parties move at the same instant (issue 5 "both move at once"), made
deterministic: no packet sent to either party's old *media* address can arrive.

Before the moves the router blackholes UDP toward both old RTP/RTCP ports
(``ip rule ... ipproto udp dport P-P+1 blackhole``), so each side's SRTCP announce
(:meth:`MediaEndpoint.announce`, sent right after its rebind to the other's old
address) and its media are lost -- as when both old addresses vanish before either
announce arrives. Signalling still reaches the old SIP addresses (each keeps
listening there for a transaction's life), so both re-INVITEs get through (491 glare
and back-off, RFC 3261 §14.1) and both updates verify (RFC 3830 §4.5).

Each return-routability gate then waits for an authenticated packet from the peer's
new address (issue 5 step 4) while the peer still sends to our old one. What breaks
the wait is the probe: once the peer's update verified, one authenticated SRTCP empty
RR (RFC 3550 §6.4.2, RFC 3711 §3.4) goes from where we are now to the RTCP address the
verified SDP names (RFC 3605 ``a=rtcp``) -- without sending our stream there. The
peer's gate takes it as proof and switches; its media then confirms our gate.

Checks as for every roaming scenario: audio resumes both ways from the new addresses,
zero SRTP authentication failures, no (SSRC, index) encrypted twice (RFC 3711 §9.1),
the same libsrtp session objects, the ROC past its first wrap.

The same with two :class:`CallAgent` daemons' call machinery on loopback (no root):
the agent path (:class:`VerifyingReinvitePolicy`) had no way out at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from mobilityd.call.agent import AgentConfig, CallAgent
from mobilityd.call.audio import AudioOptions
from mobilityd.call.events import CallConnected
from mobilityd.call.identity import sip_identity
from mobilityd.media.events import MediaEvent, RemoteAddressConfirmed
from mobilityd.mobility.agent_roaming import (
    MoveContexts,
    VerifyingReinvitePolicy,
    move_agent_call,
)
from tests.mobility.roaming_harness import received_from, start_call, wait_until
from tests.mobility.test_roaming_agent import A, B, keying, next_of
from tests.mobility.test_roaming_agent import wait_for as wait_for_condition
from tests.mobility.test_roaming_netns import assert_healthy
from tests.netns import RoamingTopology

ALICE_NEW, BOB_NEW = "10.1.0.9", "10.3.0.7"


def blackhole_media(roaming: RoamingTopology, ip: str, rtp_port: int) -> list[str]:
    """Drop every UDP packet to ``ip``'s RTP and RTCP ports at the router; returns the
    rule (for its removal)."""
    rule = ["to", ip, "ipproto", "udp", "dport", f"{rtp_port}-{rtp_port + 1}", "blackhole"]
    roaming.rtr.ip("rule", "add", *rule)
    return rule


@pytest.mark.netns
def test_both_move_while_both_old_media_addresses_are_gone(roaming: RoamingTopology) -> None:
    roaming.bob.link_down("b1")
    alice, bob = start_call(roaming)
    rules: list[list[str]] = []
    try:
        wait_until(bob, lambda s: s["roc_tx"] >= 1 and s["received"] > 20)
        a0, b0 = alice.stats(), bob.stats()
        roaming.bob.add_address("b0", f"{BOB_NEW}/24")
        roaming.alice.add_address("a0", f"{ALICE_NEW}/24")
        # one step: from here no packet reaches either old media address
        rules.append(blackhole_media(roaming, a0["local_rtp"][0], a0["local_rtp"][1]))
        rules.append(blackhole_media(roaming, b0["local_rtp"][0], b0["local_rtp"][1]))
        since = time.monotonic()
        alice.send(cmd="move", ip=ALICE_NEW)
        bob.send(cmd="move", ip=BOB_NEW)
        alice.wait_for("moved")
        bob.wait_for("moved")
        a = wait_until(alice, lambda s: received_from(s, BOB_NEW, since) >= 10
                       and s["remote_rtp"][0] == BOB_NEW, timeout=20)
        b = wait_until(bob, lambda s: received_from(s, ALICE_NEW, since) >= 10
                       and s["remote_rtp"][0] == ALICE_NEW, timeout=20)
        a = wait_until(alice, lambda s: BOB_NEW in s["remote_target"], timeout=15)
        b = wait_until(bob, lambda s: ALICE_NEW in s["remote_target"], timeout=15)
        assert a["accepted"] == 1 and b["accepted"] == 1
        assert a["refused"] == [] and b["refused"] == []
        # the stream went only to where the peer's authenticated packets came from
        assert [ip for _, ip in a["confirmed"]] == [BOB_NEW]
        assert [ip for _, ip in b["confirmed"]] == [ALICE_NEW]
        assert_healthy(a, b)
    finally:
        for rule in rules:
            roaming.rtr.ip("rule", "del", *rule)
        alice.quit()
        bob.quit()


async def test_two_agents_move_at_once_over_loopback() -> None:
    """Both agents rebind their media before either can announce (the announces go
    to the other's old, closed sockets), then both send their re-INVITE (glare, 491,
    back-off, RFC 3261 §14.1). Both updates verify (RFC 3830 §4.5); the probes let
    each gate confirm the other's new address on an authenticated packet (step 4);
    audio resumes both ways; same SRTP sessions, no auth failures."""
    contexts = {"alice": MoveContexts(), "bob": MoveContexts()}
    policies = {"alice": VerifyingReinvitePolicy(contexts["alice"]),
                "bob": VerifyingReinvitePolicy(contexts["bob"])}
    bob = CallAgent(AgentConfig(B, "127.0.0.1", 0, keying=keying(A), auto_answer=True,
                                audio=AudioOptions(tone_hz=1000)),
                    reinvite_policy=policies["bob"])
    await bob.start()
    alice = CallAgent(AgentConfig(A, "127.0.0.1", 0, keying=keying(B),
                                  contacts={sip_identity(B): bob.sip.local_address},
                                  audio=AudioOptions(tone_hz=440)),
                      reinvite_policy=policies["alice"])
    await alice.start()
    try:
        call_id = await alice.place(B)
        await next_of(alice, CallConnected)
        await next_of(bob, CallConnected)
        a_call, b_call = alice.call(call_id), bob.call(call_id)
        a_media, b_media = a_call.media, b_call.media
        assert a_media is not None and b_media is not None
        sessions = (a_media.tx, a_media.rx, b_media.tx, b_media.rx)
        confirmed: dict[str, list[RemoteAddressConfirmed]] = {"alice": [], "bob": []}
        for role, media in (("alice", a_media), ("bob", b_media)):
            previous = media.on_event

            def record(event: MediaEvent, role: str = role,
                       previous: Callable[[MediaEvent], None] | None = previous) -> None:
                if isinstance(event, RemoteAddressConfirmed):
                    confirmed[role].append(event)
                if previous is not None:
                    previous(event)
            media.on_event = record
        await wait_for_condition(lambda: a_call.monitor.frames > 10
                                 and b_call.monitor.frames > 10)
        # both leave their old media address in one step (no await yields in between)
        await a_media.rebind("127.0.0.2")
        await b_media.rebind("127.0.0.3")
        moves = [asyncio.create_task(move_agent_call(alice, call_id, "127.0.0.2",
                                                     contexts["alice"])),
                 asyncio.create_task(move_agent_call(bob, call_id, "127.0.0.3",
                                                     contexts["bob"]))]
        await wait_for_condition(lambda: policies["alice"].accepted == 1
                                 and policies["bob"].accepted == 1, timeout=20)
        await wait_for_condition(lambda: a_media.remote_rtp == b_media.local_rtp
                                 and b_media.remote_rtp == a_media.local_rtp, timeout=5)
        frames = (a_call.monitor.frames, b_call.monitor.frames)
        await wait_for_condition(lambda: a_call.monitor.frames > frames[0] + 10
                                 and b_call.monitor.frames > frames[1] + 10)
        for task in moves:
            task.cancel()
        assert [e.rtp for e in confirmed["alice"]] == [b_media.local_rtp]
        assert [e.rtp for e in confirmed["bob"]] == [a_media.local_rtp]
        assert (a_media.tx, a_media.rx, b_media.tx, b_media.rx) == sessions
        for media in (a_media, b_media):
            assert media.counters.auth_failures == media.counters.replays == 0
    finally:
        await alice.close()
        await bob.close()

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
"""

from __future__ import annotations

import time

import pytest

from tests.mobility.roaming_harness import received_from, start_call, wait_until
from tests.mobility.test_roaming_netns import assert_healthy
from tests.netns import RoamingTopology

pytestmark = pytest.mark.netns

ALICE_NEW, BOB_NEW = "10.1.0.9", "10.3.0.7"


def blackhole_media(roaming: RoamingTopology, ip: str, rtp_port: int) -> list[str]:
    """Drop every UDP packet to ``ip``'s RTP and RTCP ports at the router; returns the
    rule (for its removal)."""
    rule = ["to", ip, "ipproto", "udp", "dport", f"{rtp_port}-{rtp_port + 1}", "blackhole"]
    roaming.rtr.ip("rule", "add", *rule)
    return rule


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

"""Issue 5 on real test hosts (testbed.md: Alice -- rtr -- Bob with "wlan" b0 and
"eth" b1): a secure call (MIKEY PSK, SRTP both ways every 20 ms, sequence numbers
starting near 65535 so the ROC is 1 by the move, RFC 3711 §3.3.1) survives Bob's moves.

Every scenario checks: the call survives, audio resumes both ways, zero SRTP
authentication failures, no (SSRC, index) encrypted twice (RFC 3711 §9.1), and the
SRTP session objects on both sides are the ones from before the move."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.mobility.roaming_harness import PartyProcess, received_from, start_call, wait_until
from tests.netns import RoamingTopology

pytestmark = pytest.mark.netns


def assert_healthy(*parties: dict[str, Any]) -> None:
    for stats in parties:
        assert stats["auth_failures"] == 0, stats["role"]
        assert stats["index_reuse"] == 0, stats["role"]
        assert stats["same_sessions"], stats["role"]
        assert not stats["ended"], stats["role"]
        assert stats["roc_tx"] >= 1, stats["role"]  # the move happened after the wrap


def audio_both_ways_after(alice: PartyProcess, bob: PartyProcess, bob_ip: str,
                          since: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait until Alice decrypts 10 packets from Bob's ``bob_ip`` and Bob 10 from Alice
    after ``since`` (Bob's clock: both run on this machine, same CLOCK_MONOTONIC)."""
    a = wait_until(alice, lambda s: received_from(s, bob_ip, since) >= 10)
    b = wait_until(bob, lambda s: sum(1 for t, _, _ in s["received_log"] if t > since) >= 10)
    assert a["remote_rtp"][0] == bob_ip
    return a, b


def test_roam_to_a_new_subnet(roaming: RoamingTopology) -> None:
    roaming.bob.link_down("b1")
    alice, bob = start_call(roaming)
    try:
        wait_until(bob, lambda s: s["roc_tx"] >= 1 and s["received"] > 40)
        roaming.bob.del_address("b0", roaming.bob_wlan4)
        roaming.bob.add_address("b0", "10.3.0.7/24")
        roaming.bob.ip("route", "replace", "default", "via", "10.3.0.1", "dev", "b0")
        since = time.monotonic()
        bob.send(cmd="move", ip="10.3.0.7")
        bob.wait_for("moved")
        a, b = audio_both_ways_after(alice, bob, "10.3.0.7", since)
        assert bob.wait_for("ReinviteAccepted")["status"] == 200
        a = alice.stats()
        assert a["accepted"] == 1 and a["refused"] == []
        assert "10.3.0.7" in a["remote_target"]
        assert b["sip_local"][0] == "10.3.0.7"
        assert_healthy(a, bob.stats())
    finally:
        alice.quit()
        bob.quit()

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
from tests.netns import EmulatedLink, RoamingTopology, Topology, build_roaming

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
    a = wait_until(alice, lambda s: received_from(s, bob_ip, since) >= 10
                   and s["remote_rtp"][0] == bob_ip, timeout=15)
    b = wait_until(bob, lambda s: sum(1 for t, _, _ in s["received_log"] if t > since) >= 10)
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


def test_wifi_to_ethernet_make_before_break(roaming: RoamingTopology) -> None:
    """Eth comes up while wlan still works: the kernel prefers eth (metric 100 < 600),
    Bob's path monitor moves the call by itself, the old path never broke."""
    bob_host = roaming.bob
    bob_host.link_down("b1")
    alice, bob = start_call(roaming, auto=True)
    try:
        bob.wait_for("monitoring")
        wait_until(bob, lambda s: s["roc_tx"] >= 1)
        since = time.monotonic()
        bob_host.link_up("b1")
        bob_host.add_default_route("10.4.0.1", dev="b1", metric=100)
        decision = bob.wait_for("decision")
        assert decision["kind"] == "CallPathChanged" and "10.4.0.2" in decision["detail"]
        audio_both_ways_after(alice, bob, "10.4.0.2", since)
        assert bob.wait_for("ReinviteAccepted")["status"] == 200
        assert_healthy(alice.stats(), bob.stats())
    finally:
        alice.quit()
        bob.quit()


def test_ethernet_unplugged_moves_to_wifi(roaming: RoamingTopology) -> None:
    alice, bob = start_call(roaming, bob_ip="10.4.0.2", auto=True)
    try:
        bob.wait_for("monitoring")
        wait_until(bob, lambda s: s["roc_tx"] >= 1)
        since = time.monotonic()
        roaming.bob.link_down("b1")
        assert bob.wait_for("decision")["kind"] == "CallPathChanged"
        audio_both_ways_after(alice, bob, "10.2.0.2", since)
        assert_healthy(alice.stats(), bob.stats())
    finally:
        alice.quit()
        bob.quit()


def test_address_lost_and_back_within_grace(roaming: RoamingTopology) -> None:
    bob_host = roaming.bob
    bob_host.link_down("b1")
    alice, bob = start_call(roaming, auto=True, grace=30.0)
    try:
        bob.wait_for("monitoring")
        wait_until(bob, lambda s: s["roc_tx"] >= 1)
        bob_host.del_address("b0", roaming.bob_wlan4)
        bob_host.del_address("b0", roaming.bob_wlan6)
        kinds = {bob.wait_for("decision")["kind"] for _ in range(2)}
        assert kinds == {"CallPathLost", "GracePeriodStarted"}
        time.sleep(1.0)  # no address at all for a second: the call is kept
        since = time.monotonic()
        bob_host.add_address("b0", "10.3.0.7/24")
        bob_host.add_default_route("10.3.0.1", dev="b0")
        assert bob.wait_for("decision")["kind"] == "CallPathChanged"
        audio_both_ways_after(alice, bob, "10.3.0.7", since)
        assert_healthy(alice.stats(), bob.stats())
    finally:
        alice.quit()
        bob.quit()


def test_address_lost_for_longer_than_grace_ends_the_call(roaming: RoamingTopology) -> None:
    bob_host = roaming.bob
    bob_host.link_down("b1")
    alice, bob = start_call(roaming, auto=True, grace=1.0)
    try:
        bob.wait_for("monitoring")
        bob_host.link_down("b0")
        seen = [bob.wait_for("decision")["kind"] for _ in range(3)]
        assert seen == ["CallPathLost", "GracePeriodStarted", "GracePeriodExpired"]
        bob.wait_for("decision_done")
        # the BYE cannot leave (no address): Bob's side ends by itself (RFC 3261 §15)
        wait_until(bob, lambda s: "CallEnded" in s["sip_events"] or s["ended"], timeout=40)
    finally:
        alice.quit()
        bob.quit()


def test_lost_then_back_after_grace_sends_bye(roaming: RoamingTopology) -> None:
    """The call ended by the grace period is ended cleanly at Alice too once a path
    exists again (the BYE is retransmitted, RFC 3261 §17.1.2.2)."""
    bob_host = roaming.bob
    bob_host.link_down("b1")
    alice, bob = start_call(roaming, auto=True, grace=0.5)
    try:
        bob.wait_for("monitoring")
        bob_host.del_address("b0", roaming.bob_wlan4)
        assert [bob.wait_for("decision")["kind"] for _ in range(3)][-1] == "GracePeriodExpired"
        bob_host.add_address("b0", roaming.bob_wlan4)
        bob_host.add_default_route("10.2.0.1", dev="b0")
        ended = alice.wait_for("ended", timeout=20)
        assert ended["by_peer"] is True
    finally:
        alice.quit()
        bob.quit()


def test_move_while_another_reinvite_is_pending(roaming: RoamingTopology) -> None:
    """RFC 3261 §14.1: the move's offer waits for the running re-INVITE, then goes."""
    roaming.bob.link_down("b1")
    alice, bob = start_call(roaming)
    try:
        wait_until(bob, lambda s: s["roc_tx"] >= 1)
        roaming.bob.add_address("b0", "10.3.0.7/24")
        since = time.monotonic()
        bob.send(cmd="reinvite_then_move", ip="10.3.0.7")
        assert bob.wait_for("moved")["deferred"] is True
        audio_both_ways_after(alice, bob, "10.3.0.7", since)
        assert [bob.wait_for("ReinviteAccepted")["status"] for _ in range(2)] == [200, 200]
        a = alice.stats()
        assert a["accepted"] == 1 and "10.3.0.7" in a["remote_target"]
        assert_healthy(a, bob.stats())
    finally:
        alice.quit()
        bob.quit()


def test_move_while_the_peers_reinvite_is_pending(roaming: RoamingTopology) -> None:
    """RFC 3261 §14.1 the other way round: Alice's re-INVITE (a session refresh) is
    still unanswered at Bob when he moves, so his offer waits; no event reports the
    end of that transaction (Alice's ACK), and the offer must still go out (the
    deferred offer is retried on a timer). Before that, the move stayed deferred for
    good -- what made test_both_move_at_once flaky."""
    roaming.bob.link_down("b1")
    alice, bob = start_call(roaming)
    try:
        wait_until(bob, lambda s: s["roc_tx"] >= 1)
        roaming.bob.add_address("b0", "10.3.0.7/24")
        bob.send(cmd="hold_reinvites")
        bob.wait_for("holding")
        alice.send(cmd="refresh")
        wait_until(bob, lambda s: "ReinviteReceived" in s["sip_events"])
        since = time.monotonic()
        bob.send(cmd="move", ip="10.3.0.7")
        bob.wait_for("moved")
        assert bob.stats()["sip_events"].count("ReinviteAccepted") == 0  # deferred
        bob.send(cmd="release_reinvites")
        assert bob.wait_for("released")["count"] == 1
        assert alice.wait_for("ReinviteAccepted")["status"] == 200  # the refresh
        audio_both_ways_after(alice, bob, "10.3.0.7", since)
        assert bob.wait_for("ReinviteAccepted")["status"] == 200  # the move
        a = alice.stats()
        assert a["accepted"] == 1 and "10.3.0.7" in a["remote_target"]
        assert_healthy(a, bob.stats())
    finally:
        alice.quit()
        bob.quit()


def test_both_move_at_once(roaming: RoamingTopology) -> None:
    """Glare (RFC 3261 §14.1): both re-INVITEs cross, both get 491, each retries after
    its back-off, and both moves end up applied."""
    roaming.bob.link_down("b1")
    alice, bob = start_call(roaming)
    try:
        wait_until(bob, lambda s: s["roc_tx"] >= 1)
        roaming.bob.add_address("b0", "10.3.0.7/24")
        roaming.alice.add_address("a0", "10.1.0.9/24")
        since = time.monotonic()
        alice.send(cmd="move", ip="10.1.0.9")
        bob.send(cmd="move", ip="10.3.0.7")
        alice.wait_for("moved")
        bob.wait_for("moved")
        a, _ = audio_both_ways_after(alice, bob, "10.3.0.7", since)
        b = wait_until(bob, lambda s: received_from(s, "10.1.0.9", since) >= 10
                       and s["remote_rtp"][0] == "10.1.0.9", timeout=15)
        a = wait_until(alice, lambda s: "10.3.0.7" in s["remote_target"], timeout=15)
        b = wait_until(bob, lambda s: "10.1.0.9" in s["remote_target"], timeout=15)
        assert a["accepted"] == 1 and b["accepted"] == 1
        assert_healthy(a, b)
    finally:
        alice.quit()
        bob.quit()


def test_ten_percent_loss_during_the_move(topology: Topology) -> None:
    """Bob's links lose 10 % of packets each way (userspace emulator, no netem here):
    the re-INVITE is retransmitted (RFC 3261 §17.1.1.2) and the move completes."""
    roaming = build_roaming(topology, emulate=True, delay_ms=5)
    roaming.bob.link_down("b1")
    alice, bob = start_call(roaming)
    try:
        wait_until(bob, lambda s: s["roc_tx"] >= 1)
        for link in ("b0", "b1"):
            emulated = roaming.links[link]
            assert isinstance(emulated, EmulatedLink)
            emulated.set(loss_pct=10)
        roaming.bob.add_address("b0", "10.3.0.7/24")
        since = time.monotonic()
        bob.send(cmd="move", ip="10.3.0.7")
        audio_both_ways_after(alice, bob, "10.3.0.7", since)
        assert bob.wait_for("ReinviteAccepted", timeout=30)["status"] == 200
        assert_healthy(alice.stats(), bob.stats())
    finally:
        alice.quit()
        bob.quit()


def test_ipv4_to_ipv6(roaming: RoamingTopology) -> None:
    """All of Bob's IPv4 goes; his path monitor moves the call to IPv6 toward Alice's
    IPv6 address (the alternate it was given); Alice verifies the update and follows
    with her own media to IPv6 (answer with o= version + 1 and c=IN IP6). Signalling
    runs over IPv6 throughout."""
    bob_host = roaming.bob
    alice6 = roaming.alice6
    alice, bob = start_call(roaming, bob_ip="10.4.0.2", bob_sip_ip="fd00:4::2",
                            alice_sip_ip=alice6, alice_alternates={"IP6": alice6},
                            auto=True, peer_alternates=[alice6])
    try:
        bob.wait_for("monitoring")
        wait_until(bob, lambda s: s["roc_tx"] >= 1)
        since = time.monotonic()
        bob_host.del_address("b0", roaming.bob_wlan4)
        bob_host.del_address("b1", roaming.bob_eth4)
        decision = bob.wait_for("decision")
        assert decision["kind"] == "CallPathChanged" and "fd00:4::2" in decision["detail"]
        a, _ = audio_both_ways_after(alice, bob, "fd00:4::2", since)
        assert a["local_rtp"][0] == alice6
        assert wait_until(bob, lambda s: s["remote_rtp"][0] == alice6)["received"] > 0
        assert "IN IP6" in a["local_sdp"]
        assert_healthy(alice.stats(), bob.stats())
    finally:
        alice.quit()
        bob.quit()


def test_reinvite_lost_then_retransmitted(roaming: RoamingTopology) -> None:
    """Everything Bob sends from his new address is dropped by the router for 1.2 s:
    the re-INVITE is retransmitted (Timer A, RFC 3261 §17.1.1.2) and gets through; the
    retransmissions are one transaction, so the update is verified once (no false
    replay) and the move completes."""
    roaming.bob.link_down("b1")
    alice, bob = start_call(roaming)
    try:
        wait_until(bob, lambda s: s["roc_tx"] >= 1)
        roaming.bob.add_address("b0", "10.3.0.7/24")
        roaming.rtr.ip("rule", "add", "from", "10.3.0.7", "blackhole")
        since = time.monotonic()
        bob.send(cmd="move", ip="10.3.0.7")
        bob.wait_for("moved")
        time.sleep(1.2)
        assert alice.stats()["accepted"] == 0  # nothing got through yet
        roaming.rtr.ip("rule", "del", "from", "10.3.0.7", "blackhole")
        assert bob.wait_for("ReinviteAccepted", timeout=10)["status"] == 200
        audio_both_ways_after(alice, bob, "10.3.0.7", since)
        a = alice.stats()
        assert a["accepted"] == 1 and a["refused"] == []
        assert_healthy(a, bob.stats())
    finally:
        alice.quit()
        bob.quit()

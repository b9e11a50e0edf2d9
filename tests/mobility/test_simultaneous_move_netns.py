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
the agent path (:class:`VerifyingReinvitePolicy`) had no way out at all. Also: the
price of the probe under attack (a rewritten ``c=`` gets a bounded few SRTCP reports,
never the stream), and which addresses a verified offer names for the probe.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable

import pytest

from mobilityd.call.agent import AgentConfig, CallAgent
from mobilityd.call.audio import AudioOptions
from mobilityd.call.events import CallConnected
from mobilityd.call.identity import sip_identity
from mobilityd.media.endpoint import PROBE_RETRIES, MediaEndpoint
from mobilityd.media.events import MediaEvent, RemoteAddressConfirmed
from mobilityd.mobility.agent_roaming import (
    MoveContexts,
    VerifyingReinvitePolicy,
    move_agent_call,
)
from mobilityd.mobility.move import MediaAddress, move_offer
from mobilityd.mobility.peer import probe_verified_move, verify_move
from mobilityd.sip.sdp import Attribute, SessionDescription
from tests.mobility.moving import NOW, bob_sdp, psk_call
from tests.mobility.roaming_harness import (
    ALICE_SIP_PORT,
    received_from,
    start_call,
    wait_until,
)
from tests.mobility.test_attack_netns import (
    MALLORY,
    MALLORY_MEDIA_PORT,
    attacked,
    forged_sdp,
    in_dialog_request,
)
from tests.mobility.test_roaming_agent import A, B, keying, next_of
from tests.mobility.test_roaming_agent import wait_for as wait_for_condition
from tests.mobility.test_roaming_netns import assert_healthy
from tests.netns import RoamingTopology, TestHost

__all__ = ["attacked"]  # the fixture of test_attack_netns (Mallory's third test host)

#: Mallory sends a request and counts what reaches her media ports (RTP on the m=
#: port, RTCP on a=rtcp), by kind: RTCP packet types are 200..204 (RFC 3550 §12.1)
MALLORY_COUNTS = r"""
import json, socket, sys, time
args = json.loads(sys.argv[1])
sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sip.bind((args["ip"], 5070))
sip.settimeout(0.05)
ports = []
for port in (args["media_port"], args["media_port"] + 1):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args["ip"], port))
    sock.setblocking(False)
    ports.append(sock)
sip.sendto(args["request"].encode(), tuple(args["to"]))
final, rtp, rtcp = None, 0, 0
end = time.monotonic() + args["listen"]
while time.monotonic() < end:
    try:
        data = sip.recv(65535)
    except socket.timeout:
        data = b""
    if data and final is None and int(data.split(b" ", 2)[1]) >= 200:
        final = int(data.split(b" ", 2)[1])
        if final < 300:
            sip.sendto(args["ack"].encode(), tuple(args["to"]))
    for sock in ports:
        try:
            while packet := sock.recv(2048):
                if 200 <= packet[1] <= 204:
                    rtcp += 1
                else:
                    rtp += 1
        except BlockingIOError:
            pass
print(json.dumps({"final": final, "rtp": rtp, "rtcp": rtcp}))
"""

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


@pytest.mark.netns
def test_rewritten_address_of_a_verified_update_gets_bounded_probes_never_the_stream(
        attacked: tuple[RoamingTopology, TestHost]) -> None:
    """The price of the probe, measured: Bob moves, his media from the new address is
    held up at the router, and Mallory (on path) rewrites the genuine offer's c=,
    m= port and a=rtcp to her own address (the MIKEY MAC does not cover SDP). Alice
    verifies the update and, hearing nothing from Bob's new address yet, probes the
    rewritten address: Mallory gets at most 1 + 3 SRTCP reports and not one RTP
    packet. Once Bob's media gets through, Alice's stream follows it (step 4)."""
    roaming, mallory = attacked
    alice, bob = start_call(roaming)
    rule = ["from", BOB_NEW, "blackhole"]
    try:
        wait_until(bob, lambda s: s["received"] > 20)
        b = bob.stats()
        roaming.bob.add_address("b0", f"{BOB_NEW}/24")
        roaming.rtr.ip("rule", "add", *rule)
        bob.send(cmd="capture_move", ip=BOB_NEW)
        genuine = bob.wait_for("captured")["body"]
        assert f"a=rtcp:{MALLORY_MEDIA_PORT + 1} IN IP4 {MALLORY}" in forged_sdp(genuine)
        request = in_dialog_request(b, forged_sdp(genuine))
        ack = in_dialog_request(b, "", method="ACK", cseq=b["local_seq"] + 50)
        args = {"ip": MALLORY, "media_port": MALLORY_MEDIA_PORT, "request": request,
                "ack": ack, "to": ["10.1.0.2", ALICE_SIP_PORT], "listen": 1.5}
        result = mallory.run([sys.executable, "-c", MALLORY_COUNTS, json.dumps(args)],
                             timeout=30)
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["final"] == 200  # a genuine update: accepted
        assert report["rtp"] == 0  # never the stream
        assert 1 <= report["rtcp"] <= 1 + PROBE_RETRIES  # the bounded probe
        a = alice.stats()
        assert a["accepted"] == 1 and a["remote_rtp"][0] == roaming.bob_wlan4.split("/")[0]
        since = time.monotonic()
        roaming.rtr.ip("rule", "del", *rule)
        rule = []
        a = wait_until(alice, lambda s: s["remote_rtp"][0] == BOB_NEW
                       and received_from(s, BOB_NEW, since) >= 10)
        assert a["auth_failures"] == 0 and a["same_sessions"] and a["index_reuse"] == 0
    finally:
        if rule:
            roaming.rtr.ip("rule", "del", *rule)
        alice.quit()
        bob.quit()


def test_verified_move_names_the_addresses_to_probe() -> None:
    """What a probe aims at (RFC 3605 §2.1 ``a=rtcp`` with its address, RFC 5761
    §5.1.1 ``a=rtcp-mux``: RTCP on the RTP port; neither: next to RTP, decided by
    the endpoint, RFC 3550 §11); the hints stay hints (never sent the stream)."""
    bob, alice = psk_call()
    offer = move_offer(bob_sdp(), bob, MediaAddress("10.3.0.7", 40000, 40001), NOW + 1)
    verified = verify_move(offer.body, alice, NOW + 1, previous=bob_sdp())
    assert (verified.media_hint, verified.rtcp_hint) == (("10.3.0.7", 40000),
                                                         ("10.3.0.7", 40001))
    no_rtcp = SessionDescription.parse(offer.body)
    no_rtcp.media[0].attributes = [a for a in no_rtcp.media[0].attributes
                                   if a.name != "rtcp"]
    bob2, alice2 = psk_call()
    offer2 = move_offer(no_rtcp, bob2, MediaAddress("10.3.0.7", 40000), NOW + 1)
    assert verify_move(offer2.body, alice2, NOW + 1).rtcp_hint is None
    muxed = SessionDescription.parse(offer2.body)
    muxed.media[0].attributes.append(Attribute("rtcp-mux", None))
    bob3, alice3 = psk_call()
    offer3 = move_offer(muxed, bob3, MediaAddress("10.3.0.7", 40000), NOW + 1)
    assert verify_move(offer3.body, alice3, NOW + 1).rtcp_hint == ("10.3.0.7", 40000)


async def test_probe_of_a_host_name_hint_is_skipped() -> None:
    """A verified offer whose c= names a host name, not an IP literal: nothing is
    probed and nothing changes (MediaLocalError is caught, never raised)."""
    bob, alice = psk_call()
    offer = move_offer(bob_sdp(), bob, MediaAddress("10.3.0.7", 40000), NOW + 1)
    body = offer.body.replace(b"IN IP4 10.3.0.7", b"IN IP4 bob.example")  # not MAC-covered
    verified = verify_move(body, alice, NOW + 1)
    assert verified.media_hint == ("bob.example", 40000)
    media = MediaEndpoint("127.0.0.1", tx=None, rx=None)
    await media.open()
    try:
        media.set_remote(("127.0.0.1", 9))
        media.propose_remote(None, any_source=True)
        assert probe_verified_move(media, verified) is False
        assert media.counters.probes_sent == 0 and media.remote_rtp == ("127.0.0.1", 9)
    finally:
        media.close()

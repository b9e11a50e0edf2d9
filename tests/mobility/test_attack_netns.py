"""Forged and replayed moves from a third test host, Mallory (issue 5, attacks).

Mallory knows the dialog (Call-ID, tags, URIs: e.g. from a capture) and sends
in-dialog re-INVITEs to Alice from 10.5.0.2. Each refused one must leave Alice's
dialog (remote target) and media (where she sends, her SRTP sessions) exactly as
they were (RFC 3830 §4.5 / §5.3, RFC 4567 §4.1.2). A genuine update whose SDP ``c=``
Mallory rewrote must never make Alice send her stream to Mallory (issue 5 step 4)."""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import ErrorPayload
from mobilityd.mikey.sdp import decode_key_mgmt
from tests.mobility.roaming_harness import (
    ALICE_SIP_PORT,
    PartyProcess,
    received_from,
    start_call,
    wait_until,
)
from tests.netns import RoamingTopology, TestHost, Topology, build_roaming

pytestmark = pytest.mark.netns
MALLORY = "10.5.0.2"
MALLORY_MEDIA_PORT = 40000

SEND_REQUEST = r"""
import json, socket, sys, time
args = json.loads(sys.argv[1])
sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sip.bind((args["ip"], 5070))
media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
media.bind((args["ip"], args["media_port"]))
media.setblocking(False)
sip.settimeout(0.2)
sip.sendto(args["request"].encode(), tuple(args["to"]))
final = None
end = time.monotonic() + args["listen"]
media_packets = 0
while time.monotonic() < end:
    try:
        data, _ = sip.recvfrom(65535)
    except socket.timeout:
        data = b""
    if data:
        status = int(data.split(b" ", 2)[1])
        if status >= 200 and final is None:
            final = {"status": status, "text": data.decode(errors="replace")}
            if status < 300 and args.get("ack"):
                sip.sendto(args["ack"].encode(), tuple(args["to"]))
    try:
        while media.recv(2048):
            media_packets += 1
    except BlockingIOError:
        pass
print(json.dumps({"final": final, "media_packets": media_packets}))
"""


@pytest.fixture
def attacked(topology: Topology) -> Iterator[tuple[RoamingTopology, TestHost]]:
    roaming = build_roaming(topology)
    mallory = topology.add_host("mallory")
    topology.connect(mallory, "m0", roaming.rtr, "rm")
    roaming.rtr.add_address("rm", "10.5.0.1/24")
    mallory.add_address("m0", f"{MALLORY}/24")
    mallory.add_default_route("10.5.0.1")
    roaming.bob.link_down("b1")
    yield roaming, mallory


def in_dialog_request(bob: dict[str, Any], body: str, *, method: str = "INVITE",
                      cseq: int | None = None, contact: str | None = None) -> str:
    """An in-dialog request as Bob would send it (RFC 3261 §12.2.1.1), from Mallory."""
    seq = cseq if cseq is not None else bob["local_seq"] + 50
    lines = [
        f"{method} {bob['remote_target']} SIP/2.0",
        f"Via: SIP/2.0/UDP {MALLORY}:5070;branch=z9hG4bK{int(time.time() * 1e6)}{method}",
        "Max-Forwards: 70",
        f"From: {bob['local_uri']};tag={bob['local_tag']}",
        f"To: {bob['remote_uri']};tag={bob['remote_tag']}",
        f"Call-ID: {bob['call_id']}",
        f"CSeq: {seq} {method}",
        f"Contact: <{contact or f'sip:bob@{MALLORY}:5070'}>",
    ]
    if body:
        lines += ["Content-Type: application/sdp", f"Content-Length: {len(body.encode())}"]
    else:
        lines.append("Content-Length: 0")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def mallory_sends(mallory: TestHost, request: str, *, ack: str | None = None,
                  listen: float = 2.0) -> dict[str, Any]:
    args = {"ip": MALLORY, "media_port": MALLORY_MEDIA_PORT, "request": request,
            "to": ["10.1.0.2", ALICE_SIP_PORT], "listen": listen, "ack": ack}
    result = mallory.run([sys.executable, "-c", SEND_REQUEST, json.dumps(args)], timeout=30)
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def untouched(before: dict[str, Any], after: dict[str, Any]) -> None:
    for key in ("remote_target", "remote_rtp", "local_rtp", "local_sdp"):
        assert after[key] == before[key], key
    assert after["accepted"] == before["accepted"]
    assert after["same_sessions"] and after["auth_failures"] == 0
    assert after["index_reuse"] == 0


def forged_sdp(offer: str) -> str:
    """Bob's genuine move offer with ``c=`` and the media port aimed at Mallory."""
    text = re.sub(r"c=IN IP4 \S+", f"c=IN IP4 {MALLORY}", offer)
    text = re.sub(r"m=audio \d+", f"m=audio {MALLORY_MEDIA_PORT}", text)
    return re.sub(r"a=rtcp:\d+ IN IP4 \S+",
                  f"a=rtcp:{MALLORY_MEDIA_PORT + 1} IN IP4 {MALLORY}", text)


def bump_version(sdp: str, by: int) -> str:
    return re.sub(r"(o=bob 1000 )(\d+)", lambda m: f"{m[1]}{int(m[2]) + by}", sdp)


def talking(alice: PartyProcess, bob: PartyProcess) -> tuple[dict[str, Any], dict[str, Any]]:
    wait_until(bob, lambda s: s["received"] > 20)
    return alice.stats(), bob.stats()


def test_reinvite_with_new_contact_but_no_mikey_is_refused(
        attacked: tuple[RoamingTopology, TestHost]) -> None:
    roaming, mallory = attacked
    alice, bob = start_call(roaming)
    try:
        before, b = talking(alice, bob)
        sdp = re.sub(r"a=key-mgmt:.*\r\n", "", forged_sdp(bump_version(b["local_sdp"], 1)))
        report = mallory_sends(mallory, in_dialog_request(b, sdp))
        assert report["final"]["status"] == 488
        assert "Warning: 399" in report["final"]["text"]
        assert report["media_packets"] == 0
        untouched(before, alice.stats())
    finally:
        alice.quit()
        bob.quit()


def test_update_with_a_wrong_mac_is_refused_with_the_mikey_error(
        attacked: tuple[RoamingTopology, TestHost]) -> None:
    roaming, mallory = attacked
    alice, bob = start_call(roaming)
    try:
        before, b = talking(alice, bob)
        bob.send(cmd="capture_move", ip="10.2.0.2")  # same address: only the offer
        genuine = bob.wait_for("captured")["body"]
        (value,) = re.findall(r"a=key-mgmt:mikey (\S+)", genuine)
        update = bytearray(base64.b64decode(value))
        update[-1] ^= 0x01  # the KEMAC's MAC (RFC 3830 §6.2)
        sdp = forged_sdp(genuine).replace(value, base64.b64encode(bytes(update)).decode())
        report = mallory_sends(mallory, in_dialog_request(b, sdp))
        assert report["final"]["status"] == 488
        body = report["final"]["text"].split("\r\n\r\n", 1)[1]
        (error_value,) = re.findall(r"a=key-mgmt:(mikey \S+)", body)
        error = MikeyMessage.parse(decode_key_mgmt(error_value))
        assert error.find(ErrorPayload).error_no == ErrorType.AUTH_FAILURE  # type: ignore[union-attr]
        untouched(before, alice.stats())
    finally:
        alice.quit()
        bob.quit()


def test_captured_genuine_update_replayed_later_is_refused(
        attacked: tuple[RoamingTopology, TestHost]) -> None:
    roaming, mallory = attacked
    alice, bob = start_call(roaming)
    try:
        talking(alice, bob)
        roaming.bob.add_address("b0", "10.3.0.7/24")
        bob.send(cmd="move", ip="10.3.0.7")  # a genuine move, verified and accepted
        assert bob.wait_for("ReinviteAccepted")["status"] == 200
        before = wait_until(alice, lambda s: s["remote_rtp"][0] == "10.3.0.7")
        b = bob.stats()
        time.sleep(1.0)
        # Mallory replays it: o= version bumped (SDP is not covered by the MAC)
        sdp = forged_sdp(bump_version(b["local_sdp"], 1))
        report = mallory_sends(mallory, in_dialog_request(b, sdp))
        assert report["final"]["status"] == 488
        assert "a=key-mgmt" not in report["final"]["text"]  # replays get no MIKEY answer
        assert report["media_packets"] == 0
        after = alice.stats()
        untouched(before, after)
        assert any("replay" in r[1].lower() for r in after["refused"]), after["refused"]
    finally:
        alice.quit()
        bob.quit()


def test_rewritten_connection_address_never_receives_the_stream(
        attacked: tuple[RoamingTopology, TestHost]) -> None:
    """Bob moves; Mallory, on path, rewrites the genuine offer's c= (and Contact) to
    her own address before it reaches Alice. The update verifies (the MAC does not
    cover SDP), Alice accepts, but her stream follows Bob's authenticated packets."""
    roaming, mallory = attacked
    alice, bob = start_call(roaming)
    try:
        _, b = talking(alice, bob)
        roaming.bob.add_address("b0", "10.3.0.7/24")
        since = time.monotonic()
        bob.send(cmd="capture_move", ip="10.3.0.7")
        genuine = bob.wait_for("captured")["body"]
        request = in_dialog_request(b, forged_sdp(genuine))
        ack = in_dialog_request(b, "", method="ACK", cseq=b["local_seq"] + 50)
        report = mallory_sends(mallory, request, ack=ack, listen=3.0)
        assert report["final"]["status"] == 200  # genuine update: accepted
        assert report["media_packets"] == 0  # ... but not one packet went to Mallory
        a = wait_until(alice, lambda s: s["remote_rtp"][0] == "10.3.0.7"
                       and received_from(s, "10.3.0.7", since) >= 10)
        assert a["accepted"] == 1 and a["auth_failures"] == 0 and a["same_sessions"]
    finally:
        alice.quit()
        bob.quit()

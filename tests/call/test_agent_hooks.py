"""The CallAgent's hooks for roaming and transfer, over loopback (no root needed):
per-call CryptoContext / MediaEndpoint / dialog, re-INVITE policy (default and custom),
outgoing re-INVITE, REFER policy, events; plus TCP signalling."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mobilityd.call.agent import (
    AgentConfig,
    CallAgent,
    ReferDecision,
    ReinviteDecision,
)
from mobilityd.call.audio import AudioOptions
from mobilityd.call.errors import CallUsageError
from mobilityd.call.events import (
    CallConnected,
    CallEvent,
    CallRefused,
    CallTerminated,
    IncomingCallOffered,
    ReferHandled,
    ReinviteHandled,
)
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.secure_call import SecureCall
from mobilityd.media.tone import ToneGenerator
from mobilityd.media.wav import WavRecorder
from mobilityd.mikey.context import CryptoContext
from mobilityd.sip import events as ev
from mobilityd.sip.endpoint import TransportOptions
from mobilityd.sip.message import Request
from mobilityd.sip.sdp import Attribute, SessionDescription
from mobilityd.sip.transport import TransportKind, client_context, server_context
from mobilityd.sip.uri import SipUri
from tests.call.credentials import PSK
from tests.sip.peers import make_certificates

A, B = "sip:alice@a.test", "sip:bob@b.test"


def keying(peer: str) -> KeyingConfig:
    return KeyingConfig(peers={sip_identity(peer): PeerKeying(KeyMethod.PSK, PSK)})


async def next_of(agent: CallAgent, kind: type[CallEvent], timeout: float = 10.0) -> CallEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = await agent.events.get()
            if isinstance(event, kind):
                return event


async def connected_pair(
    transport: TransportKind = TransportKind.UDP, *, rtcp_mux: bool = True,
    **bob_kwargs: object,
) -> tuple[CallAgent, CallAgent, str]:
    bob = CallAgent(AgentConfig(B, "127.0.0.1", 0, transport=transport, keying=keying(A),
                                auto_answer=True, audio=AudioOptions(tone_hz=1000)),
                    **bob_kwargs)  # type: ignore[arg-type]
    await bob.start()
    alice = CallAgent(AgentConfig(A, "127.0.0.1", 0, transport=transport, keying=keying(B),
                                  contacts={sip_identity(B): bob.sip.local_address},
                                  audio=AudioOptions(tone_hz=440), rtcp_mux=rtcp_mux))
    await alice.start()
    call_id = await alice.place(B)
    await next_of(alice, CallConnected)
    await next_of(bob, CallConnected)
    return alice, bob, call_id


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_per_call_handles_for_roaming_and_transfer() -> None:
    alice, bob, call_id = await connected_pair()
    try:
        a_call, b_call = alice.call(call_id), bob.call(call_id)
        assert isinstance(a_call.context, CryptoContext) and isinstance(b_call.context,
                                                                        CryptoContext)
        assert a_call.context.srtp_master(1) == b_call.context.srtp_master(1)
        assert alice.dialog(call_id) is not None and bob.dialog(call_id) is not None
        media = a_call.media
        assert media is not None and media.tx is not None and media.rx is not None
        sessions = (media.tx, media.rx)
        await wait_for(lambda: b_call.monitor.frames > 10 and a_call.monitor.frames > 10)
        assert a_call.monitor.dominant([440, 1000]) == 1000
        assert b_call.monitor.dominant([440, 1000]) == 440
        assert (media.tx, media.rx) == sessions  # same SRTP objects for the call's life
        assert alice.status()["calls"] == 1 and alice.list_calls()[0]["secure"] is True
    finally:
        await alice.close()
        await bob.close()


async def test_default_policy_accepts_a_refresh_and_refuses_rekeying() -> None:
    """Same media address, no key-mgmt: 200; key-mgmt or a new address: 488."""
    alice, bob, call_id = await connected_pair()
    try:
        same = alice.call(call_id).local_sdp
        refreshed = SessionDescription.parse(same).next_version()
        refreshed.attributes = [a for a in refreshed.attributes if a.name != "key-mgmt"]
        outcome = await alice.reinvite(call_id, bytes(refreshed))
        assert isinstance(outcome, ev.ReinviteAccepted)
        assert (await next_of(bob, ReinviteHandled)) == ReinviteHandled(call_id, True, 200)

        rekey = SessionDescription.parse(bytes(refreshed)).next_version()
        rekey.attributes.append(Attribute("key-mgmt", "mikey AAAA"))
        outcome = await alice.reinvite(call_id, bytes(rekey))
        assert isinstance(outcome, ev.ReinviteFailed) and outcome.status == 488
        assert (await next_of(bob, ReinviteHandled)).accepted is False  # type: ignore[attr-defined]
        assert bob.call(call_id).state.value == "connected"
    finally:
        await alice.close()
        await bob.close()


class RecordingReinvitePolicy:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def decide(self, agent: CallAgent, call: SecureCall, request: Request
                     ) -> ReinviteDecision:
        self.seen.append((call.call_id, request.body))
        await asyncio.sleep(0.01)  # policies may do I/O (e.g. verify a MIKEY update)
        return ReinviteDecision(True, body=call.local_sdp)


class AcceptRefers:
    def __init__(self) -> None:
        self.targets: list[SipUri] = []

    async def decide(self, agent: CallAgent, call: SecureCall, refer: ev.ReferReceived
                     ) -> ReferDecision:
        self.targets.append(refer.refer_to.uri)
        return ReferDecision(True)


async def test_custom_policies_are_consulted() -> None:
    reinvites, refers = RecordingReinvitePolicy(), AcceptRefers()
    alice, bob, call_id = await connected_pair(reinvite_policy=reinvites, refer_policy=refers)
    try:
        moved = SessionDescription.parse(alice.call(call_id).local_sdp).next_version()
        outcome = await alice.reinvite(call_id, bytes(moved))
        assert isinstance(outcome, ev.ReinviteAccepted)
        assert reinvites.seen == [(call_id, bytes(moved))]
        alice.sip.act(lambda ua, now: ua.refer(call_id, SipUri.parse("sip:bob@pda.b.test"), now))
        handled = await next_of(bob, ReferHandled)
        assert handled == ReferHandled(call_id, True, 202)
        assert [str(t) for t in refers.targets] == ["sip:bob@pda.b.test"]
    finally:
        await alice.close()
        await bob.close()


async def test_refer_is_refused_by_default() -> None:
    alice, bob, call_id = await connected_pair()
    try:
        alice.sip.act(lambda ua, now: ua.refer(call_id, SipUri.parse("sip:carol@c.test"), now))
        assert await next_of(bob, ReferHandled) == ReferHandled(call_id, False, 603)
    finally:
        await alice.close()
        await bob.close()


@pytest.mark.parametrize("transport", [TransportKind.UDP, TransportKind.TCP])
async def test_hangup_ends_both_sides(transport: TransportKind) -> None:
    alice, bob, call_id = await connected_pair(transport)
    try:
        await alice.hangup(call_id)
        ended = await next_of(bob, CallTerminated)
        assert ended == CallTerminated(call_id, True, ended.reason)  # type: ignore[attr-defined]
        assert alice.call(call_id).media is not None
        assert alice.call(call_id).counters()["endpoint"]["auth_failures"] == 0
    finally:
        await alice.close()
        await bob.close()


@pytest.mark.parametrize("rtcp_mux", [True, False])
async def test_srtcp_reports_both_ways_give_a_round_trip_time(rtcp_mux: bool) -> None:
    """RFC 3550 §6.4.1: Alice's SR, then Bob's report block with LSR/DLSR -> RTT; over
    the RTP port (RFC 5761, both offered rtcp-mux) or RTP port + 1 (RFC 3605)."""
    alice, bob, call_id = await connected_pair(rtcp_mux=rtcp_mux)
    try:
        a_call, b_call = alice.call(call_id), bob.call(call_id)
        assert a_call.media is not None and b_call.media is not None
        assert a_call.media.rtcp_mux is b_call.media.rtcp_mux is rtcp_mux
        if not rtcp_mux:
            assert b_call.media.remote_rtcp == (
                "127.0.0.1", a_call.media.local_rtp[1] + 1)
        assert a_call.rtcp is not None and b_call.rtcp is not None
        assert a_call.media is not None and b_call.media is not None
        b_media = b_call.media
        await wait_for(lambda: a_call.monitor.frames > 3 and b_call.monitor.frames > 3)
        loop = asyncio.get_running_loop()
        assert a_call.rtcp.send_report(a_call.media, loop.time(), time.time())
        await wait_for(lambda: b_media.counters.rtcp_received >= 1)
        assert b_call.rtcp.send_report(b_media, loop.time(), time.time())
        await wait_for(lambda: a_call.rtcp is not None
                       and a_call.rtcp.reporter.round_trip is not None)
        assert 0 <= (a_call.rtcp.reporter.round_trip or 0) < 1.0
        assert a_call.counters()["endpoint"]["auth_failures"] == 0
        assert b_call.counters()["endpoint"]["auth_failures"] == 0
    finally:
        await alice.close()
        await bob.close()


async def test_wav_player_source_reaches_the_peer(tmp_path: Path) -> None:
    """A WAV file (697 Hz) played into the call is what the peer hears."""
    wav = tmp_path / "tone697.wav"
    with WavRecorder(wav) as recorder:
        generator = ToneGenerator(697, 0.5)
        for _ in range(50):
            recorder.write_frame(generator.frame())
    alice, bob, call_id = await _pair_playing(wav)
    try:
        b_call = bob.call(call_id)
        await wait_for(lambda: b_call.monitor.frames > 25)
        assert b_call.monitor.dominant([440, 697, 1000]) == 697
    finally:
        await alice.close()
        await bob.close()


async def _pair_playing(wav: Path) -> tuple[CallAgent, CallAgent, str]:
    bob = CallAgent(AgentConfig(B, "127.0.0.1", 0, keying=keying(A), auto_answer=True))
    await bob.start()
    alice = CallAgent(AgentConfig(A, "127.0.0.1", 0, keying=keying(B),
                                  contacts={sip_identity(B): bob.sip.local_address}))
    await alice.start()
    call_id = await alice.place(B, audio=AudioOptions(play_wav=wav))
    await next_of(alice, CallConnected)
    return alice, bob, call_id


async def test_secure_call_over_tls_signalling(tmp_path: Path) -> None:
    """RFC 3261 §26.2.1: MIKEY inside SIP over TLS (both sides verify against one CA)."""
    certs = make_certificates(tmp_path / "tls")
    options = TransportOptions(
        tls_server=server_context(certs.server_cert, certs.server_key),
        tls_client=client_context(certs.ca_cert))
    bob = CallAgent(AgentConfig(B, "127.0.0.1", 0, transport=TransportKind.TLS,
                                keying=keying(A), auto_answer=True,
                                transport_options=options))
    await bob.start()
    alice = CallAgent(AgentConfig(A, "127.0.0.1", 0, transport=TransportKind.TLS,
                                  keying=keying(B), transport_options=options,
                                  contacts={sip_identity(B): bob.sip.local_address}))
    await alice.start()
    try:
        call_id = await alice.place(B)
        connected = await next_of(alice, CallConnected)
        assert connected == CallConnected(call_id, True, "psk", "AES_CM_128_HMAC_SHA1_80")
        await alice.hangup(call_id)
        await next_of(bob, CallTerminated)
    finally:
        await alice.close()
        await bob.close()


async def test_caller_cancels_while_ringing_and_late_answer_is_refused() -> None:
    """RFC 3261 §9: CANCEL of a ringing call; answering it afterwards is a local error
    and leaves no media running."""
    bob = CallAgent(AgentConfig(B, "127.0.0.1", 0, keying=keying(A)))
    await bob.start()
    alice = CallAgent(AgentConfig(A, "127.0.0.1", 0, keying=keying(B),
                                  contacts={sip_identity(B): bob.sip.local_address}))
    await alice.start()
    try:
        call_id = await alice.place(B)
        offered = await next_of(bob, IncomingCallOffered)
        assert offered == IncomingCallOffered(call_id, A, True, "psk")
        await asyncio.sleep(0.05)  # the 180 reaches Alice, so CANCEL can go out
        await alice.hangup(call_id)
        cancelled = await next_of(bob, CallRefused)
        assert cancelled == CallRefused(call_id, 487, "cancelled by the caller", None, True)
        with pytest.raises(CallUsageError):
            await bob.answer(call_id)
        assert bob.call(call_id).media is None
        assert (await next_of(alice, CallRefused)).call_id == call_id
    finally:
        await alice.close()
        await bob.close()


def test_media_address_follows_the_route_when_sip_listens_on_a_wildcard() -> None:
    """RTM_GETROUTE (mobilityd.net.route) picks the source toward the peer."""
    wildcard = CallAgent(AgentConfig(A, "0.0.0.0", 0, keying=keying(B)))
    assert wildcard.media_ip_toward("127.0.0.1") == "127.0.0.1"
    fixed = CallAgent(AgentConfig(A, "0.0.0.0", 0, keying=keying(B), media_ip="127.0.0.5"))
    assert fixed.media_ip_toward("127.0.0.1") == "127.0.0.5"
    with pytest.raises(CallUsageError):
        wildcard.media_ip_toward("not-an-address")


async def test_back_to_back_calls_leave_no_sockets_or_tasks() -> None:
    bob = CallAgent(AgentConfig(B, "127.0.0.1", 0, keying=keying(A), auto_answer=True))
    await bob.start()
    alice = CallAgent(AgentConfig(A, "127.0.0.1", 0, keying=keying(B),
                                  contacts={sip_identity(B): bob.sip.local_address}))
    await alice.start()

    async def one_call() -> None:
        call_id = await alice.place(B)
        await next_of(alice, CallConnected)
        await alice.hangup(call_id)
        await next_of(bob, CallTerminated)

    try:
        await one_call()
        # garbage of earlier tests in this process (e.g. a timerfd released when
        # collected) must not be finalised in the middle and change the count; the
        # calls' own sockets must go without the collector's help (no collect after)
        gc.collect()
        fds, tasks = len(os.listdir("/proc/self/fd")), len(asyncio.all_tasks())
        for _ in range(10):
            await one_call()
        await asyncio.sleep(0.1)
        assert len(os.listdir("/proc/self/fd")) == fds  # released at once, not by the GC
        assert len(asyncio.all_tasks()) == tasks
        assert all(c.media is None or c.state.value == "ended" for c in alice.calls.values())
    finally:
        await alice.close()
        await bob.close()

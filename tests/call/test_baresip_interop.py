"""Interop with a plain SIP user agent (baresip 1.0, no SRTP module): the security
policies' fallback behaviour (thesis §11.3) against someone else's SIP/SDP stack.

* ``preferred`` calling baresip: the RTP/AVP alternative of our offer is chosen
  (RFC 3264 §6), the call connects without SRTP and baresip's tone reaches us;
* ``required`` calling baresip: our offer has only RTP/SAVP with MIKEY (RFC 4567 §4.1.2);
  baresip refuses it with 488 (RFC 3261 §21.4.26) and the call ends there, no media;
* baresip calling us with plain RTP: ``required`` answers 606 (RFC 3261 §21.6.4, our
  documented choice in :mod:`mobilityd.call.negotiation`), ``preferred`` connects plain.

baresip runs on loopback with free ports (tests/call/baresip_ua.py), killed by pid.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from mobilityd.call import events as ce
from mobilityd.call.agent import AgentConfig, CallAgent
from mobilityd.call.audio import AudioOptions
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.negotiation import CallSecurity
from mobilityd.call.secure_call import CallState
from mobilityd.sip.errors import StatusCode
from tests.call.baresip_ua import LOOPBACK, BaresipUA, free_port

pytestmark = pytest.mark.interop

BARESIP_TONE, OUR_TONE = 1000.0, 440.0
CALL_EVENTS = {"CALL_INCOMING", "CALL_RINGING", "CALL_ESTABLISHED", "CALL_CLOSED"}


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[BaresipUA]:
    ua = BaresipUA(tmp_path / "baresip", tone_hz=BARESIP_TONE)
    ua.start()
    try:
        yield ua
    finally:
        ua.stop()


@asynccontextmanager
async def our_agent(peer: BaresipUA, security: CallSecurity, *, auto_answer: bool = False
                    ) -> AsyncIterator[CallAgent]:
    """Alice: our CallAgent with ``security``; a PSK for the peer, so that the secure
    offer can be made (baresip cannot use it)."""
    keying = KeyingConfig(peers={sip_identity(peer.uri): PeerKeying(KeyMethod.PSK,
                                                                    bytes(range(32)))})
    agent = CallAgent(AgentConfig(
        "sip:alice@127.0.0.1", LOOPBACK, free_port(), security=security, keying=keying,
        audio=AudioOptions(tone_hz=OUR_TONE), auto_answer=auto_answer,
        contacts={sip_identity(peer.uri): (LOOPBACK, peer.sip_port)}))
    await agent.start()
    try:
        yield agent
    finally:
        await agent.close()


async def next_call_event(agent: CallAgent, *kinds: type[ce.CallEvent],
                          timeout: float = 10.0) -> ce.CallEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = await agent.events.get()
            if isinstance(event, kinds):
                return event


async def baresip_event(ua: BaresipUA, types: set[str] = CALL_EVENTS,
                        timeout: float = 10.0) -> dict[str, object]:
    return await asyncio.to_thread(ua.next_event, types, timeout)


async def wait_for_audio(agent: CallAgent, call_id: str, frames: int = 40) -> None:
    """Until ``frames`` 20 ms frames were received (bounded: 10 s)."""
    monitor = agent.call(call_id).monitor
    async with asyncio.timeout(10):
        while monitor.frames < frames:
            await asyncio.sleep(0.05)


async def test_preferred_call_to_baresip_falls_back_to_rtp(baresip: BaresipUA) -> None:
    async with our_agent(baresip, CallSecurity.PREFERRED) as alice:
        call_id = await alice.place(baresip.uri)
        connected = await next_call_event(alice, ce.CallConnected, ce.CallRefused)
        assert connected == ce.CallConnected(call_id, False, None, None)
        assert (await baresip_event(baresip, {"CALL_ESTABLISHED"}))["id"] == call_id
        call = alice.call(call_id)
        assert call.negotiated is not None and not call.negotiated.secure
        assert call.context is None and call.media is not None
        assert call.media.tx is None and call.media.rx is None  # plain RTP both ways
        assert b"RTP/AVP" in call.remote_sdp and b"key-mgmt" not in call.remote_sdp

        await wait_for_audio(alice, call_id)
        assert call.monitor.dominant([BARESIP_TONE, OUR_TONE]) == BARESIP_TONE
        assert "incoming rtp for 'audio' established" in baresip.output()  # ours reached it

        await alice.hangup(call_id)
        closed = await baresip_event(baresip, {"CALL_CLOSED"})
        assert closed["id"] == call_id


async def test_required_call_to_baresip_is_refused_with_488(baresip: BaresipUA) -> None:
    async with our_agent(baresip, CallSecurity.REQUIRED) as alice:
        call_id = await alice.place(baresip.uri)
        refused = await next_call_event(alice, ce.CallConnected, ce.CallRefused)
        assert isinstance(refused, ce.CallRefused)
        assert refused.status == StatusCode.NOT_ACCEPTABLE_HERE and refused.by_peer
        call = alice.call(call_id)
        assert call.state is CallState.FAILED
        assert call.media is None and call.context is None  # never a half-secure call
        closed = await baresip_event(baresip)
        assert closed["type"] == "CALL_CLOSED"  # baresip never established it
        assert alice.events.empty()


async def test_baresip_calling_required_gets_606(baresip: BaresipUA) -> None:
    async with our_agent(baresip, CallSecurity.REQUIRED, auto_answer=True) as alice:
        our_uri = f"sip:alice@{LOOPBACK}:{alice.config.port}"
        assert baresip.command("dial", our_uri)["ok"] is True
        refused = await next_call_event(alice, ce.CallRefused, ce.CallConnected,
                                        ce.IncomingCallOffered)
        assert isinstance(refused, ce.CallRefused)
        assert refused.status == StatusCode.NOT_ACCEPTABLE_ANYWHERE and not refused.by_peer
        closed = await baresip_event(baresip, {"CALL_ESTABLISHED", "CALL_CLOSED"})
        assert closed["type"] == "CALL_CLOSED"
        assert "606" in str(closed["param"])
        assert refused.call_id not in {c["id"] for c in alice.list_calls()
                                       if c["state"] == "connected"}


async def test_baresip_calling_preferred_connects_plain(baresip: BaresipUA) -> None:
    async with our_agent(baresip, CallSecurity.PREFERRED, auto_answer=True) as alice:
        assert baresip.command("dial", f"sip:alice@{LOOPBACK}:{alice.config.port}")["ok"]
        offered = await next_call_event(alice, ce.IncomingCallOffered, ce.CallRefused)
        assert isinstance(offered, ce.IncomingCallOffered) and not offered.secure
        connected = await next_call_event(alice, ce.CallConnected, ce.CallRefused)
        assert connected == ce.CallConnected(offered.call_id, False, None, None)
        await baresip_event(baresip, {"CALL_ESTABLISHED"})
        await wait_for_audio(alice, offered.call_id)
        assert alice.call(offered.call_id).monitor.dominant(
            [BARESIP_TONE, OUR_TONE]) == BARESIP_TONE

        assert baresip.command("hangup")["ok"] is True
        ended = await next_call_event(alice, ce.CallTerminated)
        assert ended.call_id == offered.call_id and isinstance(ended, ce.CallTerminated)
        assert ended.by_peer

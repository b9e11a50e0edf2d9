"""``[media]`` in real calls between two agents over loopback (no root needed): ports
from the configured range (RFC 3550 §11), a full range refusing the call (503 with a
Warning naming it, RFC 3261 §21.5.4 / §20.43; a typed error for place()), codec
preference (RFC 3264 §6.1), packet time (RFC 8866 §6.4), reload for the next call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mobilityd.call.agent import AgentConfig, CallAgent
from mobilityd.call.audio import AudioOptions
from mobilityd.call.events import CallConnected, CallRefused, IncomingCallOffered
from mobilityd.call.identity import sip_identity
from mobilityd.call.media_options import MediaOptions
from mobilityd.call.negotiation import CallSecurity
from mobilityd.call.ports import MediaPortsExhausted
from mobilityd.call.secure_call import CallState
from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.rtp import RtpPacket
from mobilityd.sip import events as ev
from mobilityd.sip.sdp import SessionDescription
from tests.call.test_agent_hooks import keying, next_of, wait_for
from tests.call.test_media_ports import LOOPBACK, free_range, held

A, B = "sip:alice@a.test", "sip:bob@b.test"
PCMU, PCMA = 0, 8


@contextlib.asynccontextmanager
async def agents(a_media: MediaOptions, b_media: MediaOptions, *,
                 a_security: CallSecurity = CallSecurity.REQUIRED
                 ) -> AsyncIterator[tuple[CallAgent, CallAgent]]:
    bob = CallAgent(AgentConfig(B, LOOPBACK, 0, keying=keying(A), auto_answer=True,
                                audio=AudioOptions(tone_hz=1000), media=b_media))
    await bob.start()
    alice = CallAgent(AgentConfig(A, LOOPBACK, 0, keying=keying(B), security=a_security,
                                  contacts={sip_identity(B): bob.sip.local_address},
                                  audio=AudioOptions(tone_hz=440), media=a_media))
    try:
        await alice.start()
        yield alice, bob
    finally:
        await alice.close()
        await bob.close()


async def test_call_uses_the_range_codec_and_ptime() -> None:
    a_range, b_range = free_range(2, 42000), free_range(2, 43000)
    a_media = MediaOptions(a_range, (PCMA, PCMU), 40)
    b_media = MediaOptions(b_range, (PCMU, PCMA), 30)
    async with agents(a_media, b_media) as (alice, bob):
        call_id = await alice.place(B)
        await next_of(alice, CallConnected)
        await next_of(bob, CallConnected)
        a_call, b_call = alice.call(call_id), bob.call(call_id)
        assert a_call.media is not None and b_call.media is not None
        assert a_call.media.local_rtp[1] == a_range.low  # the pair reserved for the offer
        assert b_call.media.local_rtp[1] == b_range.low
        assert a_range.contains(a_call.media.local_rtp[1])
        # RFC 3264 §6.1: Bob answers with HIS first preference the offer contains
        assert a_call.negotiated is not None and a_call.negotiated.payload_type == PCMU
        offer = SessionDescription.parse(a_call.local_sdp).media[0]
        answer = SessionDescription.parse(b_call.local_sdp).media[0]
        assert offer.fmts == ["8", "0"] and offer.get("ptime") == "40"
        assert answer.fmts == ["0"] and answer.get("ptime") == "30"
        # each sends at the other's a=ptime (RFC 8866 §6.4): 8 samples per ms
        assert a_call.negotiated.ptime_ms == 30 and b_call.negotiated is not None
        assert b_call.negotiated.ptime_ms == 40
        sizes: dict[str, set[int]] = {"alice": set(), "bob": set()}
        for name, call in (("alice", a_call), ("bob", b_call)):
            endpoint = call.media
            assert endpoint is not None
            inner = endpoint.on_rtp

            def spy(plain: bytes, source: Any, name: str = name, inner: Any = inner) -> None:
                sizes[name].add(len(RtpPacket.parse(plain).payload))
                inner(plain, source)

            endpoint.on_rtp = spy
        await wait_for(lambda: a_call.monitor.frames > 10 and b_call.monitor.frames > 10)
        assert sizes["bob"] == {240} and sizes["alice"] == {320}  # 30 ms and 40 ms
        assert a_call.monitor.dominant([440, 1000]) == 1000
        assert b_call.monitor.dominant([440, 1000]) == 440
        await alice.hangup(call_id)
        await wait_for(lambda: b_call.state is CallState.ENDED)
        # the ended calls' pairs are free again: the next reservation takes them
        for port_range in (a_range, b_range):
            again = port_range.reserve(LOOPBACK)
            assert again.port.rtp_port == port_range.low
            again.release()


async def test_place_with_a_full_range_is_refused_before_anything_is_sent() -> None:
    """``preferred`` offers SRTP and RTP alternatives: two pairs (RFC 3264 §5.1)."""
    one_pair = free_range(1, 44000)
    async with agents(MediaOptions(one_pair), MediaOptions(),
                      a_security=CallSecurity.PREFERRED) as (alice, bob):
        with pytest.raises(MediaPortsExhausted, match=str(one_pair)):
            await alice.place(B)
        assert alice.calls == {} and alice.events.empty()
        await asyncio.sleep(0.2)
        assert bob.events.empty() and bob.calls == {}
        # nothing leaked: the one pair is still free for a required-only call
        reservation = one_pair.reserve(LOOPBACK)
        reservation.release()


async def test_incoming_invite_with_a_full_range_gets_503_naming_it() -> None:
    one_pair = free_range(1, 45000)
    async with agents(MediaOptions(), MediaOptions(one_pair)) as (alice, bob):
        failures: list[ev.CallFailed] = []
        pump = alice._on_sip_event

        async def record(event: object) -> None:
            if isinstance(event, ev.CallFailed):
                failures.append(event)
            await pump(event)

        alice._on_sip_event = record  # type: ignore[method-assign]
        with held(one_pair.low):
            call_id = await alice.place(B)
            refused = await next_of(alice, CallRefused)
        assert isinstance(refused, CallRefused) and refused.status == 503
        assert str(one_pair) in refused.reason
        response = failures[0].response
        assert response is not None
        warning = response.headers.get("Warning")
        assert warning is not None and warning.startswith("399 ")
        assert str(one_pair) in warning
        on_bob = await next_of(bob, CallRefused)
        assert isinstance(on_bob, CallRefused) and on_bob.status == 503
        assert call_id not in bob.calls  # no half call left behind
        assert alice.call(call_id).state is CallState.FAILED
        # the range has its pair again: the next call gets it
        second = await alice.place(B)
        await next_of(bob, IncomingCallOffered)
        await next_of(alice, CallConnected)
        media = bob.call(second).media
        assert media is not None and media.local_rtp[1] == one_pair.low


async def test_reload_applies_media_settings_to_the_next_call() -> None:
    first, second = free_range(1, 46000), free_range(1, 47000)
    async with agents(MediaOptions(), MediaOptions(first)) as (alice, bob):
        call_id = await alice.place(B)
        await next_of(bob, CallConnected)
        bob.reconfigure(bob.config.security, keying(A), {},
                        MediaOptions(second, (PCMA,), 60))
        running = bob.call(call_id).media
        assert running is not None and running.local_rtp[1] == first.low  # kept
        next_call = await alice.place(B)
        await next_of(alice, CallConnected)
        await next_of(alice, CallConnected)
        call = bob.call(next_call)
        assert call.media is not None and call.media.local_rtp[1] == second.low
        assert call.negotiated is not None and call.negotiated.payload_type == PCMA
        answer = SessionDescription.parse(call.local_sdp).media[0]
        assert answer.get("ptime") == "60"


async def _call_moved_to_127_0_0_2(alice: CallAgent, low: int) -> tuple[str, MediaEndpoint]:
    """Alice calls B from the range's first pair, then her media moves to 127.0.0.2."""
    call_id = await alice.place(B)
    await next_of(alice, CallConnected)
    media = alice.call(call_id).media
    assert media is not None and media.local_rtp == (LOOPBACK, low)
    await media.rebind("127.0.0.2")
    return call_id, media


async def test_rebind_of_a_moving_call_keeps_its_range_ports() -> None:
    """Roaming (MediaEndpoint.rebind, issue 5): the new address gets the same ports
    when they are free there, so the media stays inside the range."""
    a_range = free_range(2, 49000)
    async with agents(MediaOptions(a_range), MediaOptions()) as (alice, _bob):
        call_id, media = await _call_moved_to_127_0_0_2(alice, a_range.low)
        assert media.local_rtp == ("127.0.0.2", a_range.low)
        assert alice.call(call_id).state is CallState.CONNECTED


async def test_a_rejected_call_frees_the_pair_it_held_since_the_invite() -> None:
    one_pair = free_range(1, 49500)
    bob = CallAgent(AgentConfig(B, LOOPBACK, 0, keying=keying(A),
                                media=MediaOptions(one_pair)))
    await bob.start()
    alice = CallAgent(AgentConfig(A, LOOPBACK, 0, keying=keying(B),
                                  contacts={sip_identity(B): bob.sip.local_address}))
    try:
        await alice.start()
        for _ in range(2):  # the second INVITE finds the pair free again
            call_id = await alice.place(B)
            await next_of(bob, IncomingCallOffered)
            with pytest.raises(MediaPortsExhausted):  # held for the answer while it rings
                one_pair.reserve(LOOPBACK).release()
            await bob.reject(call_id)
            refused = await next_of(alice, CallRefused)
            assert isinstance(refused, CallRefused) and refused.status == 603
            one_pair.reserve(LOOPBACK).release()
    finally:
        await alice.close()
        await bob.close()


async def test_rebind_where_the_ports_are_taken_moves_inside_the_range() -> None:
    """Roaming (MediaEndpoint.rebind): where something holds the call's ports on the
    new address, the lowest free pair of the range, never a port of the kernel's
    choice (RFC 3550 §11 pairs; the firewall opened for the range still fits)."""
    a_range = free_range(3, 48000)
    async with agents(MediaOptions(a_range), MediaOptions()) as (alice, _bob):
        _, media = await _call_moved_to_127_0_0_2(alice, a_range.low)
        with held(a_range.low), held(a_range.low + 1):  # both taken on 127.0.0.1 now
            await media.rebind(LOOPBACK)
        assert media.local_rtp == (LOOPBACK, a_range.low + 2)
        assert a_range.contains(media.local_rtp[1])

"""Moving a :class:`CallAgent` call over loopback (no root): the agent's re-INVITE
policy verifies the RFC 3830 §4.5 update before anything changes, the media follows
the authenticated source, and the SRTP session objects stay the same on both sides."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable

from mobilityd.call.agent import AgentConfig, CallAgent
from mobilityd.call.audio import AudioOptions
from mobilityd.call.events import CallConnected, CallEvent
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import ErrorPayload
from mobilityd.mikey.sdp import decode_key_mgmt
from mobilityd.mobility.agent_roaming import (
    MoveContexts,
    VerifyingReinvitePolicy,
    move_agent_call,
)
from mobilityd.mobility.move import MediaAddress, move_offer
from mobilityd.sip import events as ev
from mobilityd.sip.sdp import SessionDescription
from tests.call.credentials import PSK

A, B = "sip:alice@a.test", "sip:bob@b.test"


def keying(peer: str) -> KeyingConfig:
    return KeyingConfig(peers={sip_identity(peer): PeerKeying(KeyMethod.PSK, PSK)})


async def next_of(agent: CallAgent, kind: type[CallEvent], timeout: float = 10.0) -> CallEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = await agent.events.get()
            if isinstance(event, kind):
                return event


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def moving_pair() -> tuple[CallAgent, CallAgent, str, VerifyingReinvitePolicy]:
    """Alice (who will move) calls Bob, whose agent runs the verifying policy."""
    policy = VerifyingReinvitePolicy()
    bob = CallAgent(AgentConfig(B, "127.0.0.1", 0, keying=keying(A), auto_answer=True,
                                audio=AudioOptions(tone_hz=1000)), reinvite_policy=policy)
    await bob.start()
    alice = CallAgent(AgentConfig(A, "127.0.0.1", 0, keying=keying(B),
                                  contacts={sip_identity(B): bob.sip.local_address},
                                  audio=AudioOptions(tone_hz=440)))
    await alice.start()
    call_id = await alice.place(B)
    await next_of(alice, CallConnected)
    await next_of(bob, CallConnected)
    return alice, bob, call_id, policy


async def test_agent_call_moves_with_a_verified_update() -> None:
    alice, bob, call_id, policy = await moving_pair()
    try:
        a_call, b_call = alice.call(call_id), bob.call(call_id)
        assert a_call.media is not None and b_call.media is not None
        sessions = (a_call.media.tx, a_call.media.rx, b_call.media.tx, b_call.media.rx)
        await wait_for(lambda: b_call.monitor.frames > 10)
        outcome = await move_agent_call(alice, call_id, "127.0.0.2", MoveContexts())
        assert isinstance(outcome, ev.ReinviteAccepted)
        assert policy.accepted == 1 and policy.refused == []
        await wait_for(lambda: b_call.media is not None
                       and b_call.media.remote_rtp is not None
                       and b_call.media.remote_rtp[0] == "127.0.0.2")
        frames = b_call.monitor.frames
        await wait_for(lambda: b_call.monitor.frames > frames + 10
                       and a_call.monitor.frames > 20)
        dialog = bob.dialog(call_id)
        assert dialog is not None and dialog.remote_target.host == "127.0.0.2"
        assert (a_call.media.tx, a_call.media.rx, b_call.media.tx,
                b_call.media.rx) == sessions
        assert a_call.media.counters.auth_failures == b_call.media.counters.auth_failures == 0
    finally:
        await alice.close()
        await bob.close()


async def test_agent_refuses_a_move_without_mikey_and_changes_nothing() -> None:
    alice, bob, call_id, policy = await moving_pair()
    try:
        b_call = bob.call(call_id)
        assert b_call.media is not None
        before = (b_call.media.remote_rtp, bob.dialog(call_id))
        target = before[1].remote_target if before[1] else None
        moved = SessionDescription.parse(alice.call(call_id).local_sdp).next_version()
        moved.attributes = [a for a in moved.attributes if a.name != "key-mgmt"]
        moved.media[0].port = 40404
        outcome = await alice.reinvite(call_id, bytes(moved))
        assert isinstance(outcome, ev.ReinviteFailed) and outcome.status == 488
        assert b_call.media.remote_rtp == before[0]
        dialog = bob.dialog(call_id)
        assert dialog is not None and dialog.remote_target == target
        assert policy.refused and policy.accepted == 0
    finally:
        await alice.close()
        await bob.close()


async def test_agent_refuses_a_replayed_update() -> None:
    alice, bob, call_id, policy = await moving_pair()
    try:
        a_call = alice.call(call_id)
        assert a_call.context is not None and a_call.media is not None
        rtp = a_call.media.local_rtp
        offer = move_offer(SessionDescription.parse(a_call.local_sdp), a_call.context,
                           MediaAddress(rtp[0], rtp[1]), time.time())
        assert isinstance(await alice.reinvite(call_id, offer.body), ev.ReinviteAccepted)
        replay = SessionDescription.parse(offer.body).next_version()  # o= not MAC-covered
        outcome = await alice.reinvite(call_id, bytes(replay))
        assert isinstance(outcome, ev.ReinviteFailed) and outcome.status == 488
        assert policy.accepted == 1 and len(policy.refused) == 1
        assert "replay" in policy.refused[0].reason.lower()
    finally:
        await alice.close()
        await bob.close()


async def test_agent_refusal_of_a_forged_update_carries_the_mikey_error() -> None:
    """RFC 4567 §4.1.2: the 488 carries our SDP with the MIKEY error message
    (RFC 3830 §5.1.2, AUTH_FAILURE) and a Warning; nothing changes at Bob."""
    alice, bob, call_id, policy = await moving_pair()
    try:
        a_call, b_call = alice.call(call_id), bob.call(call_id)
        assert a_call.context is not None and a_call.media is not None
        assert b_call.media is not None
        remote_before = b_call.media.remote_rtp
        offer = move_offer(SessionDescription.parse(a_call.local_sdp), a_call.context,
                           MediaAddress("127.0.0.9", 40000), time.time())
        forged = bytearray(offer.update)
        forged[-1] ^= 1
        body = offer.body.replace(base64.b64encode(offer.update),
                                  base64.b64encode(bytes(forged)))
        outcome = await alice.reinvite(call_id, body)
        assert isinstance(outcome, ev.ReinviteFailed) and outcome.status == 488
        assert outcome.response is not None  # the refusal's body carries the MIKEY error
        answer = outcome.response.body
        (value,) = SessionDescription.parse(answer).key_mgmt
        error = MikeyMessage.parse(decode_key_mgmt(f"mikey {value.data}"))
        payload = error.find(ErrorPayload)
        assert payload is not None and payload.error_no == ErrorType.AUTH_FAILURE
        assert b_call.media.remote_rtp == remote_before and policy.accepted == 0
    finally:
        await alice.close()
        await bob.close()

"""The callee sends 180 Ringing before the MIKEY Responder runs (mobilityd.call.agent
``_on_invite``): the key agreement is off the calling delay (thesis App. B
Definition 1), and no check is weakened -- a bad MIKEY offer still gets 488 with the
MIKEY error (RFC 4567 §4.1.2, thesis §11.4), the user is never alerted, no media runs.
Two agents over loopback (no root)."""

from __future__ import annotations

import asyncio
from typing import Any

from mobilityd.call.agent import AgentConfig, CallAgent
from mobilityd.call.events import CallConnected, CallEvent, CallRefused, IncomingCallOffered
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.negotiation import CallSecurity
from mobilityd.mikey.constants import ErrorType
from mobilityd.sip import events as ev
from tests.call.credentials import PSK

A, B = "sip:alice@a.test", "sip:bob@b.test"


def keying(peer: str, psk: bytes = PSK) -> KeyingConfig:
    return KeyingConfig(peers={sip_identity(peer): PeerKeying(KeyMethod.PSK, psk)})


def record_statuses(agent: CallAgent) -> list[int]:
    """Statuses of the responses to our INVITE, in order, via the endpoint's
    documented ``event_received`` hook."""
    statuses: list[int] = []
    endpoint = agent.sip
    forward = endpoint.event_received

    def stamped(event: Any) -> None:
        if isinstance(event, ev.ProvisionalResponseReceived):
            statuses.append(event.response.status)
        elif isinstance(event, ev.CallFailed):
            statuses.append(event.status)
        elif isinstance(event, ev.CallEstablished):
            statuses.append(200)
        forward(event)

    setattr(endpoint, "event_received", stamped)  # noqa: B010 - instance hook
    return statuses


async def next_of(agent: CallAgent, kind: type[CallEvent], timeout: float = 10.0) -> CallEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = await agent.events.get()
            if isinstance(event, kind):
                return event


async def pair(bob_psk: bytes, *, auto_answer: bool = True,
               bob_security: CallSecurity = CallSecurity.REQUIRED
               ) -> tuple[CallAgent, CallAgent, list[int], list[CallEvent]]:
    bob = CallAgent(AgentConfig(B, "127.0.0.1", 0, keying=keying(A, bob_psk),
                                security=bob_security, auto_answer=auto_answer))
    await bob.start()
    bob_events: list[CallEvent] = []
    bob.add_listener(bob_events.append)
    alice = CallAgent(AgentConfig(A, "127.0.0.1", 0, keying=keying(B),
                                  contacts={sip_identity(B): bob.sip.local_address}))
    await alice.start()
    return alice, bob, record_statuses(alice), bob_events


async def test_bad_mikey_offer_rings_then_gets_488_with_the_mikey_error() -> None:
    alice, bob, statuses, bob_events = await pair(bytes(32))  # Bob's PSK is wrong
    try:
        call_id = await alice.place(B)
        refused = await next_of(alice, CallRefused)
        assert isinstance(refused, CallRefused) and refused.call_id == call_id
        assert refused.status == 488 and refused.mikey_error is ErrorType.AUTH_FAILURE
        assert statuses == [180, 488]
        assert not any(isinstance(e, IncomingCallOffered) for e in bob_events)
        assert [type(e) for e in bob_events] == [CallRefused]
        assert call_id not in bob.calls or bob.call(call_id).media is None
        assert alice.call(call_id).media is None
    finally:
        await alice.close()
        await bob.close()


async def test_policy_refusal_comes_without_a_180() -> None:
    """The screen (SDP, policy; no cryptography) still answers before any 180: a
    callee that takes only plain RTP refuses an SRTP-only offer with 488 at once."""
    alice, bob, statuses, _ = await pair(PSK, bob_security=CallSecurity.OFF)
    try:
        await alice.place(B)
        refused = await next_of(alice, CallRefused)
        assert isinstance(refused, CallRefused) and refused.status == 488
        assert statuses == [488]
    finally:
        await alice.close()
        await bob.close()


async def test_good_offer_rings_before_the_user_is_alerted_and_connects() -> None:
    alice, bob, statuses, _ = await pair(PSK, auto_answer=False)
    try:
        call_id = await alice.place(B)
        offered = await next_of(bob, IncomingCallOffered)
        assert offered == IncomingCallOffered(call_id, A, True, "psk")
        await bob.answer(call_id)
        await next_of(alice, CallConnected)
        assert statuses == [180, 200]
        a_ctx, b_ctx = alice.call(call_id).context, bob.call(call_id).context
        assert a_ctx is not None and b_ctx is not None
        assert a_ctx.srtp_master(1) == b_ctx.srtp_master(1)
    finally:
        await alice.close()
        await bob.close()

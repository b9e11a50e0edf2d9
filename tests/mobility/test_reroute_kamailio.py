"""Both parties moved (issue 5, "the peer's old contact unreachable because it moved
too"): the re-INVITE is re-routed through the proxy to the peer's AOR.

Two :class:`CallAgent` s with Kamailio as their registrar and outbound proxy
(``AgentConfig.outbound_proxy``; loopback addresses, no root). Bob calls Alice's
contact directly, so the dialog has no route set and its in-dialog requests go through
the outbound proxy (RFC 3261 §8.1.2), which forwards them statelessly (§16.11). Then:

1. Alice moves (media and SIP rebound, old SIP socket closed) and re-REGISTERs her new
   Contact (§10.2.1); she has not told Bob yet.
2. Bob moves: his re-INVITE with the RFC 3830 §4.5 update goes to Alice's stale
   contact, which never answers; at Timer B (64*T1, §17.1.1.2; T1 shortened to 50 ms
   so the test takes seconds) his UA re-sends it through Kamailio to Alice's AOR
   (``ReinviteRerouted``), Kamailio looks up her new contact in its location table and
   relays it; Alice verifies the update before her remote target moves.
3. Alice's own update reaches Bob at the new target his re-INVITE gave her.

Audio flows both ways afterwards, from and to the new addresses, through the same
SRTP session objects, with no authentication failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from mobilityd.call.agent import AgentConfig, CallAgent, reinvite_wait
from mobilityd.call.audio import AudioOptions
from mobilityd.call.errors import CallUsageError
from mobilityd.call.events import CallConnected, CallEvent, ReinviteRerouted
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.mobility.agent_roaming import (
    MoveContexts,
    VerifyingReinvitePolicy,
    move_agent_call,
)
from mobilityd.sip import events as ev
from mobilityd.sip.endpoint import EndpointEvent
from mobilityd.sip.registration import Registered
from mobilityd.sip.timers import TimerConfig
from tests.call.credentials import PSK
from tests.sip.peers import Kamailio, run_kamailio
from tests.sip.test_kamailio import registration

pytestmark = pytest.mark.interop

DOMAIN = "mobilityd.test"
ALICE, BOB = f"sip:alice@{DOMAIN}", f"sip:bob@{DOMAIN}"
ALICE_OLD, ALICE_NEW = "127.0.0.2", "127.0.0.4"
BOB_OLD, BOB_NEW = "127.0.0.3", "127.0.0.5"
#: Timer B = 64 * T1 = 3.2 s instead of 32 s (RFC 3261 Table 4 allows a smaller T1 on
#: networks known to be fast; loopback is)
FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    with run_kamailio(tmp_path_factory.mktemp("kamailio-reroute"), domain=DOMAIN) as k:
        yield k


def keying(peer: str) -> KeyingConfig:
    return KeyingConfig(peers={sip_identity(peer): PeerKeying(KeyMethod.PSK, PSK)})


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def next_of(agent: CallAgent, kind: type[CallEvent], timeout: float = 10.0) -> CallEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = await agent.events.get()
            if isinstance(event, kind):
                return event


def record_sip_events(agent: CallAgent) -> list[object]:
    """Every SIP event of the agent's endpoint (its documented ``event_received``
    hook), e.g. the registration outcomes the call layer does not publish."""
    seen: list[object] = []
    endpoint = agent.sip
    forward = endpoint.event_received

    def hook(event: EndpointEvent) -> None:
        seen.append(event)
        forward(event)

    setattr(endpoint, "event_received", hook)  # noqa: B010 - instance hook
    return seen


def registered_at(events: list[object], host: str) -> bool:
    return any(isinstance(e, Registered) and e.contact.host == host for e in events)


async def start_agent(user: str, peer: str, ip: str, kamailio: Kamailio, *,
                      contexts: MoveContexts, tone_hz: int, **extra: object
                      ) -> tuple[CallAgent, list[object]]:
    agent = CallAgent(
        AgentConfig(user, ip, 0, keying=keying(peer), audio=AudioOptions(tone_hz=tone_hz),
                    outbound_proxy=f"sip:{kamailio.ip}:{kamailio.udp_port}",
                    sip_timers=FAST, **extra),  # type: ignore[arg-type]
        reinvite_policy=VerifyingReinvitePolicy(contexts))
    await agent.start()
    events = record_sip_events(agent)
    name = user.removeprefix("sip:").partition("@")[0]
    agent.sip.register(registration(name), (kamailio.ip, kamailio.udp_port))
    await until(lambda: registered_at(events, ip))
    return agent, events


async def move_when_free(agent: CallAgent, call_id: str, new_ip: str,
                         contexts: MoveContexts) -> ev.ReinviteAccepted | ev.ReinviteFailed:
    """:func:`move_agent_call`, retried while the peer's re-INVITE transaction is still
    open on our side (RFC 3261 §14.1: its ACK may not have arrived yet)."""
    async with asyncio.timeout(5.0):
        while True:
            try:
                return await move_agent_call(agent, call_id, new_ip, contexts)
            except CallUsageError:
                await asyncio.sleep(0.05)


def test_wait_covers_the_rerouted_attempt() -> None:
    """RFC 3261 §17.1.1.2: two Timer B periods (first attempt, re-routed attempt) plus
    T4 with a proxy; one plus T4 without."""
    assert reinvite_wait(TimerConfig(), rerouting=True) == 2 * 32.0 + 5.0
    assert reinvite_wait(TimerConfig(), rerouting=False) == 32.0 + 5.0
    assert reinvite_wait(FAST, rerouting=True) == pytest.approx(2 * 3.2 + 0.5)


async def test_both_moved_reinvite_is_rerouted_through_the_proxy(kamailio: Kamailio) -> None:
    alice_ctx, bob_ctx = MoveContexts(), MoveContexts()
    alice, alice_sip = await start_agent(ALICE, BOB, ALICE_OLD, kamailio, contexts=alice_ctx,
                                         tone_hz=440, auto_answer=True)
    bob, bob_sip = await start_agent(BOB, ALICE, BOB_OLD, kamailio, contexts=bob_ctx,
                                     tone_hz=1000,
                                     contacts={sip_identity(ALICE): alice.sip.local_address})
    try:
        call_id = await bob.place(ALICE)
        await next_of(bob, CallConnected)
        await next_of(alice, CallConnected)
        a_call, b_call = alice.call(call_id), bob.call(call_id)
        a_media, b_media = a_call.media, b_call.media
        assert a_media is not None and b_media is not None
        sessions = (a_media.tx, a_media.rx, b_media.tx, b_media.rx)
        b_dialog = bob.dialog(call_id)
        assert b_dialog is not None and not b_dialog.route_set  # direct: no proxy on it
        await until(lambda: a_call.monitor.frames > 5 and b_call.monitor.frames > 5)

        # 1. Alice moves and re-REGISTERs; her old contact is gone, Bob not told yet.
        await a_media.rebind(ALICE_NEW)
        # her SRTCP proof from the new address (as move_agent_call sends) still reaches
        # Bob at his old address: his gate remembers it for the update to come
        assert a_media.announce()
        old_contact = alice.sip.local_address
        await alice.sip.rebind(ALICE_NEW, refresh_dialogs=False)
        alice.sip.release(old_contact)
        await until(lambda: registered_at(alice_sip, ALICE_NEW))
        assert b_dialog.remote_target.host == ALICE_OLD

        # 2. Bob moves; his re-INVITE to the stale contact times out and is re-routed.
        started = asyncio.get_running_loop().time()
        outcome = await move_agent_call(bob, call_id, BOB_NEW, bob_ctx)
        took = asyncio.get_running_loop().time() - started
        assert isinstance(outcome, ev.ReinviteAccepted), outcome
        rerouted = await next_of(bob, ReinviteRerouted, timeout=1.0)
        assert rerouted == ReinviteRerouted(call_id, ALICE,
                                            f"sip:{kamailio.ip}:{kamailio.udp_port}")
        assert took >= FAST.timeout  # the first attempt ended at Timer B
        assert registered_at(bob_sip, BOB_NEW)
        b_dialog = bob.dialog(call_id)
        assert b_dialog is not None and b_dialog.remote_target.host == ALICE_NEW
        a_dialog = alice.dialog(call_id)
        assert a_dialog is not None and a_dialog.remote_target.host == BOB_NEW
        policy = alice.reinvite_policy
        assert isinstance(policy, VerifyingReinvitePolicy)
        assert policy.accepted == 1 and policy.refused == []  # the MIKEY update verified

        # 3. Alice's update reaches Bob's new contact directly (no re-route needed).
        outcome = await move_when_free(alice, call_id, ALICE_NEW, alice_ctx)
        assert isinstance(outcome, ev.ReinviteAccepted), outcome
        bob_policy = bob.reinvite_policy
        assert isinstance(bob_policy, VerifyingReinvitePolicy)
        assert bob_policy.accepted == 1 and bob_policy.refused == []

        # Audio both ways between the new addresses, same SRTP sessions, no auth failure.
        await until(lambda: a_media.remote_rtp is not None and b_media.remote_rtp is not None
                    and a_media.remote_rtp[0] == BOB_NEW
                    and b_media.remote_rtp[0] == ALICE_NEW)
        a_frames, b_frames = a_call.monitor.frames, b_call.monitor.frames
        await until(lambda: a_call.monitor.frames > a_frames + 10
                    and b_call.monitor.frames > b_frames + 10)
        assert a_call.monitor.dominant([440, 1000]) == 1000
        assert b_call.monitor.dominant([440, 1000]) == 440
        assert (a_media.tx, a_media.rx, b_media.tx, b_media.rx) == sessions
        assert a_media.counters.auth_failures == b_media.counters.auth_failures == 0
    finally:
        await bob.close()
        await alice.close()
    assert "re-routed to sip:alice@127.0.0.4" in kamailio.log_text()  # via the location


async def test_record_routed_dialog_is_rerouted_after_the_proxys_408(
        kamailio: Kamailio) -> None:
    """The thesis's topology: Bob calls Alice's AOR through Kamailio, which
    record-routes (RFC 3261 §16.6), so Bob's re-INVITE goes through it to Alice's stale
    contact. Kamailio answers 100 Trying (§17.2.1: Bob's Timer B stops) and, when its
    own timer toward the dead contact fires, 408; Bob's UA re-routes then, once,
    through Kamailio to Alice's AOR, which it relays to her new contact."""
    alice_ctx, bob_ctx = MoveContexts(), MoveContexts()
    alice, alice_sip = await start_agent(ALICE, BOB, ALICE_OLD, kamailio, contexts=alice_ctx,
                                         tone_hz=440, auto_answer=True)
    bob, _ = await start_agent(BOB, ALICE, BOB_OLD, kamailio, contexts=bob_ctx,
                                     tone_hz=1000)
    try:
        call_id = await bob.place(ALICE)  # no contact: through the proxy, by AOR
        await next_of(bob, CallConnected)
        await next_of(alice, CallConnected)
        a_call, b_call = alice.call(call_id), bob.call(call_id)
        a_media, b_media = a_call.media, b_call.media
        assert a_media is not None and b_media is not None
        sessions = (a_media.tx, a_media.rx, b_media.tx, b_media.rx)
        b_dialog = bob.dialog(call_id)
        assert b_dialog is not None and b_dialog.route_set  # record-routed by Kamailio
        await until(lambda: a_call.monitor.frames > 5 and b_call.monitor.frames > 5)

        await a_media.rebind(ALICE_NEW)
        assert a_media.announce()
        old_contact = alice.sip.local_address
        await alice.sip.rebind(ALICE_NEW, refresh_dialogs=False)
        alice.sip.release(old_contact)
        await until(lambda: registered_at(alice_sip, ALICE_NEW))

        outcome = await move_agent_call(bob, call_id, BOB_NEW, bob_ctx)
        assert isinstance(outcome, ev.ReinviteAccepted), outcome
        rerouted = await next_of(bob, ReinviteRerouted, timeout=1.0)
        assert isinstance(rerouted, ReinviteRerouted) and rerouted.request_uri == ALICE
        b_dialog = bob.dialog(call_id)
        assert b_dialog is not None and b_dialog.remote_target.host == ALICE_NEW
        assert b_dialog.route_set  # the dialog keeps its route set (§12.2.1.2)
        outcome = await move_when_free(alice, call_id, ALICE_NEW, alice_ctx)
        assert isinstance(outcome, ev.ReinviteAccepted), outcome
        await until(lambda: a_media.remote_rtp is not None and b_media.remote_rtp is not None
                    and a_media.remote_rtp[0] == BOB_NEW
                    and b_media.remote_rtp[0] == ALICE_NEW)
        a_frames, b_frames = a_call.monitor.frames, b_call.monitor.frames
        await until(lambda: a_call.monitor.frames > a_frames + 10
                    and b_call.monitor.frames > b_frames + 10)
        assert (a_media.tx, a_media.rx, b_media.tx, b_media.rx) == sessions
        assert a_media.counters.auth_failures == b_media.counters.auth_failures == 0
    finally:
        await bob.close()
        await alice.close()

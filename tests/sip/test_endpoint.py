"""Two SipEndpoints (asyncio, real sockets on loopback) driving two UA engines:
calls over UDP and TCP, and a transport rebind mid-dialog (127.0.0.2 -> 127.0.0.3)
after which the peer's remote target follows (RFC 3261 §12.2 target refresh)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest

from mobilityd.sip import events as ev
from mobilityd.sip.endpoint import SipEndpoint, stamp_received
from mobilityd.sip.message import Request, parse_message
from mobilityd.sip.timers import TimerConfig
from mobilityd.sip.transport import TransportKind
from mobilityd.sip.uri import NameAddr, SipUri
from mobilityd.sip.useragent import UaConfig, UserAgent

E = TypeVar("E")
SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0\r\n")

Action = Callable[[UserAgent, float], None]


def answering(call_id: str, status: int = 200) -> Action:
    """``answer_call`` (with our SDP on a 2xx) as an ``act`` action."""
    def action(ua: UserAgent, now: float) -> None:
        ua.answer_call(call_id, now, status, body=SDP if status >= 200 else b"")
    return action


def accepting_reinvite(call_id: str) -> Action:
    def action(ua: UserAgent, now: float) -> None:
        ua.accept_reinvite(call_id, now, body=SDP)
    return action


def hanging_up(call_id: str) -> Action:
    def action(ua: UserAgent, now: float) -> None:
        ua.hangup(call_id, now)
    return action



def config(user: str, host: str, kind: TransportKind) -> UaConfig:
    return UaConfig(local_uri=NameAddr.parse(f"<sip:{user}@mobilityd.test>"), host=host,
                    port=0, transport=kind, contact_user=user)


class Answerer:
    """Bob's application: answer every call, accept every re-INVITE, and pass every
    event on to the test (``seen``)."""

    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint
        self.seen: asyncio.Queue[object] = asyncio.Queue()
        self.history: list[object] = []

    async def run(self) -> None:
        endpoint = self.endpoint
        while True:
            event = await endpoint.events.get()
            if isinstance(event, ev.IncomingCallReceived):
                endpoint.act(answering(event.call_id))
            elif isinstance(event, ev.ReinviteReceived):
                endpoint.act(accepting_reinvite(event.call_id))
            self.history.append(event)
            self.seen.put_nowait(event)

    async def wait_for(self, kind: type[E], limit: float = 5.0) -> E:
        async with asyncio.timeout(limit):
            while True:
                event = await self.seen.get()
                if isinstance(event, kind):
                    return event


#: The answering application of each open endpoint (kept here, not as an attribute on
#: the endpoint: the compiled SIP core's classes take no ad-hoc attributes).
ANSWERERS: dict[SipEndpoint, Answerer] = {}


@pytest.fixture(params=[TransportKind.UDP, TransportKind.TCP], ids=["udp", "tcp"])
async def pair(request: pytest.FixtureRequest
               ) -> AsyncIterator[tuple[SipEndpoint, SipEndpoint]]:
    kind = request.param
    alice = await SipEndpoint.open(config("alice", "127.0.0.2", kind), os.urandom)
    bob = await SipEndpoint.open(config("bob", "127.0.0.1", kind), os.urandom)
    answerer = Answerer(bob)
    ANSWERERS[bob] = answerer
    app = asyncio.create_task(answerer.run())
    yield alice, bob
    app.cancel()
    del ANSWERERS[bob]
    await alice.close()
    await bob.close()


def bob_uri(bob: SipEndpoint) -> SipUri:
    host, port = bob.local_address
    params: dict[str, str | None] = (
        {} if bob.kind is TransportKind.UDP else {"transport": bob.kind.name.lower()})
    return SipUri("sip", user="bob", host=host, port=port, params=params)


async def establish(alice: SipEndpoint, bob: SipEndpoint) -> str:
    call_id = alice.act(lambda ua, now: ua.invite(bob_uri(bob), now, body=SDP))
    established = await alice.next_event(ev.CallEstablished)
    assert isinstance(established, ev.CallEstablished)
    assert established.call_id == call_id
    return call_id


async def test_call_setup_and_hangup(pair) -> None:  # type: ignore[no-untyped-def]
    alice, bob = pair
    call_id = await establish(alice, bob)
    alice.act(lambda ua, now: ua.hangup(call_id, now))
    ended = await alice.next_event(ev.CallEnded)
    assert isinstance(ended, ev.CallEnded) and not ended.by_peer
    await ANSWERERS[bob].wait_for(ev.CallEnded)


async def test_rebind_mid_dialog_moves_the_peers_remote_target(pair) -> None:  # type: ignore[no-untyped-def]
    alice, bob = pair
    call_id = await establish(alice, bob)
    old = alice.local_address
    new = await alice.rebind("127.0.0.3")
    assert new[0] == "127.0.0.3" and alice.local_address == new
    if alice.kind is TransportKind.UDP:
        assert new[1] == old[1]  # the same port where free
    accepted = await alice.next_event(ev.ReinviteAccepted)
    assert isinstance(accepted, ev.ReinviteAccepted)
    # Bob's dialog now targets the new address (RFC 3261 §12.2.2) ...
    refreshed = await ANSWERERS[bob].wait_for(ev.RemoteTargetRefreshed)
    assert refreshed.new.host == "127.0.0.3" and refreshed.old.host == "127.0.0.2"
    # ... so his BYE reaches Alice on 127.0.0.3 even once the old address is gone.
    if alice.kind is TransportKind.UDP:
        alice.release(old)
    bob.act(lambda ua, now: ua.hangup(call_id, now))
    ended = await alice.next_event(ev.CallEnded)
    assert isinstance(ended, ev.CallEnded) and ended.by_peer


async def test_unparsable_request_gets_400_from_the_endpoint() -> None:
    bob = await SipEndpoint.open(config("bob", "127.0.0.1", TransportKind.UDP), os.urandom)
    loop = asyncio.get_running_loop()
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            answers.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    try:
        bad = (b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
               b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-bad1;rport\r\n"
               b"From: <sip:x@y>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: bad1\r\n"
               b"CSeq: notanumber OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        transport.sendto(bad, bob.local_address)
        answer = await asyncio.wait_for(answers.get(), 5)
        assert answer.startswith(b"SIP/2.0 400 ")
        assert bob.messages_rejected == 1
    finally:
        transport.close()
        await bob.close()


async def test_received_and_rport_are_stamped_on_requests(pair) -> None:  # type: ignore[no-untyped-def]
    alice, bob = pair
    await establish(alice, bob)
    invite = next(e for e in ANSWERERS[bob].history
                  if isinstance(e, ev.IncomingCallReceived)).request
    via = invite.top_via
    # RFC 3581 §4: the server fills rport with the source port and adds received.
    assert via.rport is not None
    if alice.kind is TransportKind.UDP:
        assert via.rport == alice.local_address[1]


def _request_with_via(via: str) -> Request:
    message = parse_message(
        f"OPTIONS sip:b@127.0.0.1 SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP 10.9.9.9\r\n"
        "From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n".encode())
    assert isinstance(message, Request)
    return message


@pytest.mark.parametrize(
    ("via", "received", "rport"),
    [
        # RFC 3581 §4: rport asked -> filled with the source port, received added.
        ("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport", "127.0.0.9", 40000),
        # RFC 3261 §18.2.1: sent-by differs from the source -> received.
        ("SIP/2.0/UDP host.example:5070;branch=z9hG4bK1", "127.0.0.9", None),
        # Same host, no rport: untouched.
        ("SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK1", None, None),
        ("SIP/2.0/UDP 127.0.0.99:5070;branch=z9hG4bK1", "127.0.0.9", None),
    ],
)
def test_received_and_rport_rules(via: str, received: str | None, rport: int | None) -> None:
    request = _request_with_via(via)
    stamp_received(request, ("127.0.0.9", 40000))
    top = request.top_via
    assert top.received == received
    assert top.rport == rport
    assert top.branch == "z9hG4bK1"
    assert [v.host for v in request.vias][1:] == ["10.9.9.9"]  # lower Vias untouched


async def test_garbage_never_breaks_the_endpoint() -> None:
    """Random and truncated datagrams are rejected or answered; the endpoint keeps
    serving (a valid OPTIONS still gets its 200 afterwards)."""
    import random

    bob = await SipEndpoint.open(config("bob", "127.0.0.1", TransportKind.UDP), os.urandom)
    loop = asyncio.get_running_loop()
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            answers.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    valid = (b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
             b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-live;rport\r\n"
             b"From: <sip:x@y>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: live\r\n"
             b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    generator = random.Random(4475)
    try:
        for cut in range(0, len(valid), 7):
            transport.sendto(valid[:cut] + b"\r\n", bob.local_address)
        for _ in range(200):
            junk = bytes(generator.randrange(256) for _ in range(generator.randrange(1, 400)))
            transport.sendto(junk, bob.local_address)
        transport.sendto(valid, bob.local_address)
        async with asyncio.timeout(10):
            while True:
                answer = await answers.get()
                if b"Call-ID: live" in answer and answer.startswith(b"SIP/2.0 200 "):
                    break
        assert bob.messages_rejected > 0
    finally:
        transport.close()
        await bob.close()


async def test_retransmitted_request_is_answered_again_without_reparsing() -> None:
    """RFC 3261 §17.2.2: a retransmitted OPTIONS gets the last response again; the copy
    is recognised by its bytes before parsing."""
    bob = await SipEndpoint.open(config("bob", "127.0.0.1", TransportKind.UDP), os.urandom)
    loop = asyncio.get_running_loop()
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            answers.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    request = (b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
               b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-rtx1;rport\r\n"
               b"From: <sip:x@y>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: rtx1\r\n"
               b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    try:
        transport.sendto(request, bob.local_address)
        first = await asyncio.wait_for(answers.get(), 5)
        transport.sendto(request, bob.local_address)
        again = await asyncio.wait_for(answers.get(), 5)
        assert first.startswith(b"SIP/2.0 200 ") and again == first
        assert bob.absorbed_retransmissions == 1
        assert bob.messages_received == 1  # parsed once
    finally:
        transport.close()
        await bob.close()


async def test_an_earlier_timer_scheduled_after_the_armed_one_fires_on_time() -> None:
    """The endpoint keeps its armed wake-up while nothing earlier was scheduled
    (``TimerHeap.earliest_since_mark``); an INVITE sent while a later Timer A is armed
    must still be retransmitted at its own T1 (RFC 3261 §17.1.1.2), not at the armed
    one.  T1 = 100 ms; the peer is a socket that never answers."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    silent.setblocking(False)
    peer = SipUri("sip", user="nobody", host="127.0.0.1", port=silent.getsockname()[1])
    base = config("alice", "127.0.0.2", TransportKind.UDP)
    alice = await SipEndpoint.open(dataclasses.replace(base, timers=TimerConfig(t1=0.1)),
                                   os.urandom)
    loop = asyncio.get_running_loop()
    arrivals: dict[str, list[float]] = {}

    async def collect(until: float) -> None:
        while loop.time() < until:
            try:
                data = silent.recv(65_535)
            except BlockingIOError:
                await asyncio.sleep(0.002)
                continue
            call_id = parse_message(data).call_id
            arrivals.setdefault(call_id, []).append(loop.time())

    try:
        start = loop.time()
        first = alice.act(lambda ua, now: ua.invite(peer, now, body=SDP))
        # Timer A of the first INVITE: 0.1, 0.3, 0.7 s after it; at 0.35 s the wake-up
        # armed is at 0.7 s when the second INVITE (its Timer A at 0.45 s) is sent.
        await collect(start + 0.35)
        second = alice.act(lambda ua, now: ua.invite(peer, now, body=SDP))
        sent_second = loop.time()
        await collect(start + 0.65)
    finally:
        await alice.close()
        silent.close()
    assert len(arrivals[first]) >= 3  # sent, +0.1, +0.3
    copies = arrivals[second]
    assert len(copies) >= 2, "the second INVITE was not retransmitted before 0.65 s"
    assert copies[1] - sent_second < 0.2  # at its T1 (0.1 s), not at the armed 0.7 s

"""Shared builders for the in-memory UA scenario tests (not a test module)."""

from __future__ import annotations

import random
from collections.abc import Callable

from mobilityd.sip import events as ev
from mobilityd.sip.ua.memnet import MemoryNetwork, Node
from mobilityd.sip.uri import NameAddr, SipUri
from mobilityd.sip.useragent import UaConfig, UserAgent

ALICE = ("10.0.0.1", 5060)
BOB = ("10.0.0.2", 5060)
SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" \
      b"m=audio 4000 RTP/SAVP 0\r\n"


def seeded_rng(seed: int) -> Callable[[int], bytes]:
    source = random.Random(seed)
    return source.randbytes


def make_ua(name: str, address: tuple[str, int], seed: int, **config: object) -> UserAgent:
    uri = SipUri.parse(f"sip:{name}@example.org")
    return UserAgent(UaConfig(local_uri=NameAddr(uri=uri, display_name=name),
                              host=address[0], port=address[1], contact_user=name,
                              **config),  # type: ignore[arg-type]
                     rng=seeded_rng(seed))


def auto_answer(node: Node, event: ev.Event, now: float) -> None:
    """Bob's application: answer every call, accept every re-INVITE."""
    ua = node.ua
    if isinstance(event, ev.IncomingCallReceived):
        ua.answer_call(event.call_id, now, 180)
        ua.answer_call(event.call_id, now, 200, body=SDP)
    elif isinstance(event, ev.ReinviteReceived):
        ua.accept_reinvite(event.call_id, now, body=SDP)


def pair(*, loss: float = 0.0, seed: int = 1, bob_handler: object = auto_answer,
         alice_handler: object = None, **config: object
         ) -> tuple[MemoryNetwork, Node, Node]:
    net = MemoryNetwork(loss=loss, seed=seed)
    alice = net.attach(ALICE, make_ua("alice", ALICE, seed * 2 + 1, **config),
                       alice_handler)  # type: ignore[arg-type]
    bob = net.attach(BOB, make_ua("bob", BOB, seed * 2 + 2, **config),
                     bob_handler)  # type: ignore[arg-type]
    return net, alice, bob


def bob_uri() -> SipUri:
    return SipUri.parse(f"sip:bob@{BOB[0]}:{BOB[1]}")

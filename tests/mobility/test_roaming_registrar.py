"""A secure call through Kamailio (registrar + Record-Route proxy) moves (issue 5 steps
1-3, 5): Bob re-REGISTERs his new Contact (RFC 3261 §10.2.1), his re-INVITE with the
RFC 3830 §4.5 update follows the dialog's route set through the proxy (§12.2.1.1), Alice
verifies it before her remote target moves, and her stream follows Bob's authenticated
packets. Loopback addresses (127.0.0.x), no root needed."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator

import pytest

from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.keying import sessions_for_call
from mobilityd.media.rtp import build_rtp
from mobilityd.mikey.payloads import SrtpCsEntry
from mobilityd.mikey.sdp import decode_key_mgmt, encode_key_mgmt
from mobilityd.mikey.session import PskInitiator, Responder
from mobilityd.mobility.roaming import CallMover, MoveGuard, RoamingCall
from mobilityd.sip import events as ev
from mobilityd.sip.endpoint import SipEndpoint
from mobilityd.sip.registration import Registered
from mobilityd.sip.sdp import SessionDescription
from mobilityd.sip.transport import TransportKind
from mobilityd.sip.uri import NameAddr, SipUri
from mobilityd.sip.useragent import UaConfig
from tests.sip.peers import Kamailio, run_kamailio
from tests.sip.test_kamailio import registration


class HookableEndpoint(SipEndpoint):
    """An interpreted subclass, so that an instance takes an ``event_received`` hook
    of its own (the mypyc-compiled SipEndpoint has no instance dictionary)."""


pytestmark = pytest.mark.interop

DOMAIN = "mobilityd.test"
PSK = bytes(range(32))
SSRC = {"alice": 0x0A0A0A0A, "bob": 0x0B0B0B0B}


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    with run_kamailio(tmp_path_factory.mktemp("kamailio-roaming"), domain=DOMAIN) as k:
        yield k


def sdp(user: str, host: str, port: int, key_mgmt: bytes) -> SessionDescription:
    return SessionDescription.parse(
        f"v=0\r\no={user} 7 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"a=key-mgmt:{encode_key_mgmt(key_mgmt)}\r\nm=audio {port} RTP/SAVP 0\r\n"
        f"a=rtcp:{port + 1}\r\n")


async def open_endpoint(user: str, host: str, kamailio: Kamailio) -> SipEndpoint:
    config = UaConfig(local_uri=NameAddr.parse(f"<sip:{user}@{DOMAIN}>"), host=host, port=0,
                      transport=TransportKind.UDP, contact_user=user,
                      outbound_proxy=SipUri.parse(f"sip:{kamailio.ip}:{kamailio.udp_port}"))
    endpoint = await HookableEndpoint.open(config, os.urandom)
    endpoint.register(registration(user), (kamailio.ip, kamailio.udp_port))
    await endpoint.next_event(Registered)
    return endpoint


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def media(role: str, peer: str, ip: str, context: object, port: int = 0) -> MediaEndpoint:
    tx, rx = sessions_for_call(context, [SSRC[role]], [SSRC[peer]],  # type: ignore[arg-type]
                               keep_index_history=True)
    return MediaEndpoint(ip, tx=tx, rx=rx, local_port=port)


async def test_move_through_the_proxy_re_registers_and_reinvites(kamailio: Kamailio) -> None:
    alice_sip = await open_endpoint("alice", "127.0.0.2", kamailio)
    bob_sip = await open_endpoint("bob", "127.0.0.3", kamailio)
    media_ends: list[MediaEndpoint] = []
    try:
        # -- set-up: Bob calls Alice's AOR through the proxy, MIKEY PSK in the SDP
        cs_map = (SrtpCsEntry(0, SSRC["bob"], 0), SrtpCsEntry(0, SSRC["alice"], 0))
        initiator = PskInitiator(psk=PSK, local_id=b"sip:bob@mobilityd.test",
                                 peer_id=b"sip:alice@mobilityd.test", cs_map=cs_map)
        bob_offer = sdp("bob", "127.0.0.3", 41000, initiator.start(time.time(), os.urandom))
        call_id = bob_sip.act(lambda ua, now: ua.invite(
            SipUri.parse(f"sip:alice@{DOMAIN}"), now, body=bytes(bob_offer)))
        incoming = await alice_sip.next_event(ev.IncomingCallReceived)
        assert isinstance(incoming, ev.IncomingCallReceived)
        offer = SessionDescription.parse(incoming.request.body)
        done = Responder(local_id=b"sip:alice@mobilityd.test", psk=PSK).receive(
            decode_key_mgmt(f"mikey {offer.key_mgmt[0].data}"), time.time())
        assert done.reply is not None
        alice_media = media("alice", "bob", "127.0.0.2", done.context, 42000)
        await alice_media.open()
        alice_media.set_remote(("127.0.0.3", 41000))
        alice_sdp = sdp("alice", "127.0.0.2", 42000, done.reply)
        alice_sip.act(lambda ua, now: ua.answer_call(call_id, now, body=bytes(alice_sdp)))
        established = await bob_sip.next_event(ev.CallEstablished)
        assert isinstance(established, ev.CallEstablished)
        bob_context = initiator.receive_response(done.reply, time.time())
        bob_media = media("bob", "alice", "127.0.0.3", bob_context, 41000)
        await bob_media.open()
        bob_media.set_remote(("127.0.0.2", 42000))
        media_ends += [alice_media, bob_media]
        sessions = (alice_media.tx, alice_media.rx, bob_media.tx, bob_media.rx)
        alice_call = RoamingCall(call_id, alice_sip, alice_media, done.context, alice_sdp,
                                 offer)
        bob_call = RoamingCall(call_id, bob_sip, bob_media, bob_context, bob_offer,
                               alice_sdp)
        guard, mover = MoveGuard(alice_call), CallMover(bob_call)
        alice_sip.event_received = guard.handle_sip_event  # type: ignore[method-assign]
        bob_events: list[object] = []

        def bob_event(event: object) -> None:
            bob_events.append(event)
            mover.handle_sip_event(event)

        bob_sip.event_received = bob_event  # type: ignore[method-assign]
        got: dict[str, list[tuple[str, int]]] = {"alice": [], "bob": []}
        alice_media.on_rtp = lambda data, source: got["alice"].append(source)
        bob_media.on_rtp = lambda data, source: got["bob"].append(source)
        seq = [65530]

        def talk() -> None:
            for who, end in (("alice", alice_media), ("bob", bob_media)):
                end.send_rtp(build_rtp(0, seq[0] & 0xFFFF, seq[0] * 160, SSRC[who],
                                       b"\xff" * 160))
            seq[0] += 1

        for _ in range(10):
            talk()
        await until(lambda: len(got["alice"]) >= 10 and len(got["bob"]) >= 10)
        dialog = bob_sip.ua.call(call_id).dialog
        assert dialog is not None and dialog.route_set  # record-routed by Kamailio

        # -- Bob moves to 127.0.0.5
        await mover.move_to("127.0.0.5")
        for _ in range(10):
            talk()
            await asyncio.sleep(0.02)
        await until(lambda: any(isinstance(e, Registered) and e.contact.host == "127.0.0.5"
                                for e in bob_events))
        await until(lambda: any(isinstance(e, ev.ReinviteAccepted) for e in bob_events))
        assert len(guard.accepted) == 1 and guard.refused == []
        alice_dialog = alice_sip.ua.call(call_id).dialog
        assert alice_dialog is not None and alice_dialog.remote_target.host == "127.0.0.5"
        before = len(got["bob"])
        for _ in range(10):
            talk()
            await asyncio.sleep(0.02)
        await until(lambda: alice_media.remote_rtp == ("127.0.0.5", bob_media.local_rtp[1])
                    and len(got["bob"]) >= before + 5)
        assert got["alice"][-1][0] == "127.0.0.5"
        assert (alice_media.tx, alice_media.rx, bob_media.tx, bob_media.rx) == sessions
        assert alice_media.counters.auth_failures == bob_media.counters.auth_failures == 0
        assert bob_media.tx is not None and bob_media.tx.get_roc(SSRC["bob"]) == 1
    finally:
        for end in media_ends:
            end.close()
        await alice_sip.close()
        await bob_sip.close()

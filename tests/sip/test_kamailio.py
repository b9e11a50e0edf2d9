"""Our stack against Kamailio as registrar and proxy (started by the fixture):
REGISTER with RFC 7616 digest (MD5 and SHA-256) and RFC 5627 GRUU over UDP, TCP and
TLS; re-REGISTER after a move; a call and a REFER routed through it with Record-Route."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mobilityd.sip import events as ev
from mobilityd.sip.endpoint import EndpointEvent, SipEndpoint, TransportOptions
from mobilityd.sip.registration import (
    Registered,
    RegistrationConfig,
    RegistrationFailed,
    RegistrationState,
)
from mobilityd.sip.transport import TransportKind, client_context, server_context
from mobilityd.sip.uri import NameAddr, SipUri
from mobilityd.sip.useragent import UaConfig

from .peers import Kamailio, run_kamailio

pytestmark = pytest.mark.interop

DOMAIN = "mobilityd.test"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0\r\n")


@pytest.fixture(scope="module", params=["MD5", "SHA-256"])
def kamailio(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Kamailio]:
    directory = tmp_path_factory.mktemp(f"kamailio-{request.param}")
    with run_kamailio(directory, domain=DOMAIN, users=USERS, algorithm=request.param,
                      tls=True) as running:
        yield running


def registration(user: str, password: str | None = None, expires: int = 300
                 ) -> RegistrationConfig:
    uuid = {"alice": "00000000-0000-4000-8000-00000000a11c",
            "bob": "00000000-0000-4000-8000-000000000b0b"}[user]
    return RegistrationConfig(aor=SipUri.parse(f"sip:{user}@{DOMAIN}"),
                              registrar=SipUri.parse(f"sip:{DOMAIN}"),
                              instance_id=f"urn:uuid:{uuid}", username=user,
                              password=password or USERS[user], expires=expires)


def proxy_port(kamailio: Kamailio, kind: TransportKind) -> int:
    ports = {TransportKind.UDP: kamailio.udp_port, TransportKind.TCP: kamailio.tcp_port,
             TransportKind.TLS: kamailio.tls_port}
    port = ports[kind]
    assert port is not None
    return port


async def _events_in_any_order(endpoint: SipEndpoint, *kinds: type[EndpointEvent],
                               timeout: float = 10.0) -> dict[type, EndpointEvent]:
    """The next event of each of ``kinds``, whichever order they come in (others are
    skipped, as ``SipEndpoint.next_event`` skips them)."""
    found: dict[type, EndpointEvent] = {}
    async with asyncio.timeout(timeout):
        while len(found) < len(kinds):
            event = await endpoint.events.get()
            kind = next((k for k in kinds if isinstance(event, k) and k not in found), None)
            if kind is not None:
                found[kind] = event
    return found


async def open_endpoint(user: str, host: str, kamailio: Kamailio, kind: TransportKind,
                        server: tuple[Path, Path] | None = None) -> SipEndpoint:
    port = proxy_port(kamailio, kind)
    scheme = "sips" if kind is TransportKind.TLS else "sip"
    transport = "" if kind is TransportKind.UDP else f";transport={kind.name.lower()}"
    config = UaConfig(local_uri=NameAddr.parse(f"<sip:{user}@{DOMAIN}>"), host=host, port=0,
                      transport=kind, contact_user=user,
                      outbound_proxy=SipUri.parse(f"{scheme}:{kamailio.ip}:{port}{transport}"))
    options = TransportOptions()
    if kind is TransportKind.TLS:
        assert kamailio.certificates is not None
        options = TransportOptions(
            tls_client=client_context(kamailio.certificates.ca_cert),
            tls_server=server_context(*server) if server is not None else None)
    return await SipEndpoint.open(config, os.urandom, options)


async def register(endpoint: SipEndpoint, kamailio: Kamailio, user: str) -> Registered:
    kind = endpoint.kind
    endpoint.register(registration(user), (kamailio.ip, proxy_port(kamailio, kind)))
    event = await endpoint.next_event()
    while not isinstance(event, Registered | RegistrationFailed):
        event = await endpoint.next_event()
    assert isinstance(event, Registered), f"{event}\n{kamailio.log_text()[-2000:]}"
    return event


@pytest.fixture
async def endpoints() -> AsyncIterator[list[SipEndpoint]]:
    opened: list[SipEndpoint] = []
    yield opened
    for endpoint in opened:
        await endpoint.close()


@pytest.mark.parametrize("kind", [TransportKind.UDP, TransportKind.TCP, TransportKind.TLS],
                         ids=["udp", "tcp", "tls"])
async def test_register_with_digest_gets_gruus(kamailio: Kamailio, kind: TransportKind,
                                               endpoints: list[SipEndpoint]) -> None:
    alice = await open_endpoint("alice", "127.0.0.2", kamailio, kind)
    endpoints.append(alice)
    event = await register(alice, kamailio, "alice")
    # RFC 5627 §5.2: the 200 OK names our public and temporary GRUUs.
    assert event.pub_gruu is not None and "gr" in event.pub_gruu.params
    assert event.pub_gruu.user == "alice"
    assert event.temp_gruu is not None and "gr" in event.temp_gruu.params
    assert event.contact.host == "127.0.0.2"
    assert 0 < event.expires <= 300


async def test_wrong_password_fails_after_one_retry(kamailio: Kamailio,
                                                   endpoints: list[SipEndpoint]) -> None:
    alice = await open_endpoint("alice", "127.0.0.2", kamailio, TransportKind.UDP)
    endpoints.append(alice)
    client = alice.register(registration("alice", password="wrong"),
                            (kamailio.ip, kamailio.udp_port))
    failed = await alice.next_event(RegistrationFailed)
    assert isinstance(failed, RegistrationFailed) and failed.status == 401
    assert client.state is RegistrationState.FAILED


async def test_move_re_registers_the_new_contact(kamailio: Kamailio,
                                                endpoints: list[SipEndpoint]) -> None:
    alice = await open_endpoint("alice", "127.0.0.2", kamailio, TransportKind.UDP)
    endpoints.append(alice)
    await register(alice, kamailio, "alice")
    await alice.rebind("127.0.0.3")
    moved = await alice.next_event(Registered)
    assert isinstance(moved, Registered) and moved.contact.host == "127.0.0.3"
    # A call to the AOR now reaches the new address through the proxy.
    bob = await open_endpoint("bob", "127.0.0.4", kamailio, TransportKind.UDP)
    endpoints.append(bob)
    call_id = bob.act(lambda ua, now: ua.invite(SipUri.parse(f"sip:alice@{DOMAIN}"), now,
                                                body=SDP))
    incoming = await alice.next_event(ev.IncomingCallReceived)
    assert isinstance(incoming, ev.IncomingCallReceived) and incoming.call_id == call_id
    alice.act(lambda ua, now: ua.reject_call(call_id, now, 486))
    failed = await bob.next_event(ev.CallFailed)
    assert isinstance(failed, ev.CallFailed) and failed.status == 486


async def test_call_and_refer_through_the_proxy_with_record_route(
        kamailio: Kamailio, endpoints: list[SipEndpoint]) -> None:
    alice = await open_endpoint("alice", "127.0.0.2", kamailio, TransportKind.UDP)
    bob = await open_endpoint("bob", "127.0.0.3", kamailio, TransportKind.UDP)
    endpoints += [alice, bob]
    await register(alice, kamailio, "alice")
    bob_registered = await register(bob, kamailio, "bob")
    # Call Bob's public GRUU (RFC 5627 §3): this device, through the proxy.
    gruu = bob_registered.pub_gruu
    assert gruu is not None
    call_id = alice.act(lambda ua, now: ua.invite(gruu, now, body=SDP))
    incoming = await bob.next_event(ev.IncomingCallReceived)
    assert isinstance(incoming, ev.IncomingCallReceived)
    record_route = incoming.request.record_route
    assert record_route and record_route[0].uri.port == kamailio.udp_port
    bob.act(lambda ua, now: ua.answer_call(call_id, now, body=SDP))
    assert isinstance(await alice.next_event(ev.CallEstablished), ev.CallEstablished)
    assert isinstance(await bob.next_event(ev.CallEstablished), ev.CallEstablished)
    # REFER in the dialog (RFC 3515), routed by the proxy's Record-Route.
    alice.act(lambda ua, now: ua.refer(call_id, SipUri.parse(f"sip:carol@{DOMAIN}"), now))
    refer = await bob.next_event(ev.ReferReceived)
    assert isinstance(refer, ev.ReferReceived)
    assert refer.refer_to.uri.user == "carol"
    # Both dialogs route through the proxy (RFC 3261 §12.1.1, §12.1.2 route sets).
    for endpoint in (alice, bob):
        dialog = endpoint.ua.call(call_id).dialog
        assert dialog is not None
        assert [r.uri.port for r in dialog.route_set] == [kamailio.udp_port]
    bob.act(lambda ua, now: ua.accept_refer(call_id, now))
    # Bob sends the 202 and then the first NOTIFY, but the proxy's two UDP workers may
    # relay them in either order, and the REFER's sender must take a NOTIFY that comes
    # before its REFER transaction completes (RFC 3515 §2.4.4): wait for both, in any
    # order (waiting for the 202 first dropped an earlier NOTIFY and timed out).
    first = await _events_in_any_order(alice, ev.ReferAnswered, ev.ReferProgressNotified)
    answered, progress = first[ev.ReferAnswered], first[ev.ReferProgressNotified]
    assert isinstance(answered, ev.ReferAnswered) and answered.status == 202
    assert isinstance(progress, ev.ReferProgressNotified) and progress.status == 100
    bob.act(lambda ua, now: ua.notify_refer_progress(call_id, 200, "OK", now))
    done = await alice.next_event(ev.ReferProgressNotified)
    assert isinstance(done, ev.ReferProgressNotified)
    assert done.status == 200 and done.subscription_terminated
    alice.act(lambda ua, now: ua.hangup(call_id, now))
    ended = await bob.next_event(ev.CallEnded)
    assert isinstance(ended, ev.CallEnded) and ended.by_peer


async def test_refresh_before_expiry_through_the_endpoint_timer(
        kamailio: Kamailio, endpoints: list[SipEndpoint]) -> None:
    alice = await open_endpoint("alice", "127.0.0.2", kamailio, TransportKind.UDP)
    endpoints.append(alice)
    client = alice.register(registration("alice", expires=10),
                            (kamailio.ip, kamailio.udp_port))
    first = await alice.next_event(Registered)
    assert isinstance(first, Registered) and first.expires == 10
    # RFC 3261 §10.2.4: refreshed before the 10 s run out (at 5 s here), with the
    # same Call-ID; the endpoint's one timer drives it.
    refreshed = await alice.next_event(Registered, timeout=9.5)
    assert isinstance(refreshed, Registered)
    assert refreshed.pub_gruu == first.pub_gruu
    assert client.state is RegistrationState.REGISTERED


async def test_call_over_tls_both_ways_through_the_proxy(
        kamailio: Kamailio, endpoints: list[SipEndpoint]) -> None:
    """Alice and Bob register over TLS; Kamailio relays Alice's INVITE to Bob over a
    TLS connection it opens to Bob's listening port (our TLS server side)."""
    certs = kamailio.certificates
    assert certs is not None
    alice = await open_endpoint("alice", "127.0.0.2", kamailio, TransportKind.TLS)
    bob = await open_endpoint("bob", "127.0.0.1", kamailio, TransportKind.TLS,
                              server=(certs.server_cert, certs.server_key))
    endpoints += [alice, bob]
    await register(alice, kamailio, "alice")
    registered = await register(bob, kamailio, "bob")
    assert registered.contact.scheme == "sips"
    call_id = alice.act(lambda ua, now: ua.invite(SipUri.parse(f"sips:bob@{DOMAIN}"), now,
                                                  body=SDP))
    incoming = await bob.next_event(ev.IncomingCallReceived)
    assert isinstance(incoming, ev.IncomingCallReceived) and incoming.call_id == call_id
    # The INVITE came in on a connection Kamailio opened to our TLS listener.
    assert any(flow.local == bob.local_address for flow in bob.connections)
    bob.act(lambda ua, now: ua.answer_call(call_id, now, body=SDP))
    assert isinstance(await alice.next_event(ev.CallEstablished), ev.CallEstablished)
    alice.act(lambda ua, now: ua.hangup(call_id, now))
    ended = await bob.next_event(ev.CallEnded)
    assert isinstance(ended, ev.CallEnded) and ended.by_peer

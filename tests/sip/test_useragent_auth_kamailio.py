"""INVITE digest authentication against Kamailio as an authenticating proxy
(RFC 3261 §22.3: 407 Proxy-Authenticate, answered with Proxy-Authorization;
RFC 7616 MD5 and SHA-256).  Kamailio runs from the shared test template with one
block added that challenges every dialog-creating INVITE (``proxy_challenge``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from mobilityd.sip import events as ev
from mobilityd.sip.endpoint import SipEndpoint
from mobilityd.sip.registration import Registered, RegistrationConfig, RegistrationFailed
from mobilityd.sip.transport import TransportKind
from mobilityd.sip.uri import NameAddr, SipUri
from mobilityd.sip.useragent import UaConfig

from . import peers
from .peers import Kamailio, run_kamailio

pytestmark = pytest.mark.interop

DOMAIN = "mobilityd.test"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0\r\n")
ROUTE_ANCHOR = '\tif (is_method("INVITE|REFER|SUBSCRIBE")) {\n\t\trecord_route();'
INVITE_AUTH = """\tif (is_method("INVITE")) {
\t\troute(PASSWORD);
\t\tif (!pv_proxy_authenticate("$fd", "$var(password)", "0")) {
\t\t\tproxy_challenge("$fd", "1");
\t\t\texit;
\t\t}
\t\tconsume_credentials();
\t}
"""


@pytest.fixture(scope="module", params=["MD5", "SHA-256"])
def kamailio(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Kamailio]:
    directory = tmp_path_factory.mktemp(f"kamailio-invite-auth-{request.param}")
    text = peers.KAMAILIO_TEMPLATE.read_text()
    assert ROUTE_ANCHOR in text, "the shared Kamailio template changed: update ROUTE_ANCHOR"
    template = directory / "kamailio-invite-auth.cfg.tmpl"
    template.write_text(text.replace(ROUTE_ANCHOR, INVITE_AUTH + ROUTE_ANCHOR, 1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(peers, "KAMAILIO_TEMPLATE", template)
        with run_kamailio(directory, domain=DOMAIN, users=USERS,
                          algorithm=request.param) as running:
            yield running


async def _endpoint(user: str, host: str, kamailio: Kamailio, *,
                    password: str | None) -> SipEndpoint:
    config = UaConfig(local_uri=NameAddr.parse(f"<sip:{user}@{DOMAIN}>"), host=host, port=0,
                      transport=TransportKind.UDP, contact_user=user,
                      outbound_proxy=SipUri.parse(f"sip:{kamailio.ip}:{kamailio.udp_port}"),
                      auth_username=user if password is not None else None,
                      auth_password=password)
    return await SipEndpoint.open(config, os.urandom)


async def _register(endpoint: SipEndpoint, kamailio: Kamailio, user: str) -> None:
    uuid = {"alice": "a11c", "bob": "0b0b"}[user]
    endpoint.register(RegistrationConfig(
        aor=SipUri.parse(f"sip:{user}@{DOMAIN}"), registrar=SipUri.parse(f"sip:{DOMAIN}"),
        instance_id=f"urn:uuid:00000000-0000-4000-8000-00000000{uuid}", username=user,
        password=USERS[user], expires=300), (kamailio.ip, kamailio.udp_port))
    event = await endpoint.next_event()
    while not isinstance(event, Registered | RegistrationFailed):
        event = await endpoint.next_event()
    assert isinstance(event, Registered), f"{event}\n{kamailio.log_text()[-2000:]}"


@pytest.fixture
async def endpoints() -> AsyncIterator[list[SipEndpoint]]:
    opened: list[SipEndpoint] = []
    yield opened
    for endpoint in opened:
        await endpoint.close()


async def test_invite_challenged_by_the_proxy_is_answered_and_the_call_set_up(
        kamailio: Kamailio, endpoints: list[SipEndpoint]) -> None:
    alice = await _endpoint("alice", "127.0.0.2", kamailio, password=USERS["alice"])
    bob = await _endpoint("bob", "127.0.0.3", kamailio, password=None)
    endpoints += [alice, bob]
    await _register(bob, kamailio, "bob")
    call_id = alice.act(lambda ua, now: ua.invite(SipUri.parse(f"sip:bob@{DOMAIN}"), now,
                                                  body=SDP))
    incoming = await bob.next_event(ev.IncomingCallReceived)
    assert isinstance(incoming, ev.IncomingCallReceived)
    assert incoming.call_id == call_id
    assert incoming.request.cseq.seq == 2  # §22.2: the retried INVITE
    assert incoming.request.headers.get("Proxy-Authorization") is None  # consumed
    bob.act(lambda ua, now: ua.answer_call(call_id, now, body=SDP))
    assert isinstance(await alice.next_event(ev.CallEstablished), ev.CallEstablished)
    alice.act(lambda ua, now: ua.hangup(call_id, now))
    ended = await bob.next_event(ev.CallEnded)
    assert isinstance(ended, ev.CallEnded) and ended.by_peer


async def test_invite_without_credentials_fails_with_the_407(
        kamailio: Kamailio, endpoints: list[SipEndpoint]) -> None:
    alice = await _endpoint("alice", "127.0.0.2", kamailio, password=None)
    endpoints.append(alice)
    alice.act(lambda ua, now: ua.invite(SipUri.parse(f"sip:bob@{DOMAIN}"), now, body=SDP))
    failed = await alice.next_event(ev.CallFailed)
    assert isinstance(failed, ev.CallFailed) and failed.status == 407
    assert failed.response is not None
    assert (failed.response.headers.get("Proxy-Authenticate") or "").startswith("Digest ")


async def test_wrong_password_fails_after_one_retry(
        kamailio: Kamailio, endpoints: list[SipEndpoint]) -> None:
    alice = await _endpoint("alice", "127.0.0.2", kamailio, password="not-it")
    endpoints.append(alice)
    alice.act(lambda ua, now: ua.invite(SipUri.parse(f"sip:bob@{DOMAIN}"), now, body=SDP))
    failed = await alice.next_event(ev.CallFailed)
    assert isinstance(failed, ev.CallFailed) and failed.status == 407
    assert failed.response is not None and failed.response.cseq.seq == 2

"""The sans-I/O REGISTER client (RFC 3261 §10.2, RFC 7616, RFC 5627) against an
in-memory registrar built on our digest verifier, with a hand-advanced clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from mobilityd.sip.digest import (
    DigestAlgorithm,
    DigestCredentials,
    DigestRejected,
    DigestVerifier,
)
from mobilityd.sip.message import Request, Response, make_response, parse_message
from mobilityd.sip.registration import (
    LocalBinding,
    Registered,
    RegistrationClient,
    RegistrationConfig,
    RegistrationError,
    RegistrationFailed,
    RegistrationState,
    Unregistered,
)
from mobilityd.sip.uri import SipUri

INSTANCE = "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"


def make_rng(seed: int = 1) -> Callable[[int], bytes]:
    counter = itertools.count(seed)

    def rng(n: int) -> bytes:
        value = next(counter)
        return bytes((value * 7 + i) % 256 for i in range(n))

    return rng


def config(expires: int = 600) -> RegistrationConfig:
    return RegistrationConfig(aor=SipUri.parse("sip:alice@mobilityd.test"),
                              registrar=SipUri.parse("sip:mobilityd.test"),
                              instance_id=INSTANCE, username="alice", password="pw",
                              expires=expires)


def binding(ip: str = "127.0.0.2", port: int = 5070) -> LocalBinding:
    return LocalBinding("UDP", ip, port, SipUri.parse(f"sip:alice@{ip}:{port}"))


class Registrar:
    """A minimal RFC 3261 §10.3 registrar with RFC 7616 digest and RFC 5627 GRUUs."""

    def __init__(self, algorithm: DigestAlgorithm = DigestAlgorithm.MD5,
                 min_expires: int = 0) -> None:
        self.verifier = DigestVerifier("mobilityd.test", {"alice": "pw"}, make_rng(500),
                                       algorithm=algorithm, nonce_lifetime=3600.0)
        self.bindings: dict[str, int] = {}
        self.min_expires = min_expires
        self.challenges = 0

    def answer(self, request: Request, now: float, *, stale: bool = False) -> Response:
        # Every REGISTER goes over the wire and back, as bytes.
        request = parse_message(bytes(request))  # type: ignore[assignment]
        values = request.headers.get_all("Authorization")
        if not values or stale:
            return self._challenge(request, now, stale)
        try:
            self.verifier.verify(DigestCredentials.parse(values[0]), "REGISTER", now)
        except DigestRejected as exc:
            return self._challenge(request, now, exc.stale)
        for contact in request.contacts:
            expires = contact.expires if contact.expires is not None else 3600
            if 0 < expires < self.min_expires:
                response = make_response(request, 423)
                response.headers.add("Min-Expires", str(self.min_expires))
                return response
            if expires == 0:
                self.bindings.pop(str(contact.uri), None)
            else:
                self.bindings[str(contact.uri)] = expires
        response = make_response(request, 200, to_tag="reg")
        for uri, expires in self.bindings.items():
            response.headers.add(
                "Contact", f'<{uri}>;expires={expires};+sip.instance="<{INSTANCE}>"'
                f';pub-gruu="sip:alice@mobilityd.test;gr={INSTANCE}"'
                f';temp-gruu="sip:tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@mobilityd.test;gr"')
        return parse_message(bytes(response))  # type: ignore[return-value]

    def _challenge(self, request: Request, now: float, stale: bool) -> Response:
        self.challenges += 1
        response = make_response(request, 401, to_tag="reg")
        response.headers.add("WWW-Authenticate", str(self.verifier.challenge(now, stale=stale)))
        return parse_message(bytes(response))  # type: ignore[return-value]


def register(client: RegistrationClient, registrar: Registrar, now: float) -> Registered:
    request: Request | None = client.register(now)
    while request is not None:
        request = client.receive_response(registrar.answer(request, now), now)
    event = client.next_event()
    assert isinstance(event, Registered), event
    return event


def test_first_register_advertises_gruu_support_and_instance() -> None:
    # RFC 5627 §4.1: Supported: gruu and +sip.instance; RFC 3581 §3: rport in Via.
    request = RegistrationClient(config(), binding(), make_rng()).register(0.0)
    assert request.method == "REGISTER" and str(request.uri) == "sip:mobilityd.test"
    assert "gruu" in request.supported
    (contact,) = request.contacts
    assert contact.instance == f"<{INSTANCE}>"
    assert contact.expires == 600
    assert request.top_via.has_rport
    assert request.top_via.branch.startswith("z9hG4bK")  # type: ignore[union-attr]
    assert "Authorization" not in request.headers


def test_digest_challenge_answered_once_then_registered_with_gruus() -> None:
    client, registrar = RegistrationClient(config(), binding(), make_rng()), Registrar()
    first = client.register(10.0)
    retry = client.receive_response(registrar.answer(first, 10.0), 10.0)
    assert retry is not None
    # RFC 3261 §10.2.4 / §8.1.3.5: same Call-ID, CSeq incremented, credentials added.
    assert retry.call_id == first.call_id and retry.cseq.seq == first.cseq.seq + 1
    assert retry.top_via.branch != first.top_via.branch
    assert client.receive_response(registrar.answer(retry, 10.0), 10.0) is None
    event = client.next_event()
    assert isinstance(event, Registered)
    assert event.expires == 600
    assert str(event.pub_gruu) == f"sip:alice@mobilityd.test;gr={INSTANCE}"
    assert event.temp_gruu is not None and "gr" in event.temp_gruu.params
    assert client.state is RegistrationState.REGISTERED
    assert client.get_timer() == pytest.approx(10.0 + 600 * 0.8)


@pytest.mark.parametrize("algorithm", [DigestAlgorithm.MD5, DigestAlgorithm.SHA_256])
def test_refresh_before_expiry_reuses_the_nonce_with_next_count(
        algorithm: DigestAlgorithm) -> None:
    client, registrar = RegistrationClient(config(), binding(), make_rng()), Registrar(algorithm)
    register(client, registrar, 0.0)
    deadline = client.get_timer()
    assert deadline is not None
    assert client.handle_timer(deadline - 1) is None
    refresh = client.handle_timer(deadline)
    assert refresh is not None
    credentials = DigestCredentials.parse(refresh.headers.get("Authorization") or "")
    assert credentials.nc == 2 and credentials.algorithm is algorithm
    challenges = registrar.challenges
    assert client.receive_response(registrar.answer(refresh, deadline), deadline) is None
    assert registrar.challenges == challenges  # no new challenge needed
    assert isinstance(client.next_event(), Registered)


def test_rejected_credentials_fail_after_one_retry() -> None:
    client = RegistrationClient(
        RegistrationConfig(config().aor, config().registrar, INSTANCE, "alice", "wrong"),
        binding(), make_rng())
    registrar = Registrar()
    retry = client.receive_response(registrar.answer(client.register(0.0), 0.0), 0.0)
    assert retry is not None
    assert client.receive_response(registrar.answer(retry, 0.0), 0.0) is None
    event = client.next_event()
    assert isinstance(event, RegistrationFailed) and event.status == 401
    assert client.state is RegistrationState.FAILED
    assert client.last_failure == event == RegistrationFailed(401, "credentials rejected")
    assert client.get_timer() is not None  # tries again later


def test_a_challenge_for_another_realm_is_not_answered() -> None:
    """RFC 7616 §3.3: the credentials belong to the configured realm; a challenge for
    another one fails without sending them (the registrar's realm is mobilityd.test)."""
    client = RegistrationClient(
        RegistrationConfig(config().aor, config().registrar, INSTANCE, "alice", "pw",
                           realm="other.example"), binding(), make_rng())
    registrar = Registrar()
    assert client.receive_response(registrar.answer(client.register(0.0), 0.0), 0.0) is None
    event = client.next_event()
    assert isinstance(event, RegistrationFailed) and event.status == 401
    assert "realm 'mobilityd.test'" in event.reason and "'other.example'" in event.reason
    assert client.last_failure == event and registrar.challenges == 1


def test_the_configured_realm_is_answered_and_success_clears_the_failure() -> None:
    client = RegistrationClient(
        RegistrationConfig(config().aor, config().registrar, INSTANCE, "alice", "pw",
                           realm="mobilityd.test"), binding(), make_rng())
    request = client.register(0.0)
    assert client.receive_response(make_response(request, 503), 0.0) is None
    assert client.last_failure == client.next_event() == RegistrationFailed(
        503, "Service Unavailable")
    register(client, Registrar(), 40.0)
    assert client.last_failure is None


def test_stale_nonce_is_retried_without_failing() -> None:
    client, registrar = RegistrationClient(config(), binding(), make_rng()), Registrar()
    register(client, registrar, 0.0)
    refresh = client.handle_timer(client.get_timer() or 0.0)
    assert refresh is not None
    retry = client.receive_response(registrar.answer(refresh, 500.0, stale=True), 500.0)
    assert retry is not None  # RFC 7616 §3.3 stale=true: retry with the new nonce
    assert client.receive_response(registrar.answer(retry, 500.0), 500.0) is None
    assert isinstance(client.next_event(), Registered)


def test_interval_too_brief_is_retried_with_min_expires() -> None:
    client = RegistrationClient(config(expires=30), binding(), make_rng())
    event = register(client, Registrar(min_expires=120), 0.0)
    assert event.expires == 120  # RFC 3261 §10.2.8


def test_move_registers_new_contact_and_removes_the_old() -> None:
    client, registrar = RegistrationClient(config(), binding(), make_rng()), Registrar()
    register(client, registrar, 0.0)
    request = client.move(binding("127.0.0.3"), 5.0)
    contacts = {str(c.uri): c.expires for c in request.contacts}
    assert contacts == {"sip:alice@127.0.0.2:5070": 0, "sip:alice@127.0.0.3:5070": 600}
    assert request.top_via.host == "127.0.0.3"
    assert client.receive_response(registrar.answer(request, 5.0), 5.0) is None
    event = client.next_event()
    assert isinstance(event, Registered)
    assert str(event.contact) == "sip:alice@127.0.0.3:5070"
    assert list(registrar.bindings) == ["sip:alice@127.0.0.3:5070"]
    # The next refresh no longer mentions the old Contact.
    refresh = client.handle_timer(client.get_timer() or 0.0)
    assert refresh is not None and len(refresh.contacts) == 1


def test_unregister_removes_the_binding() -> None:
    client, registrar = RegistrationClient(config(), binding(), make_rng()), Registrar()
    register(client, registrar, 0.0)
    request: Request | None = client.unregister(1.0)
    assert request is not None and request.contacts[0].expires == 0
    while request is not None:
        request = client.receive_response(registrar.answer(request, 1.0), 1.0)
    assert isinstance(client.next_event(), Unregistered)
    assert registrar.bindings == {} and client.get_timer() is None


def test_final_error_and_timeouts_fail_with_their_status() -> None:
    client = RegistrationClient(config(), binding(), make_rng())
    request = client.register(0.0)
    assert client.receive_response(make_response(request, 403), 0.0) is None
    event = client.next_event()
    assert event == RegistrationFailed(403, "Forbidden")
    client.register(40.0)
    client.transaction_failed(408, "Request Timeout", 40.0)
    assert client.next_event() == RegistrationFailed(408, "Request Timeout")


def test_foreign_response_is_a_local_error() -> None:
    client = RegistrationClient(config(), binding(), make_rng())
    request = client.register(0.0)
    other = make_response(request, 200)
    other.headers.set("CSeq", "99 REGISTER")
    with pytest.raises(RegistrationError):
        client.receive_response(other, 0.0)
    assert client.receive_response(make_response(request, 100), 0.0) is None

"""Digest authentication of our INVITE and re-INVITE (RFC 3261 §22.2, §22.3;
RFC 7616 §3.4), in memory against ``DigestVerifier`` on the UAS side."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mobilityd.sip import events as ev
from mobilityd.sip.digest import (
    DigestAlgorithm,
    DigestCredentials,
    DigestError,
    DigestVerifier,
)
from mobilityd.sip.message import Request
from mobilityd.sip.ua import auth
from mobilityd.sip.ua.memnet import MemoryNetwork, Node
from mobilityd.sip.ua.session import CallPhase
from tests.sip.uafixtures import SDP, bob_uri, pair, seeded_rng

Handler = Callable[[Node, ev.Event, float], None]


class DigestGuard:
    """Bob's application: challenge every INVITE / re-INVITE without valid
    credentials (401 + WWW-Authenticate, or 407 + Proxy-Authenticate)."""

    def __init__(self, *, status: int = 401, guard_reinvites: bool = False,
                 algorithm: DigestAlgorithm = DigestAlgorithm.MD5) -> None:
        self.status = status
        self.guard_reinvites = guard_reinvites
        self.guard_invites = True
        self.verifier = DigestVerifier(realm="example.org", passwords={"alice": "s3cret"},
                                       rng=seeded_rng(99), algorithm=algorithm)
        self.seen: list[Request] = []
        self.authenticated: list[str] = []

    @property
    def challenge_header(self) -> str:
        return "WWW-Authenticate" if self.status == 401 else "Proxy-Authenticate"

    @property
    def answer_header(self) -> str:
        return "Authorization" if self.status == 401 else "Proxy-Authorization"

    def allowed(self, request: Request, now: float) -> bool:
        self.seen.append(request)
        value = request.headers.get(self.answer_header)
        if value is None:
            return False
        try:
            credentials = DigestCredentials.parse(value)
            assert credentials.uri == str(request.uri)  # RFC 7616 §3.4: digest-uri
            user = self.verifier.verify(credentials, request.method, now, request.body)
        except DigestError:
            return False
        self.authenticated.append(user)
        return True

    def challenge_headers(self, now: float) -> tuple[tuple[str, str], ...]:
        return ((self.challenge_header, str(self.verifier.challenge(now))),)

    def __call__(self, node: Node, event: ev.Event, now: float) -> None:
        ua = node.ua
        if isinstance(event, ev.IncomingCallReceived):
            if not self.guard_invites or self.allowed(event.request, now):
                ua.answer_call(event.call_id, now, 180)
                ua.answer_call(event.call_id, now, 200, body=SDP)
            else:
                ua.reject_call(event.call_id, now, self.status, headers=self.challenge_headers(now))
        elif isinstance(event, ev.ReinviteReceived):
            if not self.guard_reinvites or self.allowed(event.request, now):
                ua.accept_reinvite(event.call_id, now, body=SDP)
            else:
                ua.refuse_reinvite(event.call_id, now, self.status,
                                   headers=self.challenge_headers(now))


def _call(guard: DigestGuard, username: str | None = None, password: str | None = None
          ) -> tuple[Node, Node, str, MemoryNetwork]:
    net, alice, bob = pair(bob_handler=guard, auth_username=username, auth_password=password)
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallEstablished) or alice.of_type(ev.CallFailed)))
    return alice, bob, call_id, net


def test_401_is_answered_once_with_credentials_and_the_call_is_set_up() -> None:
    """§22.2: same Call-ID and From tag, CSeq + 1, new branch, Authorization."""
    guard = DigestGuard()
    alice, _bob, call_id, _net = _call(guard, "alice", "s3cret")
    assert alice.of_type(ev.CallEstablished) and not alice.of_type(ev.CallFailed)
    first, second = guard.seen
    assert first.call_id == second.call_id == call_id
    assert (first.cseq.seq, second.cseq.seq) == (1, 2)
    assert first.from_.tag == second.from_.tag
    assert first.headers.get("Via") != second.headers.get("Via")  # new branch
    assert second.body == first.body == SDP
    assert guard.authenticated == ["alice"]


def test_407_is_answered_with_proxy_authorization() -> None:
    """§22.3: a proxy's challenge is answered in Proxy-Authorization."""
    guard = DigestGuard(status=407, algorithm=DigestAlgorithm.SHA_256)
    alice, _bob, _call_id, _net = _call(guard, "alice", "s3cret")
    assert alice.of_type(ev.CallEstablished)
    second = guard.seen[1]
    assert second.headers.get("Authorization") is None
    assert "algorithm=SHA-256" in (second.headers.get("Proxy-Authorization") or "")


def test_401_without_credentials_fails_the_call_with_the_challenge() -> None:
    guard = DigestGuard()
    alice, _bob, _call_id, _net = _call(guard)
    (failed,) = alice.of_type(ev.CallFailed)
    assert isinstance(failed, ev.CallFailed) and failed.status == 401
    assert failed.response is not None
    assert (failed.response.headers.get("WWW-Authenticate") or "").startswith("Digest ")
    assert len(guard.seen) == 1


def test_wrong_password_fails_after_exactly_one_retry() -> None:
    """§22.2: a second challenge means the credentials were refused - no loop."""
    guard = DigestGuard()
    alice, _bob, _call_id, net = _call(guard, "alice", "wrong")
    (failed,) = alice.of_type(ev.CallFailed)
    assert isinstance(failed, ev.CallFailed) and failed.status == 401
    assert len(guard.seen) == 2
    assert alice.ua.calls in (0, 1)  # at most the ended call kept for 64*T1
    assert not alice.of_type(ev.CallEstablished)
    assert guard.authenticated == []
    net.advance(40.0)
    assert alice.ua.calls == 0 and alice.ua.transactions == 0


def _established_both(alice: Node, bob: Node, call_id: str) -> bool:
    return (alice.ua.call(call_id).phase is CallPhase.ESTABLISHED
            and bob.ua.call(call_id).phase is CallPhase.ESTABLISHED)


def test_challenged_reinvite_is_retried_with_credentials() -> None:
    """§22.2 in a dialog: the re-INVITE is sent again with the dialog's next CSeq."""
    guard = DigestGuard(guard_reinvites=True)
    net, alice, bob = pair(bob_handler=guard, auth_username="alice", auth_password="s3cret")
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallEstablished)))
    alice.ua.reinvite(call_id, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ReinviteAccepted) or alice.of_type(ev.ReinviteFailed)))
    assert alice.of_type(ev.ReinviteAccepted) and not alice.of_type(ev.ReinviteFailed)
    reinvites = guard.seen[2:]
    assert [r.cseq.seq for r in reinvites] == [3, 4]
    assert reinvites[0].headers.get("Authorization") is None
    assert reinvites[1].headers.get("Authorization") is not None
    net.advance(40.0)
    assert _established_both(alice, bob, call_id)


def test_refused_credentials_fail_the_reinvite_and_keep_the_call() -> None:
    """Only the re-INVITE is guarded and Alice's password is wrong: one retry, then
    ``ReinviteFailed`` with the 401; the dialog stays (§14.1)."""
    guard = DigestGuard(guard_reinvites=True)
    guard.guard_invites = False
    net, alice, bob = pair(bob_handler=guard, auth_username="alice", auth_password="wrong")
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallEstablished)))
    alice.ua.reinvite(call_id, net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.ReinviteFailed)))
    (failed,) = alice.of_type(ev.ReinviteFailed)
    assert isinstance(failed, ev.ReinviteFailed) and failed.status == 401
    assert failed.response is not None
    assert len(guard.seen) == 2  # the challenged re-INVITE and its one retry
    net.advance(40.0)
    assert _established_both(alice, bob, call_id)


def test_challenged_refer_is_retried_with_credentials() -> None:
    """§22.2 for a non-INVITE in-dialog request (RFC 3515 REFER): one retry with the
    dialog's next CSeq and Authorization, then the 202 is reported."""
    guard = DigestGuard()
    guard.guard_invites = False
    seen_refers: list[Request] = []

    def bob_app(node: Node, event: ev.Event, now: float) -> None:
        if isinstance(event, ev.ReferReceived):
            seen_refers.append(event.request)
            if event.request.headers.get("Authorization") is None:
                node.ua.refuse_refer(event.call_id, now, 401,
                                     headers=guard.challenge_headers(now))
            else:
                node.ua.accept_refer(event.call_id, now)
        else:
            guard(node, event, now)

    net, alice, _bob = pair(bob_handler=bob_app, auth_username="alice",
                            auth_password="s3cret")
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallEstablished)))
    alice.ua.refer(call_id, bob_uri(), net.now)
    net.run(lambda: bool(alice.of_type(ev.ReferAnswered)))
    (answered,) = alice.of_type(ev.ReferAnswered)
    assert isinstance(answered, ev.ReferAnswered) and answered.status == 202
    assert [r.cseq.seq for r in seen_refers] == [2, 3]
    assert guard.allowed(seen_refers[1], net.now)


def _reject_with(headers: tuple[tuple[str, str], ...]) -> Handler:
    def handler(node: Node, event: ev.Event, now: float) -> None:
        if isinstance(event, ev.IncomingCallReceived):
            node.ua.reject_call(event.call_id, now, 401, headers=headers)
    return handler


@pytest.mark.parametrize("headers", [
    (),
    (("WWW-Authenticate", 'Basic realm="x"'),),
    (("WWW-Authenticate", 'Digest realm="x"'),),  # no nonce
    (("WWW-Authenticate", 'Digest realm="x", nonce="n", algorithm=SHA-512-256'),),
    (("WWW-Authenticate", 'Digest realm="x", nonce="n", qop="auth-conf"'),),
    (("WWW-Authenticate", 'Digest realm="x", nonce="\\'),),
], ids=["none", "basic", "no-nonce", "algorithm", "qop", "unterminated"])
def test_unusable_challenges_fail_the_call_without_a_retry(
        headers: tuple[tuple[str, str], ...]) -> None:
    """A 401 whose WWW-Authenticate we cannot answer (no Digest, broken parameters,
    unknown algorithm, none at all) ends in ``CallFailed`` 401 - never an exception
    and never a retry (RFC 7616 §3.3, RFC 3261 §22.2)."""
    net, alice, bob = pair(bob_handler=_reject_with(headers), auth_username="alice",
                           auth_password="s3cret")
    alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(alice.of_type(ev.CallFailed)))
    (failed,) = alice.of_type(ev.CallFailed)
    assert isinstance(failed, ev.CallFailed) and failed.status == 401
    assert len(bob.of_type(ev.IncomingCallReceived)) == 1


class StaleGuard(DigestGuard):
    """Calls the first ``stale_answers`` valid answers stale (RFC 7616 §3.3: as if
    their nonce had expired) and challenges again with ``stale=true``."""

    def __init__(self, stale_answers: int) -> None:
        super().__init__()
        self.stale_answers = stale_answers

    def __call__(self, node: Node, event: ev.Event, now: float) -> None:
        if (isinstance(event, ev.IncomingCallReceived) and self.stale_answers
                and event.request.headers.get("Authorization") is not None):
            self.stale_answers -= 1
            self.seen.append(event.request)
            stale = str(self.verifier.challenge(now, stale=True))
            node.ua.reject_call(event.call_id, now, 401,
                                headers=(("WWW-Authenticate", stale),))
            return
        super().__call__(node, event, now)


def test_stale_nonce_is_retried_without_giving_up() -> None:
    """RFC 7616 §3.3: stale=true - the credentials were right, the nonce old; the UA
    answers the fresh nonce (once more than the §22.2 single retry)."""
    guard = StaleGuard(stale_answers=1)
    alice, _bob, _call_id, _net = _call(guard, "alice", "s3cret")
    assert alice.of_type(ev.CallEstablished)
    assert [r.cseq.seq for r in guard.seen] == [1, 2, 3]
    assert len(guard.seen[2].headers.get_all("Authorization")) == 1  # replaced, not added


def test_endless_stale_challenges_are_bounded() -> None:
    """A server that calls every nonce stale gets 1 + MAX_STALE_RETRIES answers."""
    guard = StaleGuard(stale_answers=100)
    alice, _bob, _call_id, _net = _call(guard, "alice", "s3cret")
    (failed,) = alice.of_type(ev.CallFailed)
    assert isinstance(failed, ev.CallFailed) and failed.status == 401
    assert len(guard.seen) == 2 + auth.MAX_STALE_RETRIES

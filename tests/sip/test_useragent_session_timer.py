"""Session timers as an option (RFC 4028): refresh by re-INVITE, BYE on expiry."""

from __future__ import annotations

from mobilityd.sip import events as ev
from mobilityd.sip.ua.session import CallPhase
from tests.sip.uafixtures import SDP, bob_uri, pair


def test_refresher_keeps_the_session_alive() -> None:
    """RFC 4028 §7.1/§9: the UAC asks for 90 s; the UAS answers refresher=uac with
    Require: timer; the UAC re-INVITEs every 45 s (§10) and nobody expires."""
    net, alice, bob = pair(session_expires=90)
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(bob.of_type(ev.CallEstablished)))
    (established,) = alice.of_type(ev.CallEstablished)
    assert isinstance(established, ev.CallEstablished)
    response = established.message
    assert response.headers.get("Session-Expires") == "90;refresher=uac"
    assert response.headers.get_all("Require") == ["timer"]
    net.advance(200.0)
    refreshes = alice.of_type(ev.SessionRefreshDue)
    assert len(refreshes) == 4  # at ~45, 90, 135, 180 s
    assert len(alice.of_type(ev.ReinviteAccepted)) == 4
    assert alice.ua.call(call_id).phase is CallPhase.ESTABLISHED
    assert bob.ua.call(call_id).phase is CallPhase.ESTABLISHED
    assert not bob.of_type(ev.CallEnded)


def test_missing_refresh_ends_the_session() -> None:
    """RFC 4028 §10: without a refresh, the other side sends BYE at
    interval - min(32, interval/3) = 60 s for 90 s."""
    net, alice, bob = pair(session_expires=90)
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run(lambda: bool(bob.of_type(ev.CallEstablished)))
    start = net.now
    net._drop = lambda data, source, dest: data.startswith(b"INVITE ")
    net.run(lambda: bool(bob.of_type(ev.CallEnded)))
    (ended,) = bob.of_type(ev.CallEnded)
    assert isinstance(ended, ev.CallEnded) and "session expired" in ended.reason
    assert 59.0 <= net.now - start <= 61.0
    net.run(lambda: bool(alice.of_type(ev.CallEnded)))
    assert alice.of_type(ev.CallEnded)[0] == ev.CallEnded(call_id, True, "BYE received")


def test_too_small_interval_gets_422_with_min_se() -> None:
    """RFC 4028 §9/§6: Session-Expires below 90 s from a timer-capable UAC: 422 with
    Min-SE: 90; the call is not created."""
    net, alice, bob = pair(session_expires=30)
    sent: list[bytes] = []

    def record(data: bytes, source: object, dest: object) -> bool:
        sent.append(data)
        return False

    net._drop = record
    call_id = alice.ua.invite(bob_uri(), net.now, body=SDP)
    net.run()
    (answer,) = [d for d in sent if d.startswith(b"SIP/2.0 422 ")]
    assert b"\r\nMin-SE: 90\r\n" in answer
    (failed,) = alice.of_type(ev.CallFailed)
    assert failed == ev.CallFailed(call_id, 422, "Session Interval Too Small")
    assert not bob.of_type(ev.IncomingCallReceived)

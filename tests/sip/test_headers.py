"""Headers multi-dict and typed header values (RFC 3261 §7.3, §20; RFC 3891; RFC 4028;
RFC 6665; RFC 7616)."""

from __future__ import annotations

import pytest

from mobilityd.sip.errors import SipParseError
from mobilityd.sip.headers import (
    AuthChallenge,
    AuthCredentials,
    CSeq,
    Event,
    Headers,
    Replaces,
    SessionExpires,
    SubscriptionState,
    Via,
    canonical_name,
    parse_max_forwards,
    parse_token_list,
)


def test_compact_and_case_insensitive_names() -> None:
    # RFC 3261 §7.3.3 and the compact forms of RFC 3515, 3892, 4028, 6665.
    for short, long in [
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("f", "From"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("t", "To"),
        ("v", "Via"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
        ("o", "Event"),
        ("x", "Session-Expires"),
        ("u", "Allow-Events"),
    ]:
        assert canonical_name(short) == long
        assert canonical_name(short.upper()) == long
    assert canonical_name("CALL-ID") == "Call-ID"
    assert canonical_name("X-Custom") == "X-Custom"


def test_headers_ordered_multi_dict() -> None:
    headers = Headers([("v", "SIP/2.0/UDP a"), ("To", "<sip:b@b>"), ("VIA", "SIP/2.0/UDP c")])
    assert list(headers) == [
        ("Via", "SIP/2.0/UDP a"),
        ("To", "<sip:b@b>"),
        ("Via", "SIP/2.0/UDP c"),
    ]
    assert headers.get("via") == "SIP/2.0/UDP a"
    assert headers.get_all("Via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP c"]
    assert "t" in headers and "From" not in headers
    headers.prepend("Via", "SIP/2.0/TCP z")
    assert headers.get("Via") == "SIP/2.0/TCP z"
    assert headers.remove_first("Via") == "SIP/2.0/TCP z"
    headers.set("Via", "SIP/2.0/UDP only")
    assert list(headers) == [("Via", "SIP/2.0/UDP only"), ("To", "<sip:b@b>")]
    headers.add("Max-Forwards", "70")
    assert headers.remove("via") == 1
    assert len(headers) == 2
    copy = headers.copy()
    copy.add("X", "1")
    assert len(headers) == 2 and copy != headers


def test_via_with_lws_around_separators() -> None:
    # RFC 3261 §20.42 example.
    via = Via.parse(
        "SIP / 2.0 / UDP first.example.com: 4000;ttl=16"
        " ;maddr=224.2.0.1 ;branch=z9hG4bKa7c6a8dlze.1"
    )
    assert (via.transport, via.host, via.port) == ("UDP", "first.example.com", 4000)
    assert via.ttl == 16 and via.maddr == "224.2.0.1" and via.branch == "z9hG4bKa7c6a8dlze.1"
    assert (
        str(via)
        == "SIP/2.0/UDP first.example.com:4000;ttl=16;maddr=224.2.0.1;branch=z9hG4bKa7c6a8dlze.1"
    )


def test_via_received_rport() -> None:
    # RFC 3581 §4 example.
    via = Via.parse(
        "SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;rport=9988;branch=z9hG4bKkjshdyff"
    )
    assert via.received == "192.0.2.1" and via.rport == 9988 and via.has_rport
    request_via = Via.parse("SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff")
    assert request_via.has_rport and request_via.rport is None
    assert str(request_via.with_params(received="192.0.2.1", rport="9988")).endswith(
        ";rport=9988;branch=z9hG4bKkjshdyff;received=192.0.2.1"
    )


def test_via_ipv6() -> None:
    via = Via.parse("SIP/2.0/TCP [2001:db8::9:1]:5060;received=2001:db8::9:255;branch=z9hG4bKas3")
    assert via.host == "2001:db8::9:1" and via.received == "2001:db8::9:255"
    assert str(via).startswith("SIP/2.0/TCP [2001:db8::9:1]:5060;")


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP",  # no sent-by
        "SIP/2.0 host",  # no transport
        "SIP/2.0/UDP 192.0.2.15;;",  # RFC 4475 §3.1.2.1
        "SIP/2.0/UDP host;ttl=300",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP host;received=not_an_ip",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP host junk",
    ],
)
def test_bad_via(text: str) -> None:
    with pytest.raises(SipParseError):
        Via.parse(text)


def test_cseq() -> None:
    assert CSeq.parse("4711 INVITE") == CSeq(4711, "INVITE")
    assert str(CSeq(1, "ACK")) == "1 ACK"
    assert CSeq.parse(f"{2**32 - 1} BYE").seq == 2**32 - 1
    for bad in ["", "INVITE", "1", "-1 INVITE", "36893488147419103232 REGISTER", "1 IN VITE"]:
        with pytest.raises(SipParseError):
            CSeq.parse(bad)


def test_max_forwards_range() -> None:
    assert parse_max_forwards("70") == 70
    for bad in ["300", "-1", "", "7 0", "\u0667"]:
        with pytest.raises(SipParseError):
            parse_max_forwards(bad)


def test_token_lists() -> None:
    assert parse_token_list(["timer, 100rel", "replaces"], "Supported") == [
        "timer",
        "100rel",
        "replaces",
    ]
    with pytest.raises(SipParseError):
        parse_token_list(["a b"], "Require")


def test_replaces_rfc3891() -> None:
    # RFC 3891 §6.1 example.
    rep = Replaces.parse("98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff;early-only")
    assert (rep.call_id, rep.to_tag, rep.from_tag, rep.early_only) == (
        "98732@sip.example.com",
        "ff87ff",
        "r33th4x0r",
        True,
    )
    assert Replaces.parse(str(rep)) == rep
    with pytest.raises(SipParseError):
        Replaces.parse("98732@sip.example.com;from-tag=x")


def test_event_and_subscription_state_rfc6665() -> None:
    event = Event.parse("refer;id=93809824")
    assert (event.package, event.id) == ("refer", "93809824")
    assert str(event) == "refer;id=93809824"
    state = SubscriptionState.parse("terminated;reason=noresource")
    assert (state.state, state.reason, state.expires) == ("terminated", "noresource", None)
    active = SubscriptionState.parse("active;expires=60")
    assert active.expires == 60 and str(active) == "active;expires=60"
    with pytest.raises(SipParseError):
        Event.parse("refer;id=")


def test_session_expires_rfc4028() -> None:
    se = SessionExpires.parse("4000;refresher=uac")
    assert (se.delta, se.refresher) == (4000, "uac")
    assert str(se) == "4000;refresher=uac"
    with pytest.raises(SipParseError):
        SessionExpires.parse("4000;refresher=proxy")


def test_digest_challenge_rfc7616() -> None:
    # RFC 7616 §3.9.1 shaped challenge.
    text = (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    challenge = AuthChallenge.parse(text)
    assert challenge.scheme == "Digest"
    assert challenge.params["realm"] == "http-auth@example.org"
    assert challenge.params["algorithm"] == "SHA-256"
    assert challenge.qop_options == ["auth", "auth-int"]
    assert AuthChallenge.parse(str(challenge)) == challenge


def test_digest_credentials() -> None:
    creds = AuthCredentials(
        "Digest",
        {
            "username": "bob",
            "realm": "biloxi.com",
            "nonce": "dcd98b",
            "uri": "sip:bob@biloxi.com",
            "qop": "auth",
            "nc": "00000001",
            "cnonce": "0a4f113b",
            "response": "6629fae4",
            "algorithm": "MD5",
        },
    )
    text = str(creds)
    assert 'username="bob"' in text and "qop=auth" in text and "nc=00000001" in text
    assert "algorithm=MD5" in text
    assert AuthCredentials.parse(text) == creds


@pytest.mark.parametrize(
    "text",
    ['Digest realm="a", realm="b"', 'Digest realm="a",', "Digest realm", 'Digest realm="x'],
)
def test_bad_auth(text: str) -> None:
    with pytest.raises(SipParseError):
        AuthChallenge.parse(text)

"""SIP message parsing, serialising and typed access (RFC 3261 §7, §8.2.6, §18.3, §20)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobilityd.sip.errors import SipParseError, SipUsageError, StatusCode
from mobilityd.sip.grammar import split_top_level
from mobilityd.sip.headers import Headers, Replaces
from mobilityd.sip.message import (
    ParseLimits,
    Request,
    Response,
    make_response,
    parse_message,
    reason_phrase,
)
from mobilityd.sip.uri import NameAddr, SipUri

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 pc33.atlanta.com\r\ns=-\r\n"
    b"c=IN IP4 pc33.atlanta.com\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)


def invite(body: bytes = SDP, extra: bytes = b"", length: int | None = None) -> bytes:
    # RFC 3261 §24.2 F1, with our own body.
    cl = len(body) if length is None else length
    return (
        b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n"
        b"Max-Forwards: 70\r\n"
        b"To: Bob <sip:bob@biloxi.com>\r\n"
        b"From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
        b"Call-ID: a84b4c76e66710\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"Contact: <sip:alice@pc33.atlanta.com>\r\n"
        + extra
        + b"Content-Type: application/sdp\r\n"
        + b"Content-Length: "
        + str(cl).encode()
        + b"\r\n\r\n"
        + body
    )


def test_invite_typed_access() -> None:
    msg = parse_message(invite())
    assert isinstance(msg, Request)
    assert msg.method == "INVITE" and msg.uri == SipUri.parse("sip:bob@biloxi.com")
    (via,) = msg.vias
    assert (
        via.transport == "UDP" and via.host == "pc33.atlanta.com" and via.branch == "z9hG4bKnashds8"
    )
    assert msg.top_via == via
    assert msg.from_.tag == "1928301774" and msg.from_.display_name == "Alice"
    assert msg.to.tag is None and msg.to.uri.user == "bob"
    assert msg.call_id == "a84b4c76e66710"
    assert (msg.cseq.seq, msg.cseq.method) == (314159, "INVITE")
    assert [str(c.uri) for c in msg.contacts] == ["sip:alice@pc33.atlanta.com"]
    assert msg.max_forwards == 70
    assert msg.content_type == "application/sdp"
    assert msg.body == SDP


def test_round_trip_is_stable() -> None:
    msg = parse_message(invite())
    data = bytes(msg)
    assert data == invite()  # already canonical
    assert parse_message(data) == msg


def test_serializer_sets_content_length() -> None:
    headers = Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("Content-Length", "999")])
    data = bytes(Request("MESSAGE", SipUri.parse("sip:a@b"), headers, b"hello"))
    assert data.endswith(b"Content-Length: 5\r\n\r\nhello")
    assert data.count(b"Content-Length") == 1


def test_compact_forms_folding_and_multi_values() -> None:
    data = (
        b"OPTIONS sip:user@example.com SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1,\r\n"
        b" SIP/2.0/TCP b.example.com;branch=z9hG4bK2\r\n"
        b"t: <sip:user@example.com>\r\n"
        b'f: "Doe, John" <sip:john@example.com>;tag=7\r\n'
        b"i: abc@host\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b'm: "A, B" <sip:a@h>;q=0.5, <sip:b@h;x=1>\r\n'
        b"k: timer,\r\n\t100rel\r\n"
        b"Subject: first line\r\n   second line\r\n"
        b'WWW-Authenticate: Digest realm="a", nonce="b"\r\n'
        b"l: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert [v.host for v in msg.vias] == ["a.example.com", "b.example.com"]
    assert msg.from_.display_name == "Doe, John"
    assert [c.display_name for c in msg.contacts] == ["A, B", None]
    assert msg.supported == ["timer", "100rel"]
    assert msg.headers.get("Subject") == "first line second line"
    assert msg.www_authenticate[0].params == {"realm": "a", "nonce": "b"}
    assert msg.headers.get_all("WWW-Authenticate") == ['Digest realm="a", nonce="b"']


_FOLD_BASE = (
    b"OPTIONS sip:user@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n"
    b"To: <sip:user@example.com>\r\n"
    b"From: <sip:john@example.com>;tag=7\r\n"
    b"Call-ID: abc@host\r\n"
    b"CSeq: 1 OPTIONS\r\n"
)


@pytest.mark.parametrize(
    ("folded", "unfolded"),
    [
        (b"Route: <sip:p1@h;lr>,\r\n <sip:p2@h;lr>\r\n",
         b"Route: <sip:p1@h;lr>, <sip:p2@h;lr>\r\n"),
        (b"Subject:\r\n\tlunch\r\n", b"Subject: lunch\r\n"),
        (b"Allow: INVITE\r\n ,ACK\r\n", b"Allow: INVITE ,ACK\r\n"),
        (b"Max-Forwards:\r\n  70\r\n", b"Max-Forwards: 70\r\n"),
        (b"X-Note: a\r\n b\r\n c\r\n", b"X-Note: a b c\r\n"),
    ],
)
def test_folded_lines_parse_as_their_unfolded_form(folded: bytes, unfolded: bytes) -> None:
    """RFC 3261 §7.3.1: a continuation line (leading SP/HTAB) belongs to the field
    above it, even when that field's first line alone would not parse."""
    a = parse_message(_FOLD_BASE + folded + b"Content-Length: 0\r\n\r\n")
    b = parse_message(_FOLD_BASE + unfolded + b"Content-Length: 0\r\n\r\n")
    assert a.headers == b.headers
    assert bytes(a) == bytes(b)


def test_continuation_before_any_field_is_refused() -> None:
    """RFC 3261 §7.3.1: folding continues a header field; there is none to continue."""
    with pytest.raises(SipParseError, match="continuation line"):
        parse_message(b"OPTIONS sip:u@h SIP/2.0\r\n Via: SIP/2.0/UDP h\r\n\r\n")


def test_refer_with_replaces_and_referred_by() -> None:
    data = (
        b"REFER sip:bob@192.0.2.4 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bK3\r\n"
        b"To: <sip:bob@example.com>;tag=1\r\nFrom: <sip:alice@example.com>;tag=2\r\n"
        b"Call-ID: c@x\r\nCSeq: 2 REFER\r\n"
        b"r: <sip:carol@example.com?Replaces=abc%40h%3Bto-tag%3Dt1%3Bfrom-tag%3Df1>\r\n"
        b"b: <sip:alice@example.com>\r\n"
        b"o: refer;id=2\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(data)
    refer_to = msg.refer_to
    assert refer_to is not None
    assert Replaces.parse(refer_to.uri.headers["Replaces"]) == Replaces("abc@h", "t1", "f1")
    assert msg.refer_to_replaces == Replaces("abc@h", "t1", "f1")
    assert msg.referred_by == NameAddr.parse("<sip:alice@example.com>")
    event = msg.event
    assert event is not None and event.id == "2"


def test_response_parse_and_empty_reason() -> None:
    data = (
        b"SIP/2.0 200 \r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"To: <sip:b@b>;tag=9\r\nFrom: <sip:a@a>;tag=1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert isinstance(msg, Response) and msg.status == 200 and msg.reason == ""


def test_datagram_content_length_rules() -> None:
    # RFC 3261 §18.3: extra octets are discarded, fewer octets than announced is 400.
    msg = parse_message(invite() + b"garbage")
    assert msg.body == SDP
    with pytest.raises(SipParseError) as info:
        parse_message(invite(length=len(SDP) + 10))
    assert info.value.status == 400 and "Content-Length" in info.value.reason
    assert info.value.partial is not None
    # Content-Length is optional on datagrams.
    no_cl = invite().replace(b"Content-Length: %d\r\n" % len(SDP), b"")
    assert parse_message(no_cl).body == SDP
    with pytest.raises(SipParseError):
        parse_message(no_cl, datagram=False)


@pytest.mark.parametrize(
    ("mutation", "status", "words"),
    [
        (
            (b"INVITE sip:bob@biloxi.com SIP/2.0", b"INVITE sip:bob@biloxi.com SIP/3.0"),
            505,
            "version",
        ),
        ((b"INVITE sip:bob@biloxi.com", b"INVITE <sip:bob@biloxi.com>"), 400, "Request-URI"),
        ((b"INVITE sip:bob@biloxi.com", b"INVITE  sip:bob@biloxi.com"), 400, "Request-Line"),
        ((b"INVITE sip:bob@biloxi.com", b"INVITE sip:bob@biloxi.com?a=b"), 400, "headers"),
        ((b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"), 400, "CSeq"),
        ((b"Max-Forwards: 70", b"Max-Forwards: 300"), 400, "Max-Forwards"),
        (
            (b"Contact: <sip:alice@pc33.atlanta.com>", b"Contact: <sip:alice@pc33.atlanta.com>;;"),
            400,
            "parameter",
        ),
        ((b"Content-Length: ", b"Content-Length: -"), 400, "Content-Length"),
        (
            (b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nContent-Length: 1\r\n"),
            400,
            "Content-Length",
        ),
        ((b"Call-ID: a84b4c76e66710", b"Call-ID: a b"), 400, "Call-ID"),
        ((b"Max-Forwards", b"Max Forwards"), 400, "header field line"),
    ],
)
def test_bad_requests_answerable(mutation: tuple[bytes, bytes], status: int, words: str) -> None:
    data = invite().replace(*mutation)
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == status
    assert words.lower() in info.value.reason.lower()
    partial = info.value.partial
    assert partial is not None and partial.method == "INVITE"
    response = make_response(partial, info.value.status, info.value.reason, to_tag="x1")
    assert bytes(response).startswith(b"SIP/2.0 %d " % status)
    assert response.to.tag == "x1"
    assert response.headers.get("Call-ID") == partial.headers.get("Call-ID")
    assert response.headers.get_all("Via") == partial.headers.get_all("Via")


def test_unanswerable_requests_are_dropped() -> None:
    # Without Via a response has no way back (RFC 3261 §18.2.2): drop.
    data = invite().replace(b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n", b"")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.partial is None and "Via" in info.value.reason


def test_missing_or_repeated_fields_still_get_a_400() -> None:
    # RFC 4475 §3.3.1 and §3.3.8: missing or repeated From/Call-ID -> 400.
    data = invite().replace(b"From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n", b"")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.partial is not None and "missing From" in info.value.reason
    data = invite(extra=b"Call-ID: second\r\n")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.partial is not None
    assert info.value.partial.headers.get_all("Call-ID") == ["a84b4c76e66710", "second"]


def test_bad_responses_and_acks_are_dropped() -> None:
    data = (
        b"SIP/2.0 4294967301 better not break the receiver\r\n"
        b"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"To: <sip:b@b>;tag=9\r\nFrom: <sip:a@a>;tag=1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.partial is None
    ack = invite().replace(b"INVITE sip", b"ACK sip").replace(b"314159 INVITE", b"314159 ACK")
    with pytest.raises(SipParseError) as info:
        parse_message(ack.replace(b"Max-Forwards: 70", b"Max-Forwards: 999"))
    assert info.value.partial is None


def test_limits() -> None:
    limits = ParseLimits(max_message_size=2000, max_headers=20, max_header_line=200, max_vias=3)
    with pytest.raises(SipParseError) as info:
        parse_message(invite(body=b"x" * 3000), limits=limits)
    assert info.value.status == StatusCode.MESSAGE_TOO_LARGE
    with pytest.raises(SipParseError) as info:
        parse_message(invite(extra=b"X-A: 1\r\n" * 30), limits=limits)
    assert "too many header fields" in info.value.reason
    with pytest.raises(SipParseError) as info:
        parse_message(invite(extra=b"Subject: " + b"a" * 300 + b"\r\n"), limits=limits)
    assert "too long" in info.value.reason
    with pytest.raises(SipParseError) as info:
        parse_message(invite(extra=b"Via: SIP/2.0/UDP x;branch=z9hG4bK9\r\n" * 4), limits=limits)
    assert "too many Via" in info.value.reason
    with pytest.raises(SipParseError) as info:
        parse_message(invite(), limits=ParseLimits(max_body=10))
    assert info.value.status == StatusCode.REQUEST_ENTITY_TOO_LARGE


def test_make_response_rfc3261_8_2_6() -> None:
    request = parse_message(
        invite(extra=b"Via: SIP/2.0/UDP proxy;branch=z9hG4bK2\r\nTimestamp: 54\r\n")
    )
    assert isinstance(request, Request)
    trying = make_response(request, 100)
    assert trying.reason == "Trying" and trying.to.tag is None
    assert trying.headers.get("Timestamp") == "54"
    ok = make_response(request, 200, to_tag="abc")
    assert ok.reason == "OK" and ok.to.tag == "abc"
    assert [v.host for v in ok.vias] == ["pc33.atlanta.com", "proxy"]
    assert ok.from_ == request.from_ and ok.call_id == request.call_id and ok.cseq == request.cseq
    assert reason_phrase(499) == "Bad Request"


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("<sip:bob@b.example>", "<sip:bob@b.example>;tag=new"),
        ("Bob <sip:bob@b.example>;tag=old", "Bob <sip:bob@b.example>;tag=old"),
        ("<sip:bob@b.example>; TAG = old", "<sip:bob@b.example>; TAG = old"),
        ('"x>tag" <sip:bob@b.example>', '"x>tag" <sip:bob@b.example>;tag=new'),
        ('<sip:bob@b.example>;p="a>b";tag=old', '<sip:bob@b.example>;p="a>b";tag=old'),
        ("<sip:tag@b.example;tag=u>", "<sip:tag@b.example;tag=u>;tag=new"),
        ("sip:bob@b.example;tag=old", "sip:bob@b.example;tag=old"),
        ("sip:tagger@b.example", "sip:tagger@b.example;tag=new"),
    ],
)
def test_make_response_adds_a_to_tag_only_when_there_is_none(to: str, expected: str) -> None:
    """RFC 3261 §8.2.6.2: the UAS adds a tag to To unless the request had one; a URI
    parameter named tag is not a To tag."""
    data = _with_lists().replace(b"To: <sip:user@example.com>", f"To: {to}".encode())
    request = parse_message(data)
    assert isinstance(request, Request)
    response = make_response(request, 200, to_tag="new")
    assert response.headers.get("To") == expected
    assert response.to.tag == ("new" if expected.endswith("tag=new") else "old")
    assert response.headers.get("Via") == request.headers.get("Via")


def test_make_response_copies_fields_in_rfc_order_from_a_partial_message() -> None:
    """RFC 3261 §8.2.6.2: Via (all, in order), From, To, Call-ID, CSeq - also for a 400
    built from what could be read of a malformed request, whose To is left as it is."""
    data = (
        b"OPTIONS sip:u@h SIP/2.0\r\nCSeq: 1 OPTIONS\r\nTo: not a name-addr\r\n"
        b"Via: SIP/2.0/UDP a;branch=z9hG4bK1\r\nCall-ID: c@h\r\n"
        b"Via: SIP/2.0/UDP b;branch=z9hG4bK2\r\nFrom: <sip:f@h>;tag=1\r\n"
        b"Max-Forwards: x\r\n\r\n"
    )
    with pytest.raises(SipParseError) as caught:
        parse_message(data)
    partial = caught.value.partial
    assert partial is not None
    response = make_response(partial, 400, caught.value.reason, to_tag="z")
    assert list(response.headers) == [
        ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("Via", "SIP/2.0/UDP b;branch=z9hG4bK2"),
        ("From", "<sip:f@h>;tag=1"), ("To", "not a name-addr"), ("Call-ID", "c@h"),
        ("CSeq", "1 OPTIONS"),
    ]


def test_never_another_exception_on_garbage() -> None:
    for data in [
        b"",
        b"\r\n",
        b"\x00\xff",
        b"SIP/2.0",
        b"INVITE",
        b"A B C\r\n\r\n",
        b"\r\n\r\n\r\n",
    ]:
        with pytest.raises(SipParseError):
            parse_message(data)


def test_api_misuse_is_a_local_error() -> None:
    # h11 style: building invalid SIP raises SipUsageError, never sends it.
    headers = Headers()
    with pytest.raises(SipUsageError):
        headers.add("X-Evil", "a\r\nVia: SIP/2.0/UDP attacker")
    with pytest.raises(SipUsageError):
        headers.set("Bad Name", "1")
    with pytest.raises(SipUsageError):
        headers.prepend("Via", "x\n")
    with pytest.raises(SipUsageError):
        bytes(Request("IN VITE", SipUri.parse("sip:a@b")))
    with pytest.raises(SipUsageError):
        bytes(Response(200, "OK\r\nX: 1"))
    with pytest.raises(SipUsageError):
        bytes(Response(99, "Too low"))


_LIST_BASE = (
    b"OPTIONS sip:user@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n"
    b"To: <sip:user@example.com>\r\n"
    b"From: <sip:john@example.com>;tag=7\r\n"
    b"Call-ID: abc@host\r\n"
    b"CSeq: 1 OPTIONS\r\n"
)


def _with_lists(*lines: bytes) -> bytes:
    return _LIST_BASE + b"".join(line + b"\r\n" for line in lines) + b"Content-Length: 0\r\n\r\n"


def test_plain_lists_are_elements_when_read_and_as_they_came_when_not() -> None:
    """RFC 3261 §7.3.1: a comma-separated list and one field per element are the same
    header; an untouched list is re-emitted in its received form."""
    data = _with_lists(b"Allow: INVITE, ACK,BYE", b"k: timer ,\t100rel", b"Supported: gruu")
    untouched = parse_message(data)
    wire = bytes(untouched)
    assert b"Allow: INVITE, ACK,BYE\r\n" in wire
    assert b"Supported: timer ,\t100rel\r\nSupported: gruu\r\n" in wire
    message = parse_message(data)
    assert message.allow == ["INVITE", "ACK", "BYE"]
    assert message.supported == ["timer", "100rel", "gruu"]
    assert list(message.headers)[5:9] == [
        ("Allow", "INVITE"), ("Allow", "ACK"), ("Allow", "BYE"), ("Supported", "timer")
    ]
    assert message.headers == untouched.headers
    assert parse_message(bytes(message)).headers == message.headers
    assert parse_message(wire).headers == message.headers


def test_changed_plain_lists_serialise_the_change() -> None:
    """A list that was set, added to or removed is serialised as changed."""
    message = parse_message(_with_lists(b"Allow: INVITE, ACK", b"Supported: timer, gruu"))
    message.headers.set("Allow", "BYE")
    message.headers.add("Supported", "100rel, path")  # one value as given, not split
    wire = bytes(message)
    assert b"INVITE" not in wire.split(b"\r\n", 1)[1]
    assert b"Allow: BYE\r\n" in wire
    assert message.headers.get_all("Supported") == ["timer", "gruu", "100rel, path"]
    other = parse_message(_with_lists(b"Allow: INVITE, ACK", b"Accept: a/b, c/d"))
    assert other.headers.remove("Accept") == 2
    assert b"Accept" not in bytes(other)
    assert parse_message(bytes(other)).allow == ["INVITE", "ACK"]


def test_reading_a_list_keeps_the_parsed_fields() -> None:
    """Splitting a received list is not a change: the transaction layer still reads the
    fields the parser grouped (RFC 3261 §17.2.3) - but a real change drops them."""
    message = parse_message(_with_lists(b"Allow: INVITE, ACK"))
    assert message.parsed_fields() is not None
    assert message.allow == ["INVITE", "ACK"]
    assert len(message.headers) == 8
    assert message.parsed_fields() is not None
    message.headers.add("Allow", "BYE")
    assert message.parsed_fields() is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", " ", "\t", "  "]),
            st.sampled_from(["", "INVITE", "a b", "x", '"q,r"', "<s,t>"]),
            st.sampled_from(["", " ", "\t"]),
        ),
        min_size=2,
        max_size=5,
    )
)
def test_lists_split_as_element_by_element(elements: list[tuple[str, str, str]]) -> None:
    """Whatever form a list arrives in, its elements are those of RFC 3261 §7.3.1 split
    on top-level commas, and a list with an empty element is refused."""
    value = ",".join(before + text + after for before, text, after in elements).strip(" \t")
    data = _with_lists(b"Allow: " + value.encode(), b"Accept: " + value.encode())
    expected = [e.strip(" \t") for e in split_top_level(value, ",")]
    if "" in expected:
        with pytest.raises(SipParseError, match="empty element"):
            parse_message(data)
        return
    message = parse_message(data)
    assert message.headers.get_all("Allow") == expected
    assert message.headers.get_all("Accept") == expected
    assert parse_message(bytes(message)).headers == message.headers


def test_via_with_a_known_shape_still_needs_a_good_branch() -> None:
    """RFC 3261 §20.42: the Via of a peer's next request (same sent-by, new branch) is
    accepted; a branch that is not a token is still refused with a reason."""
    good = _with_lists().replace(b"branch=z9hG4bK1", b"branch=z9hG4bK1;rport")
    parse_message(good)
    assert parse_message(good.replace(b"z9hG4bK1", b"z9hG4bK2")).top_via.branch == "z9hG4bK2"
    with pytest.raises(SipParseError, match="Via"):
        parse_message(good.replace(b"z9hG4bK1", b"z9hG4bK<2>"))


def test_remembered_lines_give_what_a_cold_parse_gives() -> None:
    """Header lines a peer repeats are remembered; the second parse of a message equals
    the first, field for field, including the grouped fields the transaction layer
    reads (RFC 3261 §17.2.3) and a packed list."""
    from mobilityd.sip import message as message_module

    data = _with_lists(b"Allow: INVITE, ACK", b"Max-Forwards: 70", b"Contact: <sip:c@h>")
    message_module._LINE_MEMORY.clear()
    cold = parse_message(data)
    warm = parse_message(data)
    assert list(cold.headers) == list(warm.headers)
    assert cold.parsed_fields() == warm.parsed_fields()
    assert bytes(cold) == bytes(warm)


def test_a_calls_repeated_lines_parse_as_cold_and_via_lines_are_never_kept() -> None:
    """RFC 3261 §12.2.1.1: a call's ACK and BYE repeat its From, Call-ID and tagged To
    lines; remembered, they give what a cold parse gives.  A Via line (its own branch
    per transaction, §8.1.1.7) is never remembered."""
    from mobilityd.sip import message as message_module

    bye = (b"BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
           b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKremember1\r\n"
           b"From: <sip:alice@192.0.2.1>;tag=a1\r\nTo: <sip:bob@192.0.2.4>;tag=b2\r\n"
           b"Call-ID: remember-1@192.0.2.1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\n"
           b"Content-Length: 0\r\n\r\n")
    message_module._LINE_MEMORY.clear()
    cold = parse_message(bye)
    assert "From: <sip:alice@192.0.2.1>;tag=a1" in message_module._LINE_MEMORY
    assert "To: <sip:bob@192.0.2.4>;tag=b2" in message_module._LINE_MEMORY
    assert not any(line.startswith("Via") for line in message_module._LINE_MEMORY)
    warm = parse_message(bye)
    assert list(cold.headers) == list(warm.headers)
    assert cold.parsed_fields() == warm.parsed_fields()
    assert bytes(cold) == bytes(warm)


def test_remembered_lines_still_obey_the_limits() -> None:
    """A line accepted under one limit is refused under a smaller one (RFC 4475 §4)."""
    line = b"Subject: " + b"a" * 60
    parse_message(_with_lists(line))
    parse_message(_with_lists(line))
    with pytest.raises(SipParseError, match="too long"):
        parse_message(_with_lists(line), limits=ParseLimits(max_header_line=40))


def test_line_memory_is_bounded_under_a_flood_of_new_lines() -> None:
    """Every request with new header lines (hostile or not) cannot grow the memory past
    its bound (issue: never memory growing with garbage)."""
    from mobilityd.sip import message as message_module

    for i in range(3 * message_module._LINE_MEMORY_SIZE):
        parse_message(_with_lists(b"X-Junk-%d: %d" % (i, i)))
    assert len(message_module._LINE_MEMORY) <= message_module._LINE_MEMORY_SIZE

"""The fast paths of the SIP hot path give exactly what the general paths give.

Each speed-up keeps the general code as the reference: facts read from the parser's
grouped fields (RFC 3261 §17.2.3 matching inputs) equal the facts read by a pass over
the header list; cached Request-URIs equal freshly parsed ones.  Checked on every
request of RFC 4475 (the torture tests) and on hypothesis-mutated requests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobilityd.sip.errors import SipParseError
from mobilityd.sip.message import Request, parse_message
from mobilityd.sip.perf import TYPICAL_INVITE
from mobilityd.sip.transaction.facts import RequestFacts

DATA = Path(__file__).parent / "data" / "rfc4475"
TORTURE = sorted(DATA.glob("*.dat"))


def _facts_by_header_pass(request: Request) -> RequestFacts | SipParseError:
    """The reference: RequestFacts.of without the parser's grouped fields."""
    saved = request._parsed
    request._parsed = None
    try:
        return RequestFacts.of(request)
    except SipParseError as exc:
        return exc
    finally:
        request._parsed = saved


def _facts_fast(request: Request) -> RequestFacts | SipParseError:
    assert request.parsed_fields() is not None
    try:
        return RequestFacts.of(request)
    except SipParseError as exc:
        return exc


def _same(a: RequestFacts | SipParseError, b: RequestFacts | SipParseError) -> bool:
    if isinstance(a, SipParseError) or isinstance(b, SipParseError):
        return type(a) is type(b) and str(a) == str(b)
    return a == b


@pytest.mark.parametrize("path", TORTURE, ids=lambda p: p.stem)
def test_facts_from_parsed_fields_equal_the_header_pass_rfc4475(path: Path) -> None:
    """RFC 4475 §3: every torture request the parser accepts yields the same facts."""
    try:
        message = parse_message(path.read_bytes())
    except SipParseError:
        return  # refused by the parser: no facts are ever read (covered by test_rfc4475)
    if isinstance(message, Request):
        assert _same(_facts_fast(message), _facts_by_header_pass(message))


def test_parsed_fields_are_dropped_once_the_header_list_changes() -> None:
    """A changed message must not be matched on what it said when it was parsed."""
    message = parse_message(TYPICAL_INVITE)
    assert isinstance(message, Request)
    assert message.parsed_fields() is not None
    message.headers.add("Require", "timer")
    assert message.parsed_fields() is None
    assert RequestFacts.of(message).has_require

    for change in (
        lambda m: m.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKnew"),
        lambda m: m.headers.remove_first("Via"),
        lambda m: m.headers.set("Call-ID", "other@x"),
        lambda m: m.headers.remove("Route"),
        lambda m: setattr(m, "headers", m.headers.copy()),
    ):
        fresh = parse_message(TYPICAL_INVITE)
        assert isinstance(fresh, Request)
        change(fresh)
        assert fresh.parsed_fields() is None


def test_remove_first_then_add_is_noticed() -> None:
    """Same length, different content: still not the parsed list (§17.2.3 inputs)."""
    message = parse_message(TYPICAL_INVITE)
    assert isinstance(message, Request)
    message.headers.remove_first("Via")
    message.headers.add("Via", "SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKother")
    assert message.parsed_fields() is None
    assert RequestFacts.of(message).via.branch == "z9hG4bKother"  # the only Via now


_LINES = TYPICAL_INVITE.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
_EXTRA = [
    b"Require: timer", b"Replaces: a@b;to-tag=1;from-tag=2", b"Record-Route: <sip:p;lr>",
    b"x: 90", b"m: <sip:b@h>, <sip:c@h>", b"v: SIP/2.0/TCP h2;branch=z9hG4bKx",
    b"t: <sip:bob@biloxi.example.com>;tag=77", b"Via: SIP / 2.0 / UDP h3 : 7 ; rport",
    b"CSeq: 2 INVITE", b"i: abc", b"Contact: *", b"f: x <sip:x@y>;tag=a;tag=b",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    drop=st.sets(st.integers(min_value=1, max_value=len(_LINES) - 1), max_size=4),
    extra=st.lists(st.sampled_from(_EXTRA), max_size=4),
    shuffle=st.randoms(use_true_random=False),
)
def test_facts_equal_on_mutated_requests(drop: set[int], extra: list[bytes],
                                         shuffle: object) -> None:
    """Mutated INVITEs (fields dropped, duplicated, compact forms, LWS): the fast facts
    equal the header-pass facts whenever the parser accepts the request."""
    headers = [line for i, line in enumerate(_LINES[1:], 1) if i not in drop] + extra
    shuffle.shuffle(headers)  # type: ignore[attr-defined]
    data = b"\r\n".join([_LINES[0], *headers]) + b"\r\n\r\n"
    try:
        message = parse_message(data)
    except SipParseError:
        return
    assert isinstance(message, Request)
    assert _same(_facts_fast(message), _facts_by_header_pass(message))


def _uncached_parse(data: bytes) -> object:
    from mobilityd.sip import grammar, message

    message._REQUEST_LINE_CACHE.clear()
    message._CSEQ_CACHE.clear()
    grammar._GOOD_NAME_ADDRS.clear()
    try:
        return parse_message(data)
    except SipParseError as exc:
        return (exc.status, exc.reason)


def _parse_twice(data: bytes) -> tuple[object, object]:
    """(first parse with cold caches, second parse with warm ones)."""
    first = _uncached_parse(data)
    try:
        second: object = parse_message(data)
    except SipParseError as exc:
        second = (exc.status, exc.reason)
    return first, second


@pytest.mark.parametrize("path", TORTURE, ids=lambda p: p.stem)
def test_warm_caches_change_no_outcome_rfc4475(path: Path) -> None:
    """RFC 4475 §3: each torture message gives the same result (message, or status and
    reason) whether the Request-Line and name-addr caches are cold or warm."""
    first, second = _parse_twice(path.read_bytes())
    assert first == second
    if isinstance(first, Request):
        assert isinstance(second, Request)
        assert (first.method, first.uri, first.vias, first.to, first.contacts) == (
            second.method, second.uri, second.vias, second.to, second.contacts)


def test_cached_request_line_still_obeys_the_request_uri_limit() -> None:
    """RFC 3261 §21.4.12 / RFC 4475 §3.1.2.1 style: a Request-URI over the limit is 414
    even when the same Request-Line parsed fine before under a larger limit."""
    from dataclasses import replace

    from mobilityd.sip.errors import StatusCode
    from mobilityd.sip.message import DATAGRAM_LIMITS

    parse_message(TYPICAL_INVITE)  # warm: "INVITE sip:bob@biloxi.example.com SIP/2.0"
    small = replace(DATAGRAM_LIMITS, max_request_uri=len("sip:bob@biloxi.example.com") - 1)
    with pytest.raises(SipParseError) as caught:
        parse_message(TYPICAL_INVITE, limits=small)
    assert caught.value.status == StatusCode.REQUEST_URI_TOO_LONG
    exact = replace(DATAGRAM_LIMITS, max_request_uri=len("sip:bob@biloxi.example.com"))
    assert isinstance(parse_message(TYPICAL_INVITE, limits=exact), Request)


def test_caches_stay_bounded_under_a_flood_of_distinct_values() -> None:
    """Hostile input must not grow memory (issue 3 'Bad input'): 5,000 requests with
    distinct Request-URIs and To values leave both caches at or under their bounds."""
    from mobilityd.sip import grammar, message

    for i in range(5000):
        data = TYPICAL_INVITE.replace(b"sip:bob@biloxi", f"sip:bob{i}@biloxi".encode())
        parse_message(data.replace(b"CSeq: 1 INVITE", f"CSeq: {i} INVITE".encode()))
    assert len(message._REQUEST_LINE_CACHE) <= message._REQUEST_LINE_CACHE_SIZE
    assert len(message._CSEQ_CACHE) <= message._CSEQ_CACHE_SIZE
    assert len(grammar._GOOD_NAME_ADDRS) <= grammar._GOOD_NAME_ADDRS_SIZE


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="sipSIP:@.;=<>%[]1234567890abc ~-_?&", min_size=1, max_size=40))
def test_request_line_cache_is_transparent_for_any_uri(uri: str) -> None:
    """Any Request-URI text (RFC 3261 §25.1, valid or not) parses the same cold and
    warm - including refusal with the same status and reason."""
    data = TYPICAL_INVITE.replace(b"sip:bob@biloxi.example.com", uri.encode(), 1)
    first, second = _parse_twice(data)
    if isinstance(first, Request):
        assert isinstance(second, Request)
        assert (first.method, first.uri) == (second.method, second.uri)
    else:
        assert first == second


@pytest.mark.parametrize(("cseq", "problem"), [
    ("2147483648 INVITE", "bad CSeq header: number too large"),
    ("4294967295 INVITE", "bad CSeq header: number too large"),
])
def test_facts_keep_the_31_bit_cseq_rule(cseq: str, problem: str) -> None:
    """RFC 3261 §8.1.1.5: the parser accepts any 32-bit CSeq number, but a request's
    must be below 2**31 - the facts still refuse it with the same reason as before."""
    data = TYPICAL_INVITE.replace(b"CSeq: 1 INVITE", f"CSeq: {cseq}".encode())
    message = parse_message(data)
    assert isinstance(message, Request)
    fast, reference = _facts_fast(message), _facts_by_header_pass(message)
    assert isinstance(fast, SipParseError) and fast.reason == problem
    assert _same(fast, reference)


def _clear_caches() -> None:
    from mobilityd.sip import grammar, message

    message._REQUEST_LINE_CACHE.clear()
    message._CSEQ_CACHE.clear()
    grammar._GOOD_NAME_ADDRS.clear()


def _uas_trace(cold: bool, calls: int = 30) -> list[object]:
    """Every datagram and event of ``calls`` SIPp-style calls through a UAS, the requests
    fed as bytes (parse, facts, transactions, dialog), rng and clock deterministic;
    with ``cold`` the parser caches are emptied before every message."""
    import random

    from mobilityd.sip import perf_ua
    from mobilityd.sip.events import IncomingCallReceived
    from mobilityd.sip.uri import NameAddr, SipUri
    from mobilityd.sip.useragent import UaConfig, UserAgent

    rng = random.Random(7)
    ua = UserAgent(UaConfig(local_uri=NameAddr(uri=SipUri.parse("sip:service@127.0.0.1")),
                            host="127.0.0.1", port=5060, user_agent=None),
                   rng=rng.randbytes)
    trace: list[object] = []
    now = 0.0

    def feed(data: bytes) -> None:
        if cold:
            _clear_caches()
        ua.receive(data, perf_ua._UAC, now)
        trace.extend(out.data for out in ua.datagrams_to_send())
        while (event := ua.next_event()) is not None:
            trace.append(event)
            if isinstance(event, IncomingCallReceived):
                ua.answer_call(event.call_id, now, 200, body=perf_ua._SDP)
                trace.extend(out.data for out in ua.datagrams_to_send())

    for i in range(calls):
        now += 0.01
        invite = perf_ua._request("INVITE", i, 1, 1, body=perf_ua._SDP)
        feed(invite)
        tag = perf_ua._to_tag(next(d for d in reversed(trace) if isinstance(d, bytes)))
        feed(invite)  # a retransmission (§17.2.1)
        feed(perf_ua._request("ACK", i, 2, 1, to_tag=tag))
        bye = perf_ua._request("BYE", i, 3, 2, to_tag=tag)
        feed(bye)
        feed(bye)  # a retransmission (§17.2.2)
        feed(perf_ua._request("BYE", i, 4, 3, to_tag="nosuchtag"))  # 481 (§12.2.2)
        feed(perf_ua._request("OPTIONS", i, 5, 1).replace(b"sip:service", b"sips:x%", 1))
    return trace


def test_uas_call_flow_is_byte_identical_with_cold_and_warm_caches() -> None:
    """RFC 3261 §17.2 / §12: whole call flows (INVITE, retransmissions, ACK, BYE, a BYE
    for no dialog, a malformed OPTIONS) send the same bytes and raise the same events
    whether the parser's caches are cold for every message or warm."""
    assert _uas_trace(cold=True) == _uas_trace(cold=False)

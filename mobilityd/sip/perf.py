"""Parse + serialise micro-benchmark for a typical INVITE with SDP (issue 3 benchmark a).

`bench_parse_serialize(n)` returns the median, over several runs, of the microseconds
one `parse_message` + `bytes()` of a realistic INVITE (Via with rport, Route, Contact
with +sip.instance, Supported/Allow lists, an SDP offer with MIKEY key-mgmt) costs.
It measures the process's CPU time (`time.process_time`), not wall time, so that
other load on a shared machine does not count against us (cache and frequency effects
still do); it is meant for the benchmark script only, never for tests.

The same INVITE every time lets the parser's bounded caches (Request-Line, CSeq,
name-addr and Via shapes) remember everything; `bench_parse_serialize_varied` makes
every INVITE another call's (new branch, From tag, Call-ID) so that what they cannot
remember is paid as in real traffic.  `bench_ack_bye_parse` (in-dialog requests) and
`bench_response_build` (a 200 OK) cover the rest of the parser's share of a UAS call.
``python -m mobilityd.sip.perf`` prints all four figures as JSON.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from mobilityd.sip.message import Request, make_response, parse_message

_SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"a=key-mgmt:mikey AQAFgM0XQQEBBQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    b"AAAAAAAAAAAAAAAA\r\n"
    b"m=audio 49170 RTP/SAVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)

TYPICAL_INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9a2c1e0d;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"Route: <sip:proxy.atlanta.example.com;lr>\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n'
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060;transport=udp>"
    b';+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"\r\n'
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, UPDATE\r\n"
    b"Supported: replaces, timer, gruu\r\n"
    b"Session-Expires: 1800;refresher=uac\r\n"
    b"User-Agent: mobilityd/0.1\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(_SDP)).encode() + b"\r\n"
    b"\r\n" + _SDP
)


def varied_invite(i: int) -> bytes:
    """`TYPICAL_INVITE` as the ``i``-th call would send it: its own branch, From tag
    and Call-ID (RFC 3261 §8.1.1.4, §8.1.1.7, §19.3), same length."""
    return (
        TYPICAL_INVITE.replace(b"z9hG4bK74bf9a2c1e0d", b"z9hG4bK%012x" % i)
        .replace(b"tag=9fxced76sl", b"tag=%010x" % i)
        .replace(b"3848276298220188511@", b"%019d@" % i)
    )


def _in_dialog(method: bytes, i: int) -> bytes:
    """An ACK or BYE of call ``i`` as a UAC sends it (RFC 3261 §13.2.2.4, §15.1.1)."""
    cseq = b"1 ACK" if method == b"ACK" else b"2 BYE"
    return (
        method + b" sip:bob@192.0.2.20:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK%012x;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b'From: "Alice" <sip:alice@atlanta.example.com>;tag=%010x\r\n'
        b"To: Bob <sip:bob@biloxi.example.com>;tag=%08x\r\n"
        b"Call-ID: %019d@atlanta.example.com\r\n"
        b"CSeq: " + cseq + b"\r\n"
        b"Content-Length: 0\r\n\r\n"
    ) % (i * 2 + (method == b"BYE"), i, i, i)


def _median_us(work: Callable[[], None], n: int, runs: int) -> float:
    per_run: list[float] = []
    for _ in range(max(1, runs)):
        start = time.process_time()
        work()
        per_run.append((time.process_time() - start) / n * 1e6)
    return statistics.median(per_run)


def bench_parse_serialize_varied(n: int = 20000, runs: int = 5) -> float:
    """Like `bench_parse_serialize`, but every INVITE is another call's (`varied_invite`):
    what the per-value caches cannot remember is paid as in real traffic."""
    messages = [varied_invite(i) for i in range(n)]

    def work() -> None:
        for data in messages:
            bytes(parse_message(data))

    return _median_us(work, n, runs)


def bench_ack_bye_parse(n: int = 20000, runs: int = 5) -> float:
    """Median µs to parse one call's ACK and BYE together (each another call's)."""
    messages = [(_in_dialog(b"ACK", i), _in_dialog(b"BYE", i)) for i in range(n)]

    def work() -> None:
        for ack, bye in messages:
            parse_message(ack)
            parse_message(bye)

    return _median_us(work, n, runs)


def bench_response_build(n: int = 20000, runs: int = 5) -> float:
    """Median µs to build and serialise a 200 OK with SDP to a received INVITE
    (`make_response` + Contact + Content-Type + body, RFC 3261 §8.2.6)."""
    requests: list[Request] = []
    for i in range(min(n, 2000)):
        request = parse_message(varied_invite(i))
        assert isinstance(request, Request)
        requests.append(request)
    contact = "<sip:bob@192.0.2.20:5060;transport=udp>"

    def work() -> None:
        for i in range(n):
            response = make_response(requests[i % len(requests)], 200, to_tag="a6c85cf")
            response.headers.add("Contact", contact)
            response.headers.add("Content-Type", "application/sdp")
            response.body = _SDP
            bytes(response)

    return _median_us(work, n, runs)


def bench_parse_serialize(n: int = 20000, runs: int = 5) -> float:
    """Median µs for one parse + serialise of `TYPICAL_INVITE`, over ``runs`` runs of
    ``n`` iterations each."""
    data = TYPICAL_INVITE
    per_run: list[float] = []
    for _ in range(max(1, runs)):
        start = time.process_time()
        for _ in range(n):
            bytes(parse_message(data))
        per_run.append((time.process_time() - start) / n * 1e6)
    return statistics.median(per_run)


def bench_parse_after_idle(idle_s: float = 0.02, samples: int = 40,
                           hot: int = 2000) -> dict[str, float]:
    """The cost of code that runs once in a while, as a move's does (issue 5): median
    µs of one parse + serialise of a `varied_invite`, back to back (``hot_us``: the
    figure `bench_parse_serialize_varied` averages) and each after ``idle_s`` of
    sleep (``after_idle_us``, what the first message after a quiet spell costs, the
    way a re-INVITE reaches a peer that was only relaying audio). On a shared virtual
    machine the second can be several times the first; their ratio (``cold_factor``)
    says how much a chain of such steps (a move's critical path) is slowed on this
    host today, whatever the code does. Single operations timed with the wall clock."""
    messages = [varied_invite(i) for i in range(hot + samples)]
    back_to_back: list[float] = []
    for data in messages[:hot]:
        start = time.perf_counter_ns()
        bytes(parse_message(data))
        back_to_back.append((time.perf_counter_ns() - start) / 1000)
    after_idle: list[float] = []
    for data in messages[hot:]:
        time.sleep(idle_s)
        start = time.perf_counter_ns()
        bytes(parse_message(data))
        after_idle.append((time.perf_counter_ns() - start) / 1000)
    hot_us = statistics.median(back_to_back[hot // 4:])  # past the first-call costs
    idle_us = statistics.median(after_idle)
    return {"hot_us": round(hot_us, 2), "after_idle_us": round(idle_us, 2),
            "idle_ms": idle_s * 1000, "cold_factor": round(idle_us / hot_us, 2)}


if __name__ == "__main__":
    print(json.dumps({
        "invite_parse_serialize_us": round(bench_parse_serialize(), 2),
        "invite_parse_serialize_varied_us": round(bench_parse_serialize_varied(), 2),
        "ack_bye_parse_us": round(bench_ack_bye_parse(), 2),
        "response_200_build_us": round(bench_response_build(), 2),
        "invite_parse_after_idle": bench_parse_after_idle(),
    }))

"""In-memory micro-benchmark of the UAS path: CPU per complete call, bytes to bytes.

One call is INVITE -> 200 (with SDP) -> ACK -> BYE -> 200, each request fed as the
bytes a UAC (SIPp's ``-sn uac``) would send, through ``UserAgent.receive`` (parsing,
transaction matching, dialog, events) and back out of ``datagrams_to_send``.  The
simulated clock advances 200 µs per call (5,000 calls/s) and timers run when due, so
the timer heap and transaction tables hold what they would at that rate.

``python -m mobilityd.sip.perf_ua [N]`` prints JSON with the medians of 5 runs, and the
parsing share of the same three requests measured alone (``bench_parse_only``).  The
UAC side's formatting of the ACK and BYE (a few µs) is inside the timed loop.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from mobilityd.sip.events import CallEnded, IncomingCallReceived
from mobilityd.sip.message import parse_message
from mobilityd.sip.uri import NameAddr, SipUri
from mobilityd.sip.useragent import UaConfig, UserAgent

_UAC = ("127.0.0.1", 5061)
_SDP = (b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n"
        b"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")

_REQUEST = (
    "{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}-{step}\r\n"
    "From: sipp <sip:sipp@127.0.0.1:5061>;tag={n}SIPpTag00{n}\r\n"
    "To: service <sip:service@127.0.0.1:5060>{to_tag}\r\n"
    "Call-ID: {n}-12345@127.0.0.1\r\n"
    "CSeq: {cseq} {method}\r\n"
    "Contact: sip:sipp@127.0.0.1:5061\r\n"
    "Max-Forwards: 70\r\n"
    "Subject: Performance Test\r\n"
    "{body_headers}"
    "Content-Length: {length}\r\n\r\n"
)


def _request(method: str, n: int, step: int, cseq: int, *, to_tag: str = "",
             body: bytes = b"") -> bytes:
    head = _REQUEST.format(
        method=method, n=n, step=step, cseq=cseq,
        to_tag=f";tag={to_tag}" if to_tag else "",
        body_headers="Content-Type: application/sdp\r\n" if body else "",
        length=len(body))
    return head.encode() + body


def _to_tag(response: bytes) -> str:
    start = response.index(b"\r\nTo: ")
    end = response.index(b"\r\n", start + 2)
    line = response[start:end]
    return line[line.index(b";tag=") + 5:].split(b";", 1)[0].decode()


def bench_uas_calls(n: int) -> float:
    """CPU microseconds per complete call (INVITE/200/ACK/BYE/200) through the UAS."""
    ua = UserAgent(UaConfig(local_uri=NameAddr(uri=SipUri.parse("sip:service@127.0.0.1")),
                            host="127.0.0.1", port=5060, user_agent=None), rng=os.urandom)
    invites = [_request("INVITE", i, 1, 1, body=_SDP) for i in range(n)]
    now = 0.0
    completed = 0
    started = time.process_time()
    for i in range(n):
        now += 0.0002
        ua.receive(invites[i], _UAC, now)
        event = ua.next_event()
        assert isinstance(event, IncomingCallReceived)
        ua.answer_call(event.call_id, now, 200, body=_SDP)
        (ok,) = ua.datagrams_to_send()
        tag = _to_tag(ok.data)
        ua.receive(_request("ACK", i, 2, 1, to_tag=tag), _UAC, now)
        ua.receive(_request("BYE", i, 3, 2, to_tag=tag), _UAC, now)
        ua.datagrams_to_send()
        while (event := ua.next_event()) is not None:
            completed += isinstance(event, CallEnded)
        deadline = ua.get_timer()
        if deadline is not None and deadline <= now:
            ua.handle_timer(now)
            ua.datagrams_to_send()
    elapsed = time.process_time() - started
    if completed != n:
        raise RuntimeError(f"only {completed} of {n} calls completed")
    return elapsed / n * 1e6


def bench_parse_only(n: int) -> float:
    """CPU microseconds to parse the three requests of one call (INVITE, ACK, BYE):
    the parser's share of ``bench_uas_calls`` (the rest is the engine's)."""
    messages = [
        (_request("INVITE", i, 1, 1, body=_SDP), _request("ACK", i, 2, 1, to_tag="abc"),
         _request("BYE", i, 3, 2, to_tag="abc"))
        for i in range(n)
    ]
    started = time.process_time()
    for invite, ack, bye in messages:
        parse_message(invite)
        parse_message(ack)
        parse_message(bye)
    return (time.process_time() - started) / n * 1e6


def main(argv: list[str]) -> int:
    n = int(argv[1]) if len(argv) > 1 else 20000
    calls = statistics.median(bench_uas_calls(n) for _ in range(5))
    parse = statistics.median(bench_parse_only(n) for _ in range(5))
    print(json.dumps({
        "uas_call_cpu_us_median": round(calls, 1),
        "parse_only_us_median": round(parse, 1),
        "engine_us_estimate": round(calls - parse, 1),
        "calls_per_run": n,
        "runs": 5,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

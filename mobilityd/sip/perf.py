"""Parse + serialise micro-benchmark for a typical INVITE with SDP (issue 3 benchmark a).

`bench_parse_serialize(n)` returns the median, over several runs, of the microseconds
one `parse_message` + `bytes()` of a realistic INVITE (Via with rport, Route, Contact
with +sip.instance, Supported/Allow lists, an SDP offer with MIKEY key-mgmt) costs.
It measures the process's CPU time (`time.process_time`), not wall time, so that
other load on a shared machine does not count against us (cache and frequency effects
still do); it is meant for the benchmark script only, never for tests.
"""

from __future__ import annotations

import statistics
import time

from mobilityd.sip.message import parse_message

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


if __name__ == "__main__":
    print(f"{bench_parse_serialize():.2f} us per INVITE parse+serialize")

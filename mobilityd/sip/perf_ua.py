"""In-memory micro-benchmark of the UAS path: CPU per complete call, bytes to bytes.

One call is INVITE -> 200 (with SDP) -> ACK -> BYE -> 200, each request fed as the
bytes a UAC (SIPp's ``-sn uac``) would send, through ``UserAgent.receive`` (parsing,
transaction matching, dialog, events) and back out of ``datagrams_to_send``.  The
simulated clock advances 200 µs per call (5,000 calls/s) and timers run when due, so
the timer heap and transaction tables hold what they would at that rate.

``python -m mobilityd.sip.perf_ua [N]`` prints JSON with the medians of 5 runs, and the
parsing share of the same three requests measured alone (``bench_parse_only``).  The
UAC side's formatting of the ACK and BYE (a few µs) is inside the timed loop.

``bench_endpoint_calls`` runs the same calls through the asyncio adapter the daemon
and the SIPp benchmark use (``SipEndpoint`` on a real UDP socket: ``UdpTransport``
datagram handling, RFC 3261 §18.2.1 ``received`` stamping, event draining, timer
re-arming and the two ``sendto`` of a call), fed datagram by datagram without the event
loop's selector: the adapter's share of the CPU per call is its figure minus
``bench_uas_calls``.  It also reports the share the cyclic garbage collector took,
with the collector set as the daemon sets it (``main`` settles the heap first, as
``mobilityd.service.heap`` does after the daemon's start-up; with CPython's default
thresholds the collector's share is several times larger).

``bench_work_counts`` counts what one call executes - Python bytecode instructions,
Python function calls and calls into C - with ``sys.settrace``/``sys.setprofile``:
figures that do not depend on the machine's load, for comparing two versions of the
code on a shared machine where CPU-time figures move by tens of percent.

``bench_uas_stages`` splits one call into its stages (parse of each request, the
engine's handling of each, the answer, timers and events; thread CPU time, the
collector included where it strikes) and ``bench_udp_syscalls`` times the loopback
``sendto``/``recvfrom`` a call needs: where the CPU of a call goes.  The JSON gives
their minimum over the runs (the least disturbed run on a shared machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from types import FrameType

from mobilityd.service.heap import settle_heap
from mobilityd.sip.endpoint import EndpointEvent, SipEndpoint
from mobilityd.sip.events import CallEnded, IncomingCallReceived
from mobilityd.sip.message import parse_message
from mobilityd.sip.transport import SipCodec, TransportKind, UdpTransport
from mobilityd.sip.uri import NameAddr, SipUri
from mobilityd.sip.useragent import UaConfig, UserAgent

TraceFunction = Callable[[FrameType, str, object], "TraceFunction | None"]

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


class _AnsweringEndpoint(SipEndpoint):
    """Answers every INVITE at once with 200 + SDP (as the SIPp benchmark's UAS)."""

    def event_received(self, event: EndpointEvent) -> None:
        if isinstance(event, IncomingCallReceived):
            self.ua.answer_call(event.call_id, self.now(), body=_SDP)


class _CollectorClock:
    """Thread-CPU seconds spent in the cyclic garbage collector while installed."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.spent += time.thread_time() - self._started


async def _endpoint_calls(n: int) -> tuple[float, float]:
    config = UaConfig(local_uri=NameAddr.parse("<sip:uas@127.0.0.1>"), host="127.0.0.1",
                      port=0, transport=TransportKind.UDP, contact_user="uas")
    endpoint = await _AnsweringEndpoint.open(config, os.urandom)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as uac_socket:
        uac_socket.bind(("127.0.0.1", 0))
        uac_socket.setblocking(False)
        uac = uac_socket.getsockname()
        sent_by = f"127.0.0.1:{uac[1]}".encode()  # responses go to the Via sent-by
        feed = UdpTransport(SipCodec(), endpoint, absorb=lambda data: endpoint.ua.
                            absorb_retransmission(data, endpoint.now()))
        local = endpoint.local_address
        invites = [_request("INVITE", i, 1, 1, body=_SDP).replace(b"127.0.0.1:5061", sent_by)
                   for i in range(n)]
        collector = _CollectorClock()
        gc.callbacks.append(collector)
        spent = 0.0
        try:
            for i in range(n):
                started = time.thread_time()
                feed.datagram_received(invites[i], uac, local)
                endpoint.input_done()
                tag = endpoint.ua.call(f"{i}-12345@127.0.0.1").local_tag
                ack = _request("ACK", i, 2, 1, to_tag=tag).replace(b"127.0.0.1:5061", sent_by)
                bye = _request("BYE", i, 3, 2, to_tag=tag).replace(b"127.0.0.1:5061", sent_by)
                feed.datagram_received(ack, uac, local)
                feed.datagram_received(bye, uac, local)
                endpoint.input_done()
                spent += time.thread_time() - started
                if i % 64 == 63:  # empty the UAC's socket (not timed)
                    with contextlib.suppress(BlockingIOError):
                        while True:
                            uac_socket.recv(65_535)
            if endpoint.ua.calls:
                raise RuntimeError(f"{endpoint.ua.calls} of {n} calls did not end")
        finally:
            gc.callbacks.remove(collector)
            await endpoint.close()
    return spent / n * 1e6, collector.spent / n * 1e6


def bench_endpoint_calls(n: int) -> tuple[float, float]:
    """(CPU µs per call through ``SipEndpoint`` on UDP, µs of it in the collector)."""
    return asyncio.run(_endpoint_calls(n))


class _WorkCounter:
    """Counts bytecode instructions (trace ``opcode`` events), Python calls and C calls
    (profile ``call`` / ``c_call`` events) while installed."""

    def __init__(self) -> None:
        self.bytecodes = 0
        self.python_calls = 0
        self.c_calls = 0

    def trace(self, frame: FrameType, event: str, arg: object) -> TraceFunction:
        frame.f_trace_opcodes = True
        if event == "opcode":
            self.bytecodes += 1
        return self.trace

    def profile(self, frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            self.python_calls += 1
        elif event == "c_call":
            self.c_calls += 1


def bench_work_counts(n: int) -> dict[str, float]:
    """Bytecodes, Python calls and C calls per call of ``bench_uas_calls`` (its loop's
    request formatting included, as in its CPU figure), after ``n`` warm-up calls."""
    bench_uas_calls(n)  # warm the parser's and the grammar's bounded memories
    counter = _WorkCounter()
    earlier_trace, earlier_profile = sys.gettrace(), sys.getprofile()
    sys.settrace(counter.trace)
    sys.setprofile(counter.profile)
    try:
        bench_uas_calls(n)
    finally:
        sys.settrace(earlier_trace)
        sys.setprofile(earlier_profile)
    return {"bytecodes": counter.bytecodes / n, "python_calls": counter.python_calls / n,
            "c_calls": counter.c_calls / n}


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


def bench_uas_stages(n: int) -> dict[str, float]:
    """Thread-CPU microseconds per call of each stage of the UAS path (see module)."""
    ua = UserAgent(UaConfig(local_uri=NameAddr(uri=SipUri.parse("sip:service@127.0.0.1")),
                            host="127.0.0.1", port=5060, user_agent=None), rng=os.urandom)
    names = ("parse_invite", "engine_invite", "engine_answer", "parse_ack", "engine_ack",
             "parse_bye", "engine_bye", "engine_timers_events")
    spent = dict.fromkeys(names, 0.0)
    clock = time.thread_time
    now = 0.0
    for i in range(n):
        now += 0.0002
        raw = _request("INVITE", i, 1, 1, body=_SDP)
        t0 = clock()
        invite = parse_message(raw)
        t1 = clock()
        ua.receive(invite, _UAC, now, raw=raw)
        t2 = clock()
        event = ua.next_event()
        assert isinstance(event, IncomingCallReceived)
        ua.answer_call(event.call_id, now, 200, body=_SDP)
        (ok,) = ua.datagrams_to_send()
        t3 = clock()
        tag = _to_tag(ok.data)
        ack_raw = _request("ACK", i, 2, 1, to_tag=tag)
        bye_raw = _request("BYE", i, 3, 2, to_tag=tag)
        t4 = clock()
        ack = parse_message(ack_raw)
        t5 = clock()
        ua.receive(ack, _UAC, now, raw=ack_raw)
        t6 = clock()
        bye = parse_message(bye_raw)
        t7 = clock()
        ua.receive(bye, _UAC, now, raw=bye_raw)
        ua.datagrams_to_send()
        t8 = clock()
        while ua.next_event() is not None:
            pass
        deadline = ua.get_timer()
        if deadline is not None and deadline <= now:
            ua.handle_timer(now)
            ua.datagrams_to_send()
        t9 = clock()
        for name, spent_now in zip(names, (t1 - t0, t2 - t1, t3 - t2, t5 - t4, t6 - t5,
                                           t7 - t6, t8 - t7, t9 - t8), strict=True):
            spent[name] += spent_now
    return {name: total / n * 1e6 for name, total in spent.items()}


def bench_udp_syscalls(n: int) -> dict[str, float]:
    """Thread-CPU microseconds of one loopback ``sendto`` and one ``recvfrom`` of an
    INVITE-sized datagram (a call needs 3 of each way in, 2 out)."""
    data = _request("INVITE", 1, 1, 1, body=_SDP)
    with (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
          socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver):
        sender.bind(("127.0.0.1", 0))
        receiver.bind(("127.0.0.1", 0))
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        receiver.setblocking(False)
        destination = receiver.getsockname()
        started = time.thread_time()
        for _ in range(n):
            sender.sendto(data, destination)
        sent = time.thread_time()
        received = 0
        while received < n:
            try:
                receiver.recvfrom(65_507)
            except BlockingIOError:
                break
            received += 1
        done = time.thread_time()
    return {"sendto": (sent - started) / n * 1e6,
            "recvfrom": (done - sent) / max(received, 1) * 1e6}


def main(argv: list[str]) -> int:
    n = int(argv[1]) if len(argv) > 1 else 20000
    settle_heap()  # the daemon's collector settings (mobilityd.service.heap)
    calls = statistics.median(bench_uas_calls(n) for _ in range(5))
    endpoint_runs = [bench_endpoint_calls(n) for _ in range(5)]
    endpoint = statistics.median(run[0] for run in endpoint_runs)
    collector = statistics.median(run[1] for run in endpoint_runs)
    parse = statistics.median(bench_parse_only(n) for _ in range(5))
    stage_runs = [bench_uas_stages(n) for _ in range(5)]
    stages = {name: round(min(run[name] for run in stage_runs), 1) for name in stage_runs[0]}
    work = {name: round(value, 1) for name, value in bench_work_counts(min(n, 500)).items()}
    syscall_runs = [bench_udp_syscalls(min(n, 2000)) for _ in range(5)]
    syscalls = {name: round(min(run[name] for run in syscall_runs), 2)
                for name in syscall_runs[0]}
    print(json.dumps({
        "uas_call_cpu_us_median": round(calls, 1),
        "endpoint_call_cpu_us_median": round(endpoint, 1),
        "endpoint_collector_us_median": round(collector, 1),
        "adapter_us_estimate": round(endpoint - calls, 1),
        "parse_only_us_median": round(parse, 1),
        "engine_us_estimate": round(calls - parse, 1),
        "stages_us_min": stages,
        "parse_us_min": round(sum(v for k, v in stages.items() if k.startswith("parse")), 1),
        "engine_us_min": round(sum(v for k, v in stages.items() if k.startswith("engine")),
                               1),
        "work_per_call": work,
        "udp_syscalls_us_min": syscalls,
        "udp_syscalls_per_call_us": round(3 * syscalls["recvfrom"] + 2 * syscalls["sendto"],
                                          1),
        "calls_per_run": n,
        "runs": 5,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

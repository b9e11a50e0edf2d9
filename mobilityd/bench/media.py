"""``python -m mobilityd.bench media [--json] [--quick]``: the media-path benchmark.

One process pinned to one core (``os.sched_setaffinity``) runs, in turn:

* **floor**: a bare asyncio UDP forwarder (``datagram_received`` -> ``sendto``) of the
  load generator's packets, one socket per call; and the same forwarder on our own
  batched-read I/O path (``floor_batched_pps``), the ceiling for the SRTP path;
* **rx**: the same packets into one :class:`MediaEndpoint` per call:
  receive -> SRTP unprotect -> count;
* **tx**: one :class:`MediaEndpoint` per call generating G.711 20 ms frames:
  build RTP -> SRTP protect -> send, as fast as the loop goes;
* **pacing**: 100 (``--calls``) paced 20 ms senders on one :class:`FrameScheduler`
  (start times spread over the period, as independent calls would be), SRTP-protecting
  and sending; the jitter is |actual send time - absolute deadline| of every tick.
  It runs twice: with the ordinary scheduler, then (if permitted) with the event loop
  at SCHED_FIFO priority 10 (:func:`enable_realtime_scheduling`), since on a busy
  machine preemption by other processes, not our code, dominates the jitter.

The load generator is a separate process (pinned to another core when there is one)
that SRTP-protects on the fly with each call's key and sends round-robin to the calls'
ports; its offered rate is reported so a generator-bound figure can be recognised.
Every phase is repeated and medians are reported; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pylibsrtp

from mobilityd.media import g711
from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.events import Address
from mobilityd.media.pacing import (
    FrameScheduler,
    PacedRtpSender,
    RepeatingPayloads,
    disable_realtime_scheduling,
    enable_realtime_scheduling,
)
from mobilityd.media.rtp import build_rtp
from mobilityd.media.srtp import Direction, SrtpKeys, SrtpSession
from mobilityd.media.stream import StreamParams
from mobilityd.media.tone import ToneGenerator
from mobilityd.media.udp import UdpChannel

TARGET_PPS = 50_000
TARGET_JITTER_P99_MS = 1.0


@dataclass(frozen=True)
class Settings:
    calls: int
    pacing_calls: int
    window: float
    warmup: float
    repeats: int
    pacing_seconds: float


def call_keys(call: int) -> SrtpKeys:
    """Deterministic per-call keys (benchmark only)."""
    digest = hashlib.sha256(f"mobilityd-bench-media-{call}".encode()).digest()
    return SrtpKeys(digest[:16], digest[16:30])


def tone_payloads() -> list[bytes]:
    """One 1 kHz tone frame of G.711: at 8 kHz, 160 samples hold whole periods."""
    return [g711.encode(ToneGenerator(1000, 0.5).read_frame())]


def pin_to_core(core: int) -> int | None:
    try:
        available = sorted(os.sched_getaffinity(0))
        chosen = available[core % len(available)]
        os.sched_setaffinity(0, {chosen})
        return chosen
    except (AttributeError, OSError):
        return None


# -- load generator (separate process) ------------------------------------------------


def run_generator(spec: dict[str, Any]) -> int:
    """Send SRTP packets round-robin to ``spec["ports"]`` until ``duration`` passes."""
    pin_to_core(int(spec["core"]))
    ports = [int(p) for p in spec["ports"]]
    sessions = []
    for call in range(len(ports)):
        keys = call_keys(call)
        policy = pylibsrtp.Policy(
            key=keys.master_key + keys.master_salt,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        )
        sessions.append(pylibsrtp.Session(policy))
    payload = tone_payloads()[0]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    host = spec["host"]
    targets = [(host, port) for port in ports]
    deadline = time.monotonic() + float(spec["duration"])
    sent = errors = 0
    seq = 0
    while True:
        for call, target in enumerate(targets):
            packet = build_rtp(0, seq, seq * 160, 0x10000 + call, payload)
            try:
                sock.sendto(sessions[call].protect(packet), target)
            except OSError:
                errors += 1
            else:
                sent += 1
        seq += 1
        if seq % 16 == 0 and time.monotonic() >= deadline:
            break
    print(json.dumps({"sent": sent, "errors": errors}))
    return 0


def start_generator(ports: list[int], duration: float, core: int) -> subprocess.Popen[str]:
    spec = {"ports": ports, "duration": duration, "core": core, "host": "127.0.0.1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mobilityd.bench.media", "--generator", json.dumps(spec)],
        stdout=subprocess.PIPE, text=True,
    )


# -- phases ---------------------------------------------------------------------------


class Forwarder(asyncio.DatagramProtocol):
    """The floor: receive and forward, nothing else."""

    def __init__(self, sink: Address) -> None:
        self.sink = sink
        self.count = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.count += 1
        if self.transport is not None:
            self.transport.sendto(data, self.sink)


def make_sink() -> tuple[socket.socket, Address]:
    """A bound socket nobody reads: the kernel drops what overflows its buffer."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    name = sink.getsockname()
    return sink, (str(name[0]), int(name[1]))


async def measure(count: Callable[[], int], settings: Settings) -> float:
    """Packets per second of ``count()`` over the window after the warm-up."""
    await asyncio.sleep(settings.warmup)
    first, start = count(), time.monotonic()
    await asyncio.sleep(settings.window)
    return (count() - first) / (time.monotonic() - start)


async def with_generator(ports: list[int], count: Callable[[], int], settings: Settings,
                         generator_core: int) -> tuple[float, float]:
    duration = settings.warmup + settings.window + 0.3
    generator = start_generator(ports, duration, generator_core)
    try:
        pps = await measure(count, settings)
        stdout, _ = await asyncio.to_thread(generator.communicate, timeout=duration + 30)
    finally:
        if generator.poll() is None:
            generator.kill()
    offered = json.loads(stdout or '{"sent": 0}')["sent"] / duration
    return pps, offered


async def phase_floor(settings: Settings, core: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    sink, sink_address = make_sink()
    forwarders: list[Forwarder] = []
    transports = []
    for _ in range(settings.calls):
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: Forwarder(sink_address), local_addr=("127.0.0.1", 0)
        )
        transports.append(transport)
        forwarders.append(protocol)
    ports = [int(t.get_extra_info("sockname")[1]) for t in transports]
    try:
        return await with_generator(
            ports, lambda: sum(f.count for f in forwarders), settings, core
        )
    finally:
        for transport in transports:
            transport.close()
        sink.close()


async def phase_floor_batched(settings: Settings, core: int) -> float:
    """The same forwarder on our own I/O path (:class:`UdpChannel`, batched reads): the
    ceiling for anything built on it, so SRTP's own cost shows against it."""
    loop = asyncio.get_running_loop()
    sink, sink_address = make_sink()
    channels: list[UdpChannel] = []
    counter = [0]

    def forward(data: bytes, source: Address) -> None:
        counter[0] += 1
        channels[0].sendto(data, sink_address)

    for _ in range(settings.calls):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        channels.append(UdpChannel(loop, sock, forward, lambda exc: None))
    try:
        pps, _ = await with_generator(
            [c.local[1] for c in channels], lambda: counter[0], settings, core
        )
        return pps
    finally:
        for channel in channels:
            channel.close()
        sink.close()


async def phase_rx(settings: Settings, core: int) -> tuple[float, float, int]:
    endpoints = []
    for call in range(settings.calls):
        endpoint = MediaEndpoint(
            "127.0.0.1", tx=None, rx=SrtpSession(call_keys(call), Direction.INBOUND),
            rtcp_mux=True,
        )
        await endpoint.open()
        endpoints.append(endpoint)
    try:
        pps, offered = await with_generator(
            [e.local_rtp[1] for e in endpoints],
            lambda: sum(e.counters.rtp_received for e in endpoints), settings, core,
        )
        failures = sum(e.counters.auth_failures + e.counters.replays for e in endpoints)
        return pps, offered, failures
    finally:
        for endpoint in endpoints:
            endpoint.close()


async def phase_tx(settings: Settings) -> float:
    sink, sink_address = make_sink()
    endpoints = []
    for call in range(settings.calls):
        endpoint = MediaEndpoint(
            "127.0.0.1", tx=SrtpSession(call_keys(call), Direction.OUTBOUND), rx=None,
            remote_rtp=sink_address, rtcp_mux=True,
        )
        await endpoint.open()
        endpoints.append(endpoint)
    payload = tone_payloads()[0]
    state = {"sent": 0, "stop": False}

    async def generate() -> None:
        seq = 0
        while not state["stop"]:
            for call, endpoint in enumerate(endpoints):
                endpoint.send_rtp(build_rtp(0, seq, seq * 160, 0x20000 + call, payload))
            state["sent"] += len(endpoints)
            seq += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(generate())
    try:
        return await measure(lambda: state["sent"], settings)
    finally:
        state["stop"] = True
        await task
        for endpoint in endpoints:
            endpoint.close()
        sink.close()


async def phase_pacing(settings: Settings, realtime: bool = False) -> dict[str, float] | None:
    """The 100 paced senders; with ``realtime`` under SCHED_FIFO (None if not allowed)."""
    if realtime and not enable_realtime_scheduling():
        return None
    try:
        return await _pacing(settings)
    finally:
        if realtime:
            disable_realtime_scheduling()


async def _pacing(settings: Settings) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    sink, sink_address = make_sink()
    scheduler = FrameScheduler(loop, record_lateness=True)
    endpoints = []
    start = loop.time() + 0.05
    period = scheduler.period
    for call in range(settings.pacing_calls):
        tx = SrtpSession(call_keys(call), Direction.OUTBOUND)
        endpoint = MediaEndpoint("127.0.0.1", tx=tx, rx=None, remote_rtp=sink_address,
                                 rtcp_mux=True)
        await endpoint.open()
        endpoints.append(endpoint)
        sender = PacedRtpSender(
            StreamParams(ssrc=0x30000 + call, first_sequence=65000),
            RepeatingPayloads(tone_payloads()), endpoint.send_protected_rtp, tx,
        )
        sender.start(scheduler, start + call * period / settings.pacing_calls)
    try:
        await asyncio.sleep(0.05 + settings.pacing_seconds)
    finally:
        scheduler.close()
        for endpoint in endpoints:
            endpoint.close()
        sink.close()
    raw = scheduler.lateness or []
    warmup_ticks = settings.pacing_calls * 25  # the first 0.5 s: start-up, allocation
    steady_ms = sorted(abs(1000 * x) for x in (raw[warmup_ticks:] if len(raw) > 2 * warmup_ticks
                                               else raw))
    return {
        "pacing_jitter_ms_p50": percentile(steady_ms, 50),
        "pacing_jitter_ms_p99": percentile(steady_ms, 99),
        "pacing_jitter_ms_max": steady_ms[-1] if steady_ms else 0.0,
        "pacing_ticks": float(len(raw)),
        "pacing_skipped_frames": float(scheduler.skipped_frames),
    }


def libsrtp_cost_us(packets: int = 20_000) -> tuple[float, float]:
    """Median-of-3 cost of bare pylibsrtp protect and unprotect in µs: a gauge of how
    fast this machine is right now (the issue quotes ~1.4 µs on an idle one)."""
    keys = call_keys(0)
    payload = tone_payloads()[0]
    plain = [build_rtp(0, n & 0xFFFF, n * 160, 1, payload) for n in range(packets)]
    protect_us, unprotect_us = [], []
    for _ in range(3):
        key = keys.master_key + keys.master_salt
        sender = pylibsrtp.Session(
            pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        )
        receiver = pylibsrtp.Session(
            pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND)
        )
        start = time.perf_counter()
        protected = [sender.protect(p) for p in plain]
        middle = time.perf_counter()
        for p in protected:
            receiver.unprotect(p)
        end = time.perf_counter()
        protect_us.append((middle - start) / packets * 1e6)
        unprotect_us.append((end - middle) / packets * 1e6)
    return statistics.median(protect_us), statistics.median(unprotect_us)


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(pct / 100 * (len(sorted_values) - 1))))
    return sorted_values[rank]


async def run(settings: Settings) -> dict[str, Any]:
    core = pin_to_core(0)
    generator_core = 1 if (os.cpu_count() or 1) > 1 else 0
    protect_us, unprotect_us = libsrtp_cost_us()
    floors, floor_offered, rxs, rx_offered, txs, batched = [], [], [], [], [], []
    failures = 0
    for _ in range(settings.repeats):
        floor_pps, offered = await phase_floor(settings, generator_core)
        floors.append(floor_pps)
        floor_offered.append(offered)
        batched.append(await phase_floor_batched(settings, generator_core))
        rx_pps, offered, bad = await phase_rx(settings, generator_core)
        rxs.append(rx_pps)
        rx_offered.append(offered)
        failures += bad
        txs.append(await phase_tx(settings))
    pacing = await phase_pacing(settings)
    assert pacing is not None
    pacing_rt = await phase_pacing(settings, realtime=True)
    rx, tx, floor = statistics.median(rxs), statistics.median(txs), statistics.median(floors)
    srtp_pps = min(rx, tx)
    result: dict[str, Any] = {
        "srtp_pps": round(srtp_pps),
        "srtp_rx_pps": round(rx),
        "srtp_tx_pps": round(tx),
        "floor_pps": round(floor),
        "srtp_over_floor": round(srtp_pps / floor, 3) if floor else None,
        "rx_over_floor": round(rx / floor, 3) if floor else None,
        "floor_batched_pps": round(statistics.median(batched)),
        "rx_over_floor_batched": round(rx / statistics.median(batched), 3)
        if statistics.median(batched) else None,
        "offered_pps_floor": round(statistics.median(floor_offered)),
        "offered_pps_rx": round(statistics.median(rx_offered)),
        "concurrent_calls": settings.calls,
        "calls_worth_per_core": round(srtp_pps / 50),
        "pacing_calls": settings.pacing_calls,
        **{k: round(v, 4) for k, v in pacing.items()},
        "pacing_jitter_ms_p99_realtime": (
            None if pacing_rt is None else round(pacing_rt["pacing_jitter_ms_p99"], 4)
        ),
        "pacing_jitter_ms_max_realtime": (
            None if pacing_rt is None else round(pacing_rt["pacing_jitter_ms_max"], 4)
        ),
        "srtp_auth_failures": failures,
        "libsrtp_protect_us": round(protect_us, 3),
        "libsrtp_unprotect_us": round(unprotect_us, 3),
        "repeats": settings.repeats,
        "window_s": settings.window,
        "pinned_core": core,
        "generator_core": generator_core,
        "load_average": list(os.getloadavg()),
        "targets": {
            "srtp_pps_each_direction": TARGET_PPS,
            "srtp_over_floor": 0.5,
            "pacing_jitter_ms_p99": TARGET_JITTER_P99_MS,
        },
    }
    result["targets_met"] = {
        "srtp_pps_each_direction": rx >= TARGET_PPS and tx >= TARGET_PPS,
        "srtp_over_floor": bool(floor) and srtp_pps >= floor / 2,
        "pacing_jitter_ms_p99": pacing["pacing_jitter_ms_p99"] < TARGET_JITTER_P99_MS,
        "pacing_jitter_ms_p99_realtime": (
            pacing_rt is not None and pacing_rt["pacing_jitter_ms_p99"] < TARGET_JITTER_P99_MS
        ),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobilityd.bench media")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="finish within 60 s")
    parser.add_argument("--calls", type=int, default=None, help="concurrent calls")
    parser.add_argument("--generator", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generator:
        return run_generator(json.loads(args.generator))
    if args.quick:
        settings = Settings(calls=args.calls or 100, pacing_calls=100, window=1.0, warmup=0.3,
                            repeats=3, pacing_seconds=3.0)
    else:
        settings = Settings(calls=args.calls or 200, pacing_calls=100, window=3.0, warmup=0.5,
                            repeats=5, pacing_seconds=10.0)
    result = asyncio.run(run(settings))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m mobilityd.bench media [--json] [--quick]``: the media-path benchmark.

One process pinned to one core (``os.sched_setaffinity``) runs, in turn:

* **floor**: a bare asyncio UDP forwarder (``datagram_received`` -> ``sendto``) of the
  load generator's packets, one socket per call; and the same forwarder on our own
  batched-read I/O path (``floor_batched_pps``), the ceiling for the SRTP path.
  Why the asyncio floor is low: its datagram transport (CPython 3.11) calls
  ``recvfrom(256 KiB)`` once per readiness event, and CPython allocates a 256 KiB
  bytes object per call before shrinking it (mmap-sized: ~20-26 us per datagram here
  against ~2.5-3 us for ``recvfrom(4096)``); it also pays a forwarding ``sendto`` per
  packet. So "half the floor" is an easy bar; ``rx_over_floor_batched`` is the
  telling ratio;
* **rx**: the same packets into one :class:`MediaEndpoint` per call:
  receive -> SRTP unprotect -> count;
* **tx**: one :class:`MediaEndpoint` per call generating G.711 20 ms frames:
  build RTP -> SRTP protect -> send, as fast as the loop goes;
* **pacing**: 100 (``--calls``) paced 20 ms senders on one :class:`FrameScheduler`
  (start times spread over the period, as independent calls would be), SRTP-protecting
  and sending; the jitter is |actual send time - absolute deadline| of every tick.
  The scheduler wakes through a timerfd (µs precision; ``loop.call_at`` waits are
  rounded up to whole ms by epoll), and runs again woken by ``call_at`` in the same run
  (``*_call_at``) for comparison. Both run twice: with the ordinary scheduler, then
  (if permitted) with the event loop at SCHED_FIFO priority 10
  (:func:`enable_realtime_scheduling`), since on a busy machine preemption by other
  processes, not our code, dominates the jitter.

The load generator (:mod:`mobilityd.bench.media_load`) is one separate process for the
whole run, pinned to another core when there is one. It SRTP-protects each call's
packets once before the timed phases and then only sends them round-robin to the
calls' ports (protecting on the fly had made it the limit); its offered rate is
reported so a generator-bound figure can be recognised. The rx endpoints have the
generator's socket as their remote address, as an established call's would.

Rates are given two ways: packets per wall-clock second (``*_pps``, the first
definition) and packets per CPU second of this process during the window
(``*_pps_per_cpu_s``: per core of work). On a shared machine this process gets only part
of its core (``cpu_share``), which the wall-clock figure charges to our code.
Every phase is repeated and medians are reported; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
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

from mobilityd.bench.media_load import call_keys, pin_to_core, tone_payloads
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
from mobilityd.media.srtp import Direction, SrtpSession
from mobilityd.media.stream import StreamParams
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
    #: SRTP packets per call the load generator protects before the timed phases
    prebuilt_per_call: int = 1500


# -- load generator (separate process: mobilityd.bench.media_load) ----------------------


@dataclass(frozen=True)
class Rate:
    """Packets counted over one measurement window.

    ``wall_pps`` is the figure as first defined (packets / wall-clock seconds).
    ``cpu_pps`` is packets / CPU seconds this process used in the window, i.e. packets
    per second of one core's work: on a shared machine the measured process gets only
    part of its core, which ``wall_pps`` charges to our code (``cpu_share`` says how much
    of the window it ran). When the process is not saturated, idle wake-ups make each
    packet dearer, so ``cpu_pps`` errs low, never high.
    """

    wall_pps: float
    cpu_pps: float
    cpu_share: float


class LoadGenerator:
    """The parent side of :mod:`mobilityd.bench.media_load` (one process for the run)."""

    def __init__(self, process: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        self._process = process
        self.source: Address = (str(ready["source"][0]), int(ready["source"][1]))
        self.prebuilt = int(ready["prebuilt"])
        self.build_s = float(ready["build_s"])

    @classmethod
    async def start(cls, calls: int, packets_per_call: int, core: int) -> LoadGenerator:
        spec = {"calls": calls, "packets_per_call": packets_per_call, "core": core,
                "host": "127.0.0.1"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mobilityd.bench.media_load", json.dumps(spec),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        generator = cls(process, await cls._read(process))
        return generator

    @staticmethod
    async def _read(process: asyncio.subprocess.Process) -> dict[str, Any]:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
        if not line:
            raise RuntimeError(f"load generator ended (exit {await process.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result

    async def send(self, ports: list[int], seconds: float) -> dict[str, Any]:
        """Tell the generator to send to ``ports`` for ``seconds``; its report when done."""
        assert self._process.stdin is not None
        self._process.stdin.write((json.dumps({"ports": ports, "seconds": seconds}) + "\n")
                                  .encode())
        await self._process.stdin.drain()
        return await self._read(self._process)

    async def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), timeout=10)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()


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


async def measure(count: Callable[[], int], settings: Settings) -> Rate:
    """Rate of ``count()`` over the window after the warm-up (wall and CPU seconds)."""
    await asyncio.sleep(settings.warmup)
    first, start, cpu_start = count(), time.monotonic(), time.process_time()
    await asyncio.sleep(settings.window)
    packets = count() - first
    wall, cpu = time.monotonic() - start, time.process_time() - cpu_start
    return Rate(packets / wall, packets / cpu if cpu > 0 else 0.0, cpu / wall)


@dataclass(frozen=True)
class Offered:
    """What the load generator sent in one phase."""

    pps: float
    on_the_fly_sent: int


async def with_generator(generator: LoadGenerator, ports: list[int], count: Callable[[], int],
                         settings: Settings) -> tuple[Rate, Offered]:
    seconds = settings.warmup + settings.window + 0.1
    sending = asyncio.create_task(generator.send(ports, seconds))
    try:
        rate = await measure(count, settings)
    finally:
        report = await sending
    offered = Offered(report["sent"] / report["elapsed"], int(report["on_the_fly_sent"]))
    return rate, offered


async def phase_floor(settings: Settings, generator: LoadGenerator) -> tuple[Rate, Offered]:
    """The floor: asyncio's own datagram transport, one ``recvfrom`` per callback."""
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
            generator, ports, lambda: sum(f.count for f in forwarders), settings
        )
    finally:
        for transport in transports:
            transport.close()
        sink.close()


async def phase_floor_batched(settings: Settings, generator: LoadGenerator) -> Rate:
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
        rate, _ = await with_generator(
            generator, [c.local[1] for c in channels], lambda: counter[0], settings
        )
        return rate
    finally:
        for channel in channels:
            channel.close()
        sink.close()


async def phase_rx(settings: Settings, generator: LoadGenerator) -> tuple[Rate, Offered, int]:
    """Receive -> SRTP unprotect -> count, one endpoint per call. Each endpoint has the
    generator's socket as its remote (what the call's SDP would have said), so packets
    take the path of an established call's media."""
    endpoints = []
    for call in range(settings.calls):
        endpoint = MediaEndpoint(
            "127.0.0.1", tx=None, rx=SrtpSession(call_keys(call), Direction.INBOUND),
            remote_rtp=generator.source, rtcp_mux=True,
        )
        await endpoint.open()
        endpoints.append(endpoint)
    try:
        rate, offered = await with_generator(
            generator, [e.local_rtp[1] for e in endpoints],
            lambda: sum(e.counters.rtp_received for e in endpoints), settings,
        )
        failures = sum(e.counters.auth_failures + e.counters.replays for e in endpoints)
        return rate, offered, failures
    finally:
        for endpoint in endpoints:
            endpoint.close()


async def phase_tx(settings: Settings) -> Rate:
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


async def phase_pacing(settings: Settings, realtime: bool = False,
                       precise: bool = True) -> dict[str, float] | None:
    """The 100 paced senders; with ``realtime`` under SCHED_FIFO (None if not allowed);
    ``precise`` False wakes by ``loop.call_at`` instead of the timerfd."""
    if realtime and not enable_realtime_scheduling():
        return None
    try:
        return await _pacing(settings, precise)
    finally:
        if realtime:
            disable_realtime_scheduling()


async def _pacing(settings: Settings, precise: bool) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    sink, sink_address = make_sink()
    scheduler = FrameScheduler(loop, record_lateness=True, precise=precise)
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
        "pacing_timerfd": float(scheduler.precise),
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


def median_rate(rates: list[Rate]) -> Rate:
    """Field-wise medians of the repeats."""
    return Rate(statistics.median(r.wall_pps for r in rates),
                statistics.median(r.cpu_pps for r in rates),
                statistics.median(r.cpu_share for r in rates))


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


async def run(settings: Settings) -> dict[str, Any]:
    core = pin_to_core(0)
    generator_core = 1 if (os.cpu_count() or 1) > 1 else 0
    protect_us, unprotect_us = libsrtp_cost_us()
    generator = await LoadGenerator.start(settings.calls, settings.prebuilt_per_call,
                                          generator_core)
    floors: list[Rate] = []
    batched: list[Rate] = []
    rxs: list[Rate] = []
    txs: list[Rate] = []
    floor_offered: list[Offered] = []
    rx_offered: list[Offered] = []
    failures = 0
    try:
        for _ in range(settings.repeats):
            floor_rate, offered = await phase_floor(settings, generator)
            floors.append(floor_rate)
            floor_offered.append(offered)
            batched.append(await phase_floor_batched(settings, generator))
            rx_rate, offered, bad = await phase_rx(settings, generator)
            rxs.append(rx_rate)
            rx_offered.append(offered)
            failures += bad
            txs.append(await phase_tx(settings))
    finally:
        await generator.close()
    # the daemon's wake-up (timerfd) and the call_at one, alternated in the same run
    pacing = await phase_pacing(settings)
    pacing_call_at = await phase_pacing(settings, precise=False)
    assert pacing is not None and pacing_call_at is not None
    pacing_rt = await phase_pacing(settings, realtime=True)
    pacing_rt_call_at = await phase_pacing(settings, realtime=True, precise=False)
    rx, tx, floor = median_rate(rxs), median_rate(txs), median_rate(floors)
    floor_batched = median_rate(batched)
    srtp_pps = min(rx.wall_pps, tx.wall_pps)
    srtp_cpu_pps = min(rx.cpu_pps, tx.cpu_pps)
    result: dict[str, Any] = {
        # packets per wall-clock second (the first definition)
        "srtp_pps": round(srtp_pps),
        "srtp_rx_pps": round(rx.wall_pps),
        "srtp_tx_pps": round(tx.wall_pps),
        "floor_pps": round(floor.wall_pps),
        "srtp_over_floor": ratio(srtp_pps, floor.wall_pps),
        "rx_over_floor": ratio(rx.wall_pps, floor.wall_pps),
        "floor_batched_pps": round(floor_batched.wall_pps),
        "rx_over_floor_batched": ratio(rx.wall_pps, floor_batched.wall_pps),
        # packets per CPU second of the measured process (per core, see Rate)
        "srtp_pps_per_cpu_s": round(srtp_cpu_pps),
        "srtp_rx_pps_per_cpu_s": round(rx.cpu_pps),
        "srtp_tx_pps_per_cpu_s": round(tx.cpu_pps),
        "floor_pps_per_cpu_s": round(floor.cpu_pps),
        "floor_batched_pps_per_cpu_s": round(floor_batched.cpu_pps),
        "srtp_over_floor_per_cpu_s": ratio(srtp_cpu_pps, floor.cpu_pps),
        "cpu_share": {"floor": round(floor.cpu_share, 3), "rx": round(rx.cpu_share, 3),
                      "tx": round(tx.cpu_share, 3)},
        "offered_pps_floor": round(statistics.median(o.pps for o in floor_offered)),
        "offered_pps_rx": round(statistics.median(o.pps for o in rx_offered)),
        "generator_prebuilt_packets": generator.prebuilt,
        "generator_build_s": round(generator.build_s, 2),
        "generator_on_the_fly_packets": sum(o.on_the_fly_sent for o in rx_offered),
        "concurrent_calls": settings.calls,
        "calls_worth_per_core": round(srtp_cpu_pps / 50),
        "pacing_calls": settings.pacing_calls,
        **{k: round(v, 4) for k, v in pacing.items()},
        "pacing_jitter_ms_p99_realtime": (
            None if pacing_rt is None else round(pacing_rt["pacing_jitter_ms_p99"], 4)
        ),
        "pacing_jitter_ms_max_realtime": (
            None if pacing_rt is None else round(pacing_rt["pacing_jitter_ms_max"], 4)
        ),
        "pacing_jitter_ms_p50_call_at": round(pacing_call_at["pacing_jitter_ms_p50"], 4),
        "pacing_jitter_ms_p99_call_at": round(pacing_call_at["pacing_jitter_ms_p99"], 4),
        "pacing_jitter_ms_p99_realtime_call_at": (
            None if pacing_rt_call_at is None
            else round(pacing_rt_call_at["pacing_jitter_ms_p99"], 4)
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
        "srtp_pps_each_direction": rx.wall_pps >= TARGET_PPS and tx.wall_pps >= TARGET_PPS,
        "srtp_pps_each_direction_per_cpu_s": (
            rx.cpu_pps >= TARGET_PPS and tx.cpu_pps >= TARGET_PPS
        ),
        "srtp_over_floor": bool(floor.wall_pps) and srtp_pps >= floor.wall_pps / 2,
        "srtp_over_floor_per_cpu_s": bool(floor.cpu_pps) and srtp_cpu_pps >= floor.cpu_pps / 2,
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
    args = parser.parse_args(argv)
    if args.quick:
        settings = Settings(calls=args.calls or 100, pacing_calls=100, window=1.0, warmup=0.3,
                            repeats=3, pacing_seconds=3.0, prebuilt_per_call=1500)
    else:
        settings = Settings(calls=args.calls or 200, pacing_calls=100, window=3.0, warmup=0.5,
                            repeats=5, pacing_seconds=10.0, prebuilt_per_call=1500)
    result = asyncio.run(run(settings))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

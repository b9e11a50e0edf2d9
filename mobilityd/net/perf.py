"""Detection-time measurement for the handover benchmark (needs root).

:func:`measure_detection` adds an address with ``ip addr add`` ``n`` times and returns,
for each, the milliseconds from the moment the ``ip`` command returned until the
:class:`~mobilityd.net.watcher.NetlinkWatcher` handed out the matching
:class:`~mobilityd.net.events.AddressAdded` (the kernel has queued the RTM_NEWADDR by
then, so this is the watcher's own latency: wake-up, parse, state update). Addresses come
from the benchmarking range 198.18.0.0/15 (RFC 2544 appendix C.2.2).

Without ``netns`` a scratch namespace with a veth pair is created and always deleted.

Command line: ``python -m mobilityd.net.perf [-n N]`` prints JSON
``{"n", "detection_ms_median", "detection_ms_p95", "detection_ms_max"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import time

from mobilityd.net.errors import NetError
from mobilityd.net.events import AddressAdded, AddressRemoved
from mobilityd.net.watcher import NetlinkWatcher

_COUNTER = itertools.count(1)
WAIT_SECONDS = 10.0


class PerfSetupError(NetError):
    """The measurement could not be set up (not root, ``ip`` failed, no event came)."""


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PerfSetupError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _benchmark_address(i: int) -> str:
    return f"198.18.{(i // 250) % 256}.{i % 250 + 1}"


async def _wait_for(watcher: NetlinkWatcher, kind: type, address: str) -> None:
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                for event in await watcher.next_events():
                    if isinstance(event, kind) and getattr(event, "address", None) == address:
                        return
    except TimeoutError as exc:
        raise PerfSetupError(f"no {kind.__name__} for {address} within {WAIT_SECONDS} s") from exc


async def measure_detection_async(n: int, *, netns: str | None = None,
                                  dev: str | None = None) -> list[float]:
    """Async form of :func:`measure_detection`."""
    if n < 1:
        raise PerfSetupError(f"n must be >= 1, got {n}")
    scratch: str | None = None
    if netns is None:
        if os.geteuid() != 0:
            raise PerfSetupError("measuring detection needs root (network namespaces)")
        scratch = f"mdperf{os.getpid()}n{next(_COUNTER)}"
        _ip("netns", "add", scratch)
        netns, dev = scratch, "p0"
    elif dev is None:
        raise PerfSetupError("dev is required with netns")
    assert dev is not None
    try:
        if scratch is not None:
            _ip("-n", scratch, "link", "add", "p0", "type", "veth", "peer", "name", "p1")
            _ip("-n", scratch, "link", "set", "p0", "up")
            _ip("-n", scratch, "link", "set", "p1", "up")
        latencies: list[float] = []
        async with NetlinkWatcher(netns=netns) as watcher:
            for i in range(n):
                address = _benchmark_address(i)
                _ip("-n", netns, "addr", "add", f"{address}/32", "dev", dev)
                returned = time.perf_counter()
                await _wait_for(watcher, AddressAdded, address)
                latencies.append((time.perf_counter() - returned) * 1000.0)
                _ip("-n", netns, "addr", "del", f"{address}/32", "dev", dev)
                await _wait_for(watcher, AddressRemoved, address)
        return latencies
    finally:
        if scratch is not None:
            subprocess.run(["ip", "netns", "del", scratch], capture_output=True, check=False)


def measure_detection(n: int, *, netns: str | None = None, dev: str | None = None) -> list[float]:
    """Milliseconds from ``ip addr add`` returning to the watcher's event, ``n`` times."""
    return asyncio.run(measure_detection_async(n, netns=netns, dev=dev))


def summarize(latencies: list[float]) -> dict[str, float | int]:
    """Median, p95 and max of a measurement, as the benchmark JSON reports them."""
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(ordered), "detection_ms_median": round(statistics.median(ordered), 3),
            "detection_ms_p95": round(p95, 3), "detection_ms_max": round(ordered[-1], 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="number of address additions")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(summarize(measure_detection(args.n))))
    except NetError as exc:
        parser.exit(2, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Move-decision latency on a real kernel, for the handover benchmark (needs root).

:func:`measure_move_decision` builds a scratch host with two links ("wlan" m0 preferred
by metric, "eth" m1) to a scratch router, runs a :class:`PathMonitor` with one call
toward the router's address 198.51.100.1 (TEST-NET-2, RFC 5737) and ``n`` times takes
m0 down: it returns the milliseconds from ``ip link set m0 down`` returning until the
monitor decided ``CallPathChanged`` (watcher + route lookups + coalescer: the
"detection" part of a handover). Between runs m0 is brought back and the call moves
back (hold-down 0). Everything is deleted afterwards.

Command line: ``python -m mobilityd.mobility.perf [-n N]`` prints JSON
``{"n", "decision_ms_median", "decision_ms_p95", "decision_ms_max"}``.
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

from mobilityd.mobility.decision import CallPath
from mobilityd.mobility.events import CallPathChanged
from mobilityd.mobility.pathmonitor import PathMonitor
from mobilityd.net.errors import NetError
from mobilityd.net.perf import PerfSetupError

_COUNTER = itertools.count(1)
PEER = "198.51.100.1"
WLAN, ETH = "198.18.0.2", "198.18.1.2"
WAIT_SECONDS = 10.0


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PerfSetupError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _build(host: str, router: str) -> None:
    for ns in (host, router):
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
    for mine, theirs, net in (("m0", "r0", "198.18.0"), ("m1", "r1", "198.18.1")):
        _ip("link", "add", mine, "netns", host, "type", "veth", "peer", "name", theirs,
            "netns", router)
        _ip("-n", host, "link", "set", mine, "up")
        _ip("-n", router, "link", "set", theirs, "up")
        _ip("-n", host, "addr", "add", f"{net}.2/24", "dev", mine)
        _ip("-n", router, "addr", "add", f"{net}.1/24", "dev", theirs)
    _ip("-n", router, "addr", "add", f"{PEER}/32", "dev", "lo")
    _ip("-n", host, "route", "add", "default", "via", "198.18.0.1", "dev", "m0",
        "metric", "100")
    _ip("-n", host, "route", "add", "default", "via", "198.18.1.1", "dev", "m1",
        "metric", "200")


async def _next_move(monitor: PathMonitor, new_local: str) -> None:
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                for decision in await monitor.next_decisions():
                    if isinstance(decision, CallPathChanged) and decision.new_local == new_local:
                        return
    except TimeoutError as exc:
        raise PerfSetupError(f"no move to {new_local} within {WAIT_SECONDS} s") from exc


async def measure_move_decision_async(n: int) -> list[float]:
    """Async form of :func:`measure_move_decision`."""
    if n < 1:
        raise PerfSetupError(f"n must be >= 1, got {n}")
    if os.geteuid() != 0:
        raise PerfSetupError("measuring move decisions needs root (network namespaces)")
    tag = f"mdmv{os.getpid()}n{next(_COUNTER)}"
    host, router = f"{tag}h", f"{tag}r"
    try:
        _build(host, router)
        monitor = PathMonitor(netns=host, hold_down=0.0)
        await monitor.start()
        try:
            monitor.add_call(CallPath("bench", WLAN, PEER, PEER))
            latencies: list[float] = []
            for _ in range(n):
                _ip("-n", host, "link", "set", "m0", "down")
                returned = time.perf_counter()
                await _next_move(monitor, ETH)
                latencies.append((time.perf_counter() - returned) * 1000.0)
                _ip("-n", host, "link", "set", "m0", "up")
                _ip("-n", host, "route", "replace", "default", "via", "198.18.0.1",
                    "dev", "m0", "metric", "100")
                await _next_move(monitor, WLAN)
            return latencies
        finally:
            monitor.close()
    finally:
        for ns in (host, router):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def measure_move_decision(n: int) -> list[float]:
    """Milliseconds from ``ip link set down`` returning to the move decision, ``n`` times."""
    return asyncio.run(measure_move_decision_async(n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="number of moves")
    args = parser.parse_args(argv)
    try:
        values = sorted(measure_move_decision(args.n))
    except NetError as exc:
        parser.exit(2, f"error: {exc}\n")
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    print(json.dumps({"n": len(values),
                      "decision_ms_median": round(statistics.median(values), 3),
                      "decision_ms_p95": round(p95, 3),
                      "decision_ms_max": round(values[-1], 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

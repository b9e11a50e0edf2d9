"""``python -m mobilityd.bench transfer [--json] [--quick]``: call transfer timings.

Runs on the repository's test hosts (root, network namespaces, ``tests/netns.py``):
Alice, Bob's laptop and Bob's PDA each on an emulated link to one router, each link
delaying ``rtt/4`` per direction so that any two parties see the emulated RTT. Per RTT
(0, 20, 100 ms) the call is moved laptop -> PDA -> laptop ... ``transfers`` times
(issue 6, docs/transfer.md) and for each move it measures:

* ``first_packet_new_device_ms``: the move command on the old device -> the first
  packet of Alice decrypted on the new device (CLOCK_MONOTONIC, one clock for all the
  processes of the machine);
* ``gap_peer_ms``: the audible gap at Alice, last packet of the old device played ->
  first packet of the new one (0 when the new one's media arrived before the switch).

``--timeline`` (diagnosis) prints every party's stamps of each move on stderr and adds
``critical_path_ms`` to each run: median wall and CPU time per segment of the move
(:mod:`mobilityd.bench.transfer_timeline`); the stamps cost a little CPU themselves.
``--rtt N`` (repeatable) runs only those RTTs. ``--realtime`` (diagnosis, marked
``"realtime": true`` in each run) puts the parties' loops and the link emulators at
SCHED_FIFO: what the move costs when the machine's other jobs do not compete.

It also sums SRTP auth failures of every party and counts SSRC reuse between the
devices' sending sessions (``index_reuse``: (SSRC, index) pairs that could repeat, 0
when no SSRC was ever sent by two devices and libsrtp refused no index). Prints
``{"runs": [{"rtt_ms", "transfers", "first_packet_new_device_ms_median",
"gap_peer_ms_median", "gap_peer_ms_p95", "srtp_auth_failures", "index_reuse"}]}``.
Never asserts on time (the machines are shared): the numbers are the result.

``--loss-pct P`` (not the benchmark's definition: a reliability figure) loses P % of
the datagrams on every link, both directions (SIP, media and the hand-off channel),
and adds ``loss_pct`` and ``moves_failed`` (moves that did not succeed, each one
failing cleanly: the call stays) to each run; ``--transfers N`` sets the moves per RTT.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from mobilityd.bench import transfer_timeline

REPO = Path(__file__).resolve().parents[2]
RTTS_MS = (0, 20, 100)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _connected(stats: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in stats["calls"].values() if c["state"] == "connected"]


def _poll(party: Any, check: Any, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats: dict[str, Any] = party.stats()
        if check(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


def _one_move(world: Any, source: str, target: str,
              paths: list[dict[str, Any]] | None = None,
              failures: list[dict[str, Any]] | None = None) -> tuple[float, float] | None:
    """One move; with ``paths`` (``--timeline``) its merged stamps go to stderr and its
    critical path is appended; a failed move is appended to ``failures``."""
    mover = world.parties[source]
    mover.send(cmd="move", device=target)
    moved = mover.wait_for("moved", timeout=60)
    if not moved["ok"]:
        print(f"move {source}->{target} failed: {moved}", file=sys.stderr)
        if failures is not None:
            failures.append(moved)
        return None

    def has_first(stats: dict[str, Any]) -> bool:
        calls = _connected(stats)
        return bool(calls) and calls[0]["first_packet_at"] is not None

    target_stats = _poll(world.parties[target], has_first)
    if not has_first(target_stats):
        return None
    first = _connected(target_stats)[0]["first_packet_at"]
    alice = _poll(world.parties["alice"], lambda s: bool(s["gaps"]))
    if not alice["gaps"]:
        return None
    if paths is not None:
        stamps = transfer_timeline.collect(world)
        transfer_timeline.print_merged(stamps, moved["started"])
        from tests.mobility.transfer_hosts import IPS  # noqa: PLC0415 (run_rtt's path)

        path = transfer_timeline.critical_path(
            stamps, moved["started"], source=source, target=target, target_ip=IPS[target],
            decrypted=first)
        if path is not None:
            paths.append(path)
    first_ms, gap_ms = (first - moved["started"]) * 1000, alice["gaps"][-1] * 1000
    print(f"move {source}->{target}: first packet {first_ms:.1f} ms, gap {gap_ms:.1f} ms",
          file=sys.stderr)
    return first_ms, gap_ms


def _realtime(world: Any) -> None:
    """SCHED_FIFO for the link emulators (the parties set it themselves): how fast the
    move is when nothing else competes for the cores (diagnosis, ``--realtime``)."""
    for link in world.links.values():
        if link.process is not None:
            os.sched_setscheduler(link.process.pid, os.SCHED_FIFO, os.sched_param(20))


def run_rtt(rtt_ms: int, transfers: int, timeline: bool = False,
            realtime: bool = False, loss_pct: float = 0.0) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from tests.mobility.transfer_hosts import build_transfer_hosts  # noqa: PLC0415
    from tests.netns import Topology  # noqa: PLC0415

    firsts: list[float] = []
    gaps: list[float] = []
    paths: list[dict[str, Any]] | None = [] if timeline else None
    failures: list[dict[str, Any]] = []
    with Topology() as topology:
        world = build_transfer_hosts(topology, delay_ms=rtt_ms / 4, loss_pct=loss_pct)
        try:
            world.start(trace=timeline, realtime=realtime)
            if realtime:
                _realtime(world)
            world.call()
            time.sleep(0.5)
            holder = "laptop"
            for _ in range(transfers):
                target = "pda" if holder == "laptop" else "laptop"
                result = _one_move(world, holder, target, paths, failures)
                if result is not None:
                    firsts.append(result[0])
                    gaps.append(result[1])
                    holder = target
                time.sleep(0.3)
            stats = {role: party.stats() for role, party in world.parties.items()}
        finally:
            world.close()
    calls = [c for s in stats.values() for c in s["calls"].values()]
    sent = [ssrc for role in ("laptop", "pda") for c in stats[role]["calls"].values()
            for ssrc in c.get("tx_ssrcs", [])]
    reuse = (len(sent) - len(set(sent))) + sum(c.get("index_reuse_refused", 0) for c in calls)
    run: dict[str, Any] = {
        "rtt_ms": rtt_ms,
        "transfers": len(firsts),
        "first_packet_new_device_ms_median": round(statistics.median(firsts), 1)
        if firsts else None,
        "gap_peer_ms_median": round(statistics.median(gaps), 1) if gaps else None,
        "gap_peer_ms_p95": round(_p95(gaps), 1) if gaps else None,
        "srtp_auth_failures": sum(c.get("auth_failures", 0) for c in calls),
        "index_reuse": reuse,
    }
    if realtime:
        run["realtime"] = True  # not the benchmark's definition: a diagnosis
    if loss_pct:  # a reliability figure, not the latency benchmark
        run["loss_pct"] = loss_pct
        run["moves_failed"] = len(failures)
    if paths is not None:  # --timeline: median wall / CPU ms per critical-path segment
        run["critical_path_ms"] = transfer_timeline.summarize(paths)
    return run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobilityd.bench transfer")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 transfers per RTT (< 60 s)")
    parser.add_argument("--timeline", action="store_true",
                        help="print every party's stamps of each move on stderr")
    parser.add_argument("--rtt", type=int, action="append", help="only these RTTs (ms)")
    parser.add_argument("--realtime", action="store_true",
                        help="diagnosis: parties and link emulators at SCHED_FIFO")
    parser.add_argument("--loss-pct", type=float, default=0.0,
                        help="lose this %% of datagrams on every link (reliability)")
    parser.add_argument("--transfers", type=int, help="moves per RTT")
    args = parser.parse_args(argv)
    transfers = args.transfers or (2 if args.quick else 10)
    runs = [run_rtt(rtt, transfers, args.timeline, args.realtime, args.loss_pct)
            for rtt in args.rtt or RTTS_MS]
    if args.json:
        print(json.dumps({"runs": runs}))
    else:
        for run in runs:
            print(run)
    return 0

"""``python -m mobilityd.bench handover [--json] [--quick] [--moves N]``: call handover.

Runs on the repository's test hosts (root, network namespaces: ``tests/netns.py``;
Alice -- rtr -- Bob with "wlan" b0 and "eth" b1, delay from the userspace link
emulator ``tests/net/linkemu.py`` since this kernel has no netem). A secure call (MIKEY
PSK, SRTP audio both ways every 20 ms) runs between two party processes
(``tests/mobility/roaming_party.py``); Bob's path monitor moves it by itself.

Scenario ``eth_unplugged``: ``ip link set b1 down`` while the call runs over eth; the
call moves to wlan. (Between moves eth comes back and the call returns to it; those
make-before-break moves are reported as ``eth_plugged`` in the full run.)

Per move (all times CLOCK_MONOTONIC, shared by the processes):

* detection: the ``ip`` command that changed the path was started -> Bob's path
  monitor decided the move (an upper bound: it includes running ``ip`` itself, whose
  return often comes *after* the decision; the lower bound, measured from the return
  and clipped at 0, is printed on stderr);
* gap at Bob (moving side): last packet from Alice before the move -> first packet
  from Alice decrypted after it;
* gap at Alice: last packet from Bob's old address -> first from his new one;
* re-INVITE completion: decision -> 2xx to the move's re-INVITE at Bob.

Emulated RTT 0 (plain veth), 20 and 100 ms (one-way delay RTT/2 on Bob's links).
Prints medians and p95; asserts nothing on time (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def _gap(log: list[list[Any]], before: float, *, old_ip: str | None = None,
         new_ip: str | None = None) -> float | None:
    """ms from the last packet before ``before`` (from ``old_ip``, if given) to the
    first one after it (from ``new_ip``, if given)."""
    last = [t for t, ip, _ in log if t <= before and (old_ip is None or ip == old_ip)]
    first = [t for t, ip, _ in log if t > before and (new_ip is None or ip == new_ip)]
    if not last or not first:
        return None
    return float(min(first) - max(last)) * 1000


class _Measurement:
    def __init__(self) -> None:
        self.detection: list[float] = []
        self.detection_after_return: list[float] = []
        self.gap_moving: list[float] = []
        self.gap_peer: list[float] = []
        self.reinvite: list[float] = []

    def row(self, scenario: str, rtt_ms: int, auth: int, reuse: int) -> dict[str, Any]:
        def median(values: list[float]) -> float | None:
            return round(statistics.median(values), 2) if values else None

        return {
            "scenario": scenario, "rtt_ms": rtt_ms, "moves": len(self.gap_moving),
            "detection_ms_median": median(self.detection),
            "gap_moving_ms_median": median(self.gap_moving),
            "gap_moving_ms_p95": (round(_percentile(self.gap_moving, 0.95), 2)
                                  if self.gap_moving else None),
            "gap_peer_ms_median": median(self.gap_peer),
            "reinvite_ms_median": median(self.reinvite),
            "srtp_auth_failures": auth, "index_reuse": reuse,
        }


def _one_move(bob: Any, alice: Any, change: Any, *, old_ip: str, new_ip: str,
              into: _Measurement) -> None:
    started, returned = change()
    decision = bob.wait_for("decision", timeout=10)
    accepted = bob.wait_for("ReinviteAccepted", timeout=30)
    time.sleep(0.6)  # let audio settle on the new path
    b, a = bob.stats(), alice.stats()
    into.detection.append((decision["at"] - started) * 1000)
    into.detection_after_return.append(max(0.0, (decision["at"] - returned) * 1000))
    into.reinvite.append((accepted["at"] - decision["at"]) * 1000)
    moving = _gap(b["received_log"], decision["at"])
    peer = _gap(a["received_log"], decision["at"], old_ip=old_ip, new_ip=new_ip)
    if moving is not None:
        into.gap_moving.append(moving)
    if peer is not None:
        into.gap_peer.append(peer)


def _run_rtt(rtt_ms: int, moves: int, *, both: bool) -> list[dict[str, Any]]:
    sys.path.insert(0, str(REPO))
    from tests.mobility.roaming_harness import start_call  # noqa: PLC0415 - repo tool
    from tests.netns import Topology, build_roaming  # noqa: PLC0415

    unplugged, plugged = _Measurement(), _Measurement()
    with Topology() as topology:
        roaming = build_roaming(topology, emulate=rtt_ms > 0, delay_ms=rtt_ms / 2)
        host = roaming.bob
        alice, bob = start_call(roaming, bob_ip="10.4.0.2", auto=True)
        try:
            bob.wait_for("monitoring")
            time.sleep(0.5)

            def unplug() -> tuple[float, float]:
                started = time.monotonic()
                host.link_down("b1")
                return started, time.monotonic()

            def plug() -> tuple[float, float]:
                host.link_up("b1")
                started = time.monotonic()  # the route makes eth the kernel's choice
                host.add_default_route("10.4.0.1", dev="b1", metric=100)
                return started, time.monotonic()

            for _ in range(moves):
                _one_move(bob, alice, unplug, old_ip="10.4.0.2", new_ip="10.2.0.2",
                          into=unplugged)
                time.sleep(1.1)  # past the coalescer's hold-down (optional moves)
                _one_move(bob, alice, plug, old_ip="10.2.0.2", new_ip="10.4.0.2",
                          into=plugged)
            b, a = bob.stats(), alice.stats()
        finally:
            alice.quit()
            bob.quit()
    auth = int(a["auth_failures"] + b["auth_failures"])
    reuse = int(a["index_reuse"] + b["index_reuse"])
    for name, measured in (("eth_unplugged", unplugged), ("eth_plugged", plugged)):
        if measured.detection_after_return:
            print(f"{name} rtt {rtt_ms} ms: detection after `ip` returned, median "
                  f"{statistics.median(measured.detection_after_return):.2f} ms "
                  "(lower bound, 0 when the decision came first)", file=sys.stderr)
    rows = [unplugged.row("eth_unplugged", rtt_ms, auth, reuse)]
    if both:
        rows.append(plugged.row("eth_plugged", rtt_ms, auth, reuse))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobilityd.bench handover")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--quick", action="store_true",
                        help="one scenario, RTT 0 and 20 ms, 3 moves (< 60 s)")
    parser.add_argument("--moves", type=int, default=None, help="moves per RTT")
    args = parser.parse_args(argv)
    rtts = (0, 20) if args.quick else (0, 20, 100)
    moves = args.moves or (3 if args.quick else 10)
    runs: list[dict[str, Any]] = []
    for rtt in rtts:
        runs += _run_rtt(rtt, moves, both=not args.quick)
    if args.json:
        print(json.dumps({"runs": runs}))
    else:
        for run in runs:
            print(json.dumps(run))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the demo prints and writes: the step timeline, the checks, the summary, the PNG.

The checks (any failure makes the demo exit 1) are those of the mission: every step
done; on both ends of the call the SRTP sessions are the objects keyed at set-up (RFC
3711 §3.2: a context is not re-keyed by a move), the SSRCs never changed, the packet
index ran on without a jump (sent = last index - first index + 1, RFC 3711 §3.3.1), no
authentication failure and no replay; every move has a measured gap.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilityd.service.demo_png import Lane, Marker, lane_gaps, timeline_png
from mobilityd.service.errors import ControlError

if TYPE_CHECKING:
    from mobilityd.service.demo_agents import DemoAgents

__all__ = ["DemoReport", "StepRecord"]

ROLES = ("correspondent", "laptop", "pda")
BIN = 0.02  # seconds per timeline bin (the daemons' TIMELINE_BIN)
LANE_NAMES = {"correspondent": "ALICE", "laptop": "BOB LAPTOP", "pda": "BOB PDA"}


@dataclass
class StepRecord:
    title: str
    started: float
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class DemoReport:
    """Collects steps, snapshots and marks; :meth:`finish` checks and writes."""

    out: Path
    steps: list[StepRecord] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    snapshots: list[tuple[str, dict[str, list[dict[str, Any]]]]] = field(default_factory=list)
    final_calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    call_id: str | None = None
    failures: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[StepRecord]:
        record = StepRecord(title, time.time())
        self.steps.append(record)
        started = time.monotonic()
        self.say(f"[{self._clock(record.started)}] {title} ...")
        try:
            yield record
        except Exception as exc:
            record.seconds = time.monotonic() - started
            record.error = str(exc)
            self.say(f"           FAILED after {record.seconds:.2f} s: {exc}")
            raise
        record.seconds = time.monotonic() - started
        self.say(f"           done in {record.seconds:.2f} s")

    def failed_step(self, message: str) -> None:
        self.failures.append(f"step failed: {message}")

    def mark(self, label: str) -> None:
        self.marks.append((time.time(), label))

    def snapshot(self, agents: DemoAgents, label: str, talk: float) -> None:
        """Let the call run for ``talk`` seconds, then print each side's counters."""
        time.sleep(talk)
        calls: dict[str, list[dict[str, Any]]] = {}
        for role in ROLES:
            with contextlib.suppress(ControlError, OSError):
                calls[role] = agents.calls(role)
        self.snapshots.append((label, calls))
        for role in ROLES:
            for call in calls.get(role, []):
                self.say(f"           {LANE_NAMES[role]:<11} {_counters(call)}")
                for move in call.get("moves", [])[-1:]:
                    self.say(f"           {'':<11} last {move['kind']} {move['from']} -> "
                             f"{move['to']}: gap {move['gap_ms']} ms")

    def _clock(self, wall: float) -> str:
        first = self.steps[0].started if self.steps else wall
        return f"{wall - first:6.2f}s"

    # -- checks ---------------------------------------------------------------------------

    def capture(self, agents: DemoAgents, label: str) -> None:
        """Record every daemon's calls now (no pause, nothing printed)."""
        calls: dict[str, list[dict[str, Any]]] = {}
        for role in ROLES:
            with contextlib.suppress(ControlError, OSError):
                calls[role] = agents.calls(role)
        self.snapshots.append((label, calls))

    def _all_views(self) -> list[tuple[str, dict[str, Any]]]:
        """(role, call) for every call object seen, in time order, final views last."""
        views = [(role, call) for _, calls in self.snapshots
                 for role, role_calls in calls.items() for call in role_calls]
        views += [(role, call) for role, calls in self.final_calls.items() for call in calls]
        return views

    def _check_calls(self) -> None:
        views = self._all_views()
        if not self.final_calls.get("correspondent"):
            self.failures.append("correspondent: no call at the end to check")
        for role, call in views:
            rx = (call.get("srtp") or {}).get("rx") or {}
            if rx.get("auth_failures") or rx.get("replays"):
                self.failures.append(f"{role}: {rx.get('auth_failures')} authentication "
                                     f"failures, {rx.get('replays')} replays")
        alice = (self.final_calls.get("correspondent") or [{}])[0]
        kinds = [m.get("kind") for m in alice.get("moves", [])]
        steps_ok = all(step.error is None for step in self.steps)
        if steps_ok and (kinds.count("peer-roam") < 2 or kinds.count("transfer") < 2):
            self.failures.append(f"correspondent: expected 2 verified roams and 2 transfers "
                                 f"in the call's history, saw {kinds}")
        for role, final in ((r, c) for r, cs in self.final_calls.items() for c in cs[:1]):
            # the correspondent keeps one call (re-filed under a new Call-ID by a
            # transfer); a device compares a call with its own first view
            first = next(c for r, c in views if r == role and (
                role == "correspondent" or c.get("id") == final.get("id")))
            self._compare(role, first, final)

    def _compare(self, role: str, first: dict[str, Any], final: dict[str, Any]) -> None:
        srtp, start = final.get("srtp") or {}, first.get("srtp") or {}
        if not srtp.get("same_sessions"):
            self.failures.append(f"{role}: SRTP sessions were replaced")
        tx, then = srtp.get("tx") or {}, start.get("tx") or {}
        if then and tx.get("ssrc") != then.get("ssrc"):
            self.failures.append(f"{role}: sent SSRC changed")
        # the index never goes back; the correspondent's call, seen first seconds
        # before the end, must also have run on (a device's last call may be seen twice
        # within a few ms)
        ran_on = (tx.get("last_index") or 0) - (then.get("last_index") or 0)
        if then and (ran_on < 0 or (role == "correspondent" and ran_on == 0)):
            self.failures.append(f"{role}: sent packet index did not run on")
        if tx.get("last_index") is not None and tx.get("first_index") is not None:
            span = tx["last_index"] - tx["first_index"] + 1
            if span != tx.get("packets"):
                self.failures.append(f"{role}: sent index jumped ({tx.get('packets')} "
                                     f"packets over {span} indices)")
        for move in final.get("moves", []):
            if move.get("gap_ms") is None:
                self.failures.append(f"{role}: a move without a measured gap")

    def finish(self) -> bool:
        """Check, print the verdict, write summary.txt and timeline.png."""
        if self.final_calls:
            self._check_calls()
        for code_role, code in self.exit_codes.items():
            if code not in (0, None):
                self.failures.append(f"{code_role} daemon exited with {code}")
        self.say("")
        self.say("checks: " + ("all passed" if not self.failures else
                               f"{len(self.failures)} FAILED"))
        for failure in self.failures:
            self.say(f"  - {failure}")
        png = self.out / "timeline.png"
        duration, lanes, markers = self._lanes()
        png.write_bytes(timeline_png("MOBILITYD DEMO: MEDIA TIMELINE", lanes, markers,
                                     duration))
        self.say(f"media timeline: {png}")
        (self.out / "summary.txt").write_text(self._summary_text(lanes, markers))
        (self.out / "summary.json").write_text(json.dumps(self._summary_json(lanes), indent=1))
        self.say(f"summary: {self.out / 'summary.txt'} (and summary.json)")
        return not self.failures

    # -- outputs --------------------------------------------------------------------------

    def _lanes(self) -> tuple[float, list[Lane], list[Marker]]:
        """One lane per device: every call it held, each call's latest timeline."""
        segments: dict[str, dict[float, list[int]]] = {role: {} for role in ROLES}
        for role, call in self._all_views():
            timeline = call.get("timeline")
            if timeline:  # a later view of the same call (same start) is longer
                segments[role][float(timeline["start"])] = list(timeline["received"])
        starts = [start for segs in segments.values() for start in segs]
        t0 = min([*starts, *(s.started for s in self.steps[1:2])] or [time.time()])
        ends = [start + len(counts) * BIN for segs in segments.values()
                for start, counts in segs.items()]
        end = max([*ends, *(at for at, _ in self.marks), t0 + 1.0])
        lanes = []
        for role, segs in segments.items():
            if not segs:
                continue
            first = min(segs)
            last = max(s + len(c) * BIN for s, c in segs.items())
            counts = [0] * round((last - first) / BIN)
            for start, seg in segs.items():
                offset = round((start - first) / BIN)
                counts[offset:offset + len(seg)] = seg
            # a call's span: from its first packet to its last (its ends are not gaps)
            active = [(s - t0 + _first_packet(c) * BIN, s - t0 + _last_packet(c) * BIN)
                      for s, c in segs.items()]
            lanes.append(Lane(LANE_NAMES[role], first - t0, counts, active))
        markers = [Marker(at - t0, label) for at, label in self.marks]
        return end - t0, lanes, markers

    def _summary_json(self, lanes: list[Lane]) -> dict[str, Any]:
        """The same facts for scripts (benchmarks take medians over runs)."""
        moves: dict[str, list[dict[str, Any]]] = {}
        for role, call in self._all_views():
            for move in call.get("moves", []):
                known = moves.setdefault(role, [])
                same = [m for m in known if m["at"] == move["at"]]
                if same:
                    same[0].update(move)
                else:
                    known.append(dict(move))
        return {
            "ok": not self.failures, "failures": self.failures,
            "steps": [{"title": r.title, "seconds": round(r.seconds, 3), "error": r.error}
                      for r in self.steps],
            "moves": moves,
            "gaps_ms": {lane.name: [round(sec * 1000) for _, sec in lane_gaps(lane, BIN)]
                        for lane in lanes},
        }

    def _summary_text(self, lanes: list[Lane], markers: list[Marker]) -> str:
        text = ["mobilityd demo summary", "", "steps:"]
        for record in self.steps:
            verdict = "ok" if record.error is None else f"FAILED: {record.error}"
            text.append(f"  {record.title}: {record.seconds:.2f} s, {verdict}")
        text += ["", "timeline of the run (stdout):", *("  " + line for line in self.lines)]
        text += ["", "timeline.png legend: one lane per device; blue bars = SRTP packets "
                 "received per 20 ms bin; pink = gaps (3 or more bins in a row without a "
                 "packet while the call was there); red lines = steps:"]
        text += [f"  {m.at:7.2f} s  {m.label}" for m in markers]
        for lane in lanes:
            gaps = [(at, seconds * 1000) for at, seconds in lane_gaps(lane, BIN)]
            text.append(f"  lane {lane.name}: {len(lane.counts)} bins from "
                        f"{lane.start:.2f} s, {sum(lane.counts)} packets; gaps: "
                        + (", ".join(f"{ms:.0f} ms at {at:.2f} s" for at, ms in gaps)
                           or "none"))
        text += ["", "checks: " + ("all passed" if not self.failures else "FAILED"),
                 *(f"  - {f}" for f in self.failures), ""]
        return "\n".join(text)


def _first_packet(counts: list[int]) -> int:
    return next((n for n, count in enumerate(counts) if count), len(counts))


def _last_packet(counts: list[int]) -> int:
    return next((len(counts) - n for n, count in enumerate(reversed(counts)) if count), 0)


def _counters(call: dict[str, Any]) -> str:
    srtp = call.get("srtp") or {}
    tx, rx = srtp.get("tx") or {}, srtp.get("rx") or {}
    return (f"{call.get('key_agreement')}/{call.get('srtp_suite')} local {call.get('local')} "
            f"| sent SSRC {tx.get('ssrc', 0):#010x} idx {tx.get('first_index')}.."
            f"{tx.get('last_index')} | recv SSRC {rx.get('ssrc', 0) or 0:#010x} "
            f"{rx.get('packets')} pkts, {rx.get('auth_failures')} auth fail, "
            f"{rx.get('replays')} replays | same context: {srtp.get('same_sessions')}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run `mobilityd demo`")

"""The timeline of one call transfer (``python -m mobilityd.bench transfer --timeline``).

Every party of the run keeps CLOCK_MONOTONIC stamps (one clock for all the processes
of the machine) with the CPU time its loop thread had used
(:class:`mobilityd.mobility.transfer_party.Timeline`). Here they are merged and cut
into the move's critical path (docs/transfer.md, "Speed"):

=====================  =============================================================
segment                from -> to
=====================  =============================================================
``mover``              move command -> REFER sent (old device)
``hop_refer``          REFER sent -> received by Alice
``alice_offer``        REFER received -> transfer INVITE sent (Alice)
``hop_invite``         INVITE sent -> received by the new device
``target_answer``      INVITE received -> 200 OK sent (new device)
``hop_answer``         200 OK sent -> received by Alice
``alice_switch``       200 OK received -> her first packet sent to the new device
``hop_media``          that packet sent -> read by the new device
``target_decrypt``     read -> decrypted (its ``FirstPacketReceived``)
=====================  =============================================================

The segments add up to the benchmark's ``first_packet_new_device_ms`` of the move.

A segment inside one party has a wall time and the CPU time its loop used meanwhile
(the difference is waiting: for a core, or for the loop to get to it); a hop has a
wall time only (two userspace link emulators and the kernel).
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ALICE_IP = "10.71.1.2"


@dataclass(frozen=True)
class Stamp:
    at: float
    role: str
    cpu: float  # CPU time of the party's loop thread so far
    what: str


def collect(world: Any) -> list[Stamp]:
    """Every party's stamps since the last call (each party then starts afresh)."""
    stamps = []
    for role, party in world.parties.items():
        party.send(cmd="timeline")
        stamps += [Stamp(at, role, cpu, what)
                   for at, cpu, what in party.wait_for("timeline")["stamps"]]
    return sorted(stamps, key=lambda stamp: stamp.at)


def print_merged(stamps: Iterable[Stamp], started: float) -> None:
    """The stamps from the move command on, in ms after it; ``cpu``: what the party
    used since its previous stamp."""
    previous: dict[str, float] = {}
    for stamp in stamps:
        used = stamp.cpu - previous.get(stamp.role, stamp.cpu)
        previous[stamp.role] = stamp.cpu
        if stamp.at >= started - 0.001:
            print(f"{(stamp.at - started) * 1000:8.2f} ms  {stamp.role:6}  "
                  f"cpu {used * 1000:5.2f}  {stamp.what}", file=sys.stderr)
    print(file=sys.stderr)


def _find(stamps: list[Stamp], role: str, text: str, after: float,
          also: str = "") -> Stamp | None:
    for stamp in stamps:
        if (stamp.at >= after and stamp.role == role and stamp.what.startswith(text)
                and also in stamp.what):
            return stamp
    return None


def critical_path(stamps: list[Stamp], started: float, *, source: str, target: str,
                  target_ip: str, decrypted: float
                  ) -> dict[str, tuple[float, float | None]] | None:
    """The segments of the module docstring as (wall ms, CPU ms or None for a hop),
    then ``target_decrypt`` (packet read -> decrypted at ``decrypted``, the new device's
    FirstPacketReceived time); None when a stamp is missing."""
    marks: list[tuple[str, str, str, str]] = [
        # (segment name ending here, role, stamp text, must also contain)
        ("", source, "move command", ""),
        ("mover", source, "sip> REFER", ""),
        ("hop_refer", "alice", "sip< REFER", ""),
        ("alice_offer", "alice", "sip> INVITE", ""),
        ("hop_invite", target, "sip< INVITE", ""),
        ("target_answer", target, "sip> SIP/2.0 200 OK", ""),
        ("hop_answer", "alice", "sip< 200 INVITE", ""),
        ("alice_switch", "alice", f"udp> first to ('{target_ip}'", ""),
        ("hop_media", target, "udp< first of ssrc", f"('{ALICE_IP}'"),
    ]
    path: dict[str, tuple[float, float | None]] = {}
    previous: Stamp | None = None
    after = started - 0.001
    for name, role, text, also in marks:
        stamp = _find(stamps, role, text, after, also)
        if stamp is None:
            return None
        if previous is not None:
            cpu = (stamp.cpu - previous.cpu) * 1000 if stamp.role == previous.role else None
            path[name] = ((stamp.at - previous.at) * 1000, cpu)
        previous, after = stamp, stamp.at
    assert previous is not None
    path["target_decrypt"] = ((decrypted - previous.at) * 1000, None)
    return path


def summarize(paths: list[dict[str, tuple[float, float | None]]]
              ) -> dict[str, dict[str, float | None]]:
    """Median wall and CPU time per segment over the moves."""
    summary: dict[str, dict[str, float | None]] = {}
    for name in paths[0] if paths else ():
        walls = [path[name][0] for path in paths]
        cpus = [cpu for path in paths if (cpu := path[name][1]) is not None]
        summary[name] = {"wall": round(statistics.median(walls), 2),
                         "cpu": round(statistics.median(cpus), 2) if cpus else None}
    return summary

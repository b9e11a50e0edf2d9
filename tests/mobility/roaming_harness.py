"""Drive two :mod:`tests.mobility.roaming_party` processes (Alice, Bob) on the
roaming test hosts of tests/netns.py and read their reports."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mobilityd.call.sdpmedia import PTIME_MS
from tests.netns import RoamingTopology, TestHost

REPO = Path(__file__).resolve().parents[2]
ALICE_SIP_PORT = 5060


def _core_for(options: dict[str, Any]) -> list[str]:
    """A traced party wraps methods of SIP classes (`roaming_trace`), which the
    mypyc-compiled core does not allow: it runs the SIP core's Python sources."""
    return ["MOBILITYD_SIP_CORE=python"] if options.get("trace") else []


class PartyProcess:
    """One party: JSON commands in, JSON events out (read by a thread)."""

    def __init__(self, host: TestHost, role: str, options: dict[str, Any]) -> None:
        self.role = role
        self.proc = host.popen(
            ["env", f"PYTHONPATH={REPO}", *_core_for(options), sys.executable,
             "-m", "tests.mobility.roaming_party", role, json.dumps(options)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.put(json.loads(line))
        self.events.put({"event": "exited"})

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def wait_for(self, event: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for seen in self.seen:
            if seen["event"] == event:
                self.seen.remove(seen)
                return seen
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.role}: no {event!r} within {timeout} s; "
                                     f"stderr: {self.stderr_tail()}")
            try:
                got = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if got["event"] == event:
                return got
            if got["event"] == "exited":
                raise AssertionError(f"{self.role} exited: {self.stderr_tail()}")
            self.seen.append(got)

    def has_seen(self, event: str) -> bool:
        while not self.events.empty():
            self.seen.append(self.events.get())
        return any(e["event"] == event for e in self.seen)

    def stats(self) -> dict[str, Any]:
        self.send(cmd="stats")
        return self.wait_for("stats")

    def stderr_tail(self) -> str:
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "(running)"
        assert self.proc.stderr is not None
        text: str = self.proc.stderr.read()
        return text[-3000:]

    def quit(self) -> None:
        if self.proc.poll() is None:
            self.send(cmd="quit")
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_call(roaming: RoamingTopology, *, bob_ip: str = "10.2.0.2",
               alice_ip: str | None = None, alice_sip_ip: str | None = None,
               bob_sip_ip: str | None = None, alice_alternates: dict[str, str] | None = None,
               trace: bool = False, realtime: bool = False, ptime_ms: int = PTIME_MS,
               **bob_options: Any) -> tuple[PartyProcess, PartyProcess]:
    """Alice listens, Bob calls her from ``bob_ip``; returns once both are talking.
    Signalling uses the media addresses unless ``*_sip_ip`` say otherwise; ``trace``
    makes both record the move's stages (:mod:`tests.mobility.roaming_trace`),
    ``realtime`` runs both at SCHED_FIFO (diagnosis of the machine's load); both send
    one audio frame every ``ptime_ms``."""
    alice_ip = alice_ip or roaming.alice4
    alice_sip_ip = alice_sip_ip or alice_ip
    alice = PartyProcess(roaming.alice, "alice", {
        "sip_ip": alice_sip_ip, "sip_port": ALICE_SIP_PORT, "media_ip": alice_ip,
        "alternates": alice_alternates or {}, "trace": trace,
        "realtime": realtime, "ptime_ms": ptime_ms})
    alice.wait_for("ready")
    bob = PartyProcess(roaming.bob, "bob", {
        "sip_ip": bob_sip_ip or bob_ip, "media_ip": bob_ip, "peer_sip_ip": alice_sip_ip,
        "peer_sip_port": ALICE_SIP_PORT, "trace": trace,
        "realtime": realtime, "ptime_ms": ptime_ms, **bob_options})
    bob.wait_for("ready")
    bob.wait_for("established")
    alice.wait_for("established")
    return alice, bob


def received_from(stats: dict[str, Any], ip: str, after: float = 0.0) -> int:
    """How many decrypted packets came from ``ip`` after monotonic time ``after``."""
    return sum(1 for t, source, _ in stats["received_log"] if source == ip and t > after)


def wait_until(party: PartyProcess, check: Any, timeout: float = 10.0) -> dict[str, Any]:
    """Poll the party's stats until ``check(stats)`` holds (or fail with the stats)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = party.stats()
        if check(stats):
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"{party.role}: condition not met; stats: "
                                 f"{ {k: v for k, v in stats.items() if k != 'received_log'} }")
        time.sleep(0.1)

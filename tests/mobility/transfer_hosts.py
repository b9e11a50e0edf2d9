"""Alice, Bob's laptop and Bob's PDA in three test hosts (network namespaces) behind a
router, over userspace-emulated links (delay, loss); each runs
:mod:`mobilityd.mobility.transfer_party`. Used by the transfer netns tests and by
``python -m mobilityd.bench transfer``."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.netns import EmulatedLink, TestHost, Topology

REPO = Path(__file__).resolve().parents[2]
IPS = {"alice": "10.71.1.2", "laptop": "10.71.2.2", "pda": "10.71.3.2"}
SIP_PORT, HANDOFF_PORT = 5060, 5070


@dataclass(eq=False)
class PartyProcess:
    role: str
    proc: subprocess.Popen[str]
    stderr: IO[str]
    lines: list[dict[str, Any]] = field(default_factory=list)
    _pending: bytes = b""

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def wait_for(self, event: str, timeout: float = 20.0) -> dict[str, Any]:
        """The next output line with ``event`` (earlier lines are kept in ``lines``).

        Reads the pipe with ``os.read`` and splits lines itself: a buffered
        ``readline`` after ``select`` would leave a second line in the file's buffer,
        invisible to the next ``select``."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._pending:
                raw, self._pending = self._pending.split(b"\n", 1)
                record: dict[str, Any] = json.loads(raw)
                self.lines.append(record)
                if record.get("event") == event:
                    return record
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            if not ready:
                with contextlib.suppress(OSError):
                    os.kill(self.proc.pid, signal.SIGUSR1)  # faulthandler: stacks
                    time.sleep(0.5)
                raise TimeoutError(f"{self.role}: no {event!r} within {timeout} s; "
                                   f"stderr: {self.errors()[-6000:]}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"{self.role} exited: {self.errors()[-2000:]}")
            self._pending += chunk

    def errors(self) -> str:
        """What the party wrote on stderr (a file: a full pipe would block it)."""
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def stats(self) -> dict[str, Any]:
        self.send(cmd="stats")
        return self.wait_for("stats")

    def quit(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(cmd="quit")
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.stderr.close()


@dataclass(eq=False)
class TransferHosts:
    hosts: dict[str, TestHost]
    links: dict[str, EmulatedLink]
    router: TestHost
    parties: dict[str, PartyProcess] = field(default_factory=dict)
    capture: subprocess.Popen[str] | None = None

    def start_capture(self) -> None:
        """Record every RTP datagram crossing the router
        (:mod:`tests.mobility.transfer_capture`) until :meth:`stop_capture`."""
        self.capture = self.router.popen(
            [sys.executable, "-m", "tests.mobility.transfer_capture"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(REPO))
        assert self.capture.stdout is not None
        if self.capture.stdout.readline().strip() != "ready":
            raise RuntimeError("the capture on the router did not start")

    def stop_capture(self) -> list[tuple[int, int, str]]:
        """The captured (SSRC, sequence number, digest) of every RTP datagram."""
        capture, self.capture = self.capture, None
        assert capture is not None and capture.stdin is not None
        output, _ = capture.communicate("", timeout=20)
        return [(int(a), int(b), str(c)) for a, b, c in json.loads(output)["packets"]]

    def start(self, **options: Any) -> None:
        """Start the three parties with ``options`` (``roles``: extra options of one
        role, e.g. ``{"pda": {"handoff_drop_in": [0]}}``)."""
        per_role: dict[str, dict[str, Any]] = options.pop("roles", {})
        common = {"ips": IPS, "sip_port": SIP_PORT, "handoff_port": HANDOFF_PORT,
                  "device_key": bytes(range(64, 96)).hex(), **options}
        for role in ("alice", "pda", "laptop"):
            opts = {**common, **per_role.get(role, {})}
            errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in quit())
            proc = self.hosts[role].popen(
                [sys.executable, "-m", "mobilityd.mobility.transfer_party", role,
                 json.dumps(opts)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                text=True, cwd=str(REPO))
            self.parties[role] = PartyProcess(role, proc, errors)
        for party in self.parties.values():  # started together: imports overlap
            party.wait_for("ready")

    def call(self) -> None:
        """The laptop calls Alice and both see the call connected."""
        self.parties["laptop"].send(cmd="call")
        self.parties["laptop"].wait_for("connected")
        self.parties["alice"].wait_for("connected")

    def close(self) -> None:
        for party in self.parties.values():
            party.quit()
        if self.capture is not None and self.capture.poll() is None:
            self.capture.kill()
            self.capture.wait()


def build_transfer_hosts(topology: Topology, *, delay_ms: float = 0.0,
                         loss_pct: float = 0.0) -> TransferHosts:
    """Three hosts, each on its own emulated link to one router (delay per direction)."""
    rtr = topology.add_router("trr")
    hosts, links = {}, {}
    for index, role in enumerate(("alice", "laptop", "pda"), start=1):
        host = topology.add_host(f"t{role[:3]}")
        links[role] = topology.connect_emulated(host, "e0", rtr, f"r{index}",
                                                delay_ms=delay_ms, loss_pct=loss_pct,
                                                seed=index)
        host.add_address("e0", f"10.71.{index}.2/24")
        rtr.add_address(f"r{index}", f"10.71.{index}.1/24")
        host.add_default_route(f"10.71.{index}.1")
        host.link_up("lo")
        hosts[role] = host
    return TransferHosts(hosts, links, rtr)

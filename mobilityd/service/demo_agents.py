"""The demo's three daemons: keys, configurations and processes.

Keys are made with the real ``mobilityctl keys`` (the commands of
``agents/make-keys.sh``) into a temporary directory; each ``agents/<role>/mobilityd.toml``
is copied there with only what the demo must change: SIP bound to the host's own
address (so that a move really changes the socket), the log level, and the control
socket (``mobilityd --socket``); with ``--kamailio`` a ``[registrar]``, GRUU device
contacts and no direct peer contacts (:mod:`.demo_kamailio`). Each daemon runs in its
host's namespace; its stderr (journald-style lines) goes to ``<out>/<role>.log``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mobilityd.service.client import ControlClient, DaemonUnreachable
from mobilityd.service.demo_kamailio import (
    KamailioError,
    ensure_passwords,
    password_file,
    registrar_overrides,
)
from mobilityd.service.demo_world import ALICE_IP, LAPTOP_WIFI_A, PDA_IP, DemoWorld
from mobilityd.service.errors import ControlError, ErrorCode
from mobilityd.service.protocol import Op

__all__ = ["AGENT_ADDRESSES", "DemoAgents", "DemoError", "find_agents_dir"]

AGENT_ADDRESSES = {"correspondent": ALICE_IP, "laptop": LAPTOP_WIFI_A, "pda": PDA_IP}
NAMESPACE_OF = {"correspondent": "alice", "laptop": "laptop", "pda": "pda"}
START_TIMEOUT = 30.0


class DemoError(Exception):
    """A demo step that could not be done; the message names the step."""


def find_agents_dir() -> Path:
    """``agents/`` of this checkout (the demo's configurations)."""
    candidate = Path(__file__).resolve().parents[2] / "agents"
    if not (candidate / "laptop" / "mobilityd.toml").is_file():
        raise DemoError(f"the example agents are not found at {candidate} (the demo runs "
                        "from a checkout of mobilityd)")
    return candidate


def _ctl(*commands: Sequence[str]) -> None:
    """Run ``mobilityctl keys <command>`` for each command, in parallel."""
    running = [(args, subprocess.Popen(
        [sys.executable, "-m", "mobilityd.service.ctl", "keys", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env())) for args in commands]
    for args, process in running:
        output, _ = process.communicate()
        if process.returncode != 0:
            raise DemoError(f"creating keys: `mobilityctl keys {' '.join(args)}` failed: "
                            f"{output.decode(errors='replace').strip()}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(key, None)
    return env


def make_keys(base: Path) -> None:
    """The keys of the three agents (as ``agents/make-keys.sh`` makes them)."""
    old = os.umask(0o077)
    try:
        ca = base / "ca"
        for folder in (ca, *(base / r / "keys" for r in AGENT_ADDRESSES)):
            folder.mkdir(parents=True, exist_ok=True)
        _ctl(("ca", "--key", str(ca / "ca.key"), "--cert", str(ca / "ca.crt"),
              "--name", "mobilityd demo CA"),
             ("psk", str(ca / "alice-bob.psk")), ("psk", str(ca / "bob-devices.key")))
        devices = (("correspondent", "alice", "sip:alice@example.net"),
                   ("laptop", "laptop", "sip:bob@example.org"),
                   ("pda", "pda", "sip:bob@example.org"))
        _ctl(*(("device-cert", "--ca-key", str(ca / "ca.key"), "--ca-cert",
                str(ca / "ca.crt"), "--uri", uri, "--device", device,
                "--key", str(base / role / "keys" / f"{device}.key"),
                "--cert", str(base / role / "keys" / f"{device}.crt"))
               for role, device, uri in devices))
        for role, _, _ in devices:
            _copy(ca / "ca.crt", base / role / "keys" / "ca.crt", 0o644)
        _copy(ca / "alice-bob.psk", base / "correspondent" / "keys" / "bob.psk", 0o600)
        for device in ("laptop", "pda"):
            _copy(ca / "alice-bob.psk", base / device / "keys" / "alice.psk", 0o600)
            _copy(ca / "bob-devices.key", base / device / "keys" / "device.key", 0o600)
    finally:
        os.umask(old)


def _copy(source: Path, target: Path, mode: int) -> None:
    target.write_bytes(source.read_bytes())
    target.chmod(mode)


BOB_DEVICES = {"laptop": "sip:bob@example.org", "pda": "sip:bob@example.org"}
"""Bob's devices and their AOR (``agents/laptop`` and ``agents/pda``)."""
IDENTITY = {"correspondent": "sip:alice@example.net", "laptop": "sip:bob@example.org",
            "pda": "sip:bob@example.org"}


def write_config(agents: Path, base: Path, role: str, log_level: str, *,
                 registrar: bool = False) -> Path:
    """``agents/<role>/mobilityd.toml`` with the demo's overrides (module docstring);
    ``registrar``: through the demo's Kamailio (:func:`.demo_kamailio.registrar_overrides`)."""
    text = (agents / role / "mobilityd.toml").read_text()
    if registrar:
        try:
            user = IDENTITY[role].split(":", 1)[1].split("@", 1)[0]
            ensure_passwords(base, (user,))
            text = registrar_overrides(text, IDENTITY[role],
                                       BOB_DEVICES if role != "correspondent" else {},
                                       password_file(base, user))
        except KamailioError as exc:
            raise DemoError(f"agents/{role}/mobilityd.toml: {exc}") from None
    text, binds = re.subn(r'(?m)^bind = "[^"]*"', f'bind = "{AGENT_ADDRESSES[role]}"', text)
    text, levels = re.subn(r'(?m)^level = "[^"]*"', f'level = "{log_level}"', text)
    if binds != 1 or levels != 1:
        raise DemoError(f"agents/{role}/mobilityd.toml: no single [sip] bind / [log] level "
                        "to override")
    path = base / role / "mobilityd.toml"
    path.write_text(text)
    return path


@dataclass
class DemoAgents:
    """The three running daemons and their control sockets."""

    world: DemoWorld
    base: Path
    out: Path
    log_level: str = "info"
    tone_hz: float = 440.0
    daemon_argv: Sequence[str] = (sys.executable, "-m", "mobilityd")
    """How a daemon is started (tests wrap it, e.g. to run it under restrictions)."""
    extra_env: dict[str, str] = field(default_factory=dict)
    socket_dir: Path | None = None
    """Where the control sockets go (default: ``base``)."""
    registrar: bool = False
    """Register at the demo's Kamailio (``mobilityd demo --kamailio``)."""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, IO[bytes]] = field(default_factory=dict)

    def socket(self, role: str) -> Path:
        return (self.socket_dir or self.base) / f"{role}.sock"

    def attach(self, role: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        """Adopt a daemon started by the caller (e.g. under restrictions); wait for it."""
        self.processes[role], self.logs[role] = process, log
        self._wait_ready(role)

    def start(self, roles: Sequence[str] = tuple(AGENT_ADDRESSES)) -> None:
        """Make the keys of all three agents, start the daemons of ``roles``."""
        agents = find_agents_dir()
        make_keys(self.base)
        for role in roles:
            config = write_config(agents, self.base, role, self.log_level,
                                  registrar=self.registrar)
            log = open(self.out / f"{role}.log", "wb")  # noqa: SIM115 - closed in stop()
            self.logs[role] = log
            argv = [*self.daemon_argv, "--config", str(config),
                    "--socket", str(self.socket(role)), "--tone", str(self.tone_hz)]
            self.processes[role] = subprocess.Popen(
                self.world.command_in(NAMESPACE_OF[role], argv), stdout=log, stderr=log,
                env={**_env(), **self.extra_env})
        for role in roles:
            self._wait_ready(role)

    def _wait_ready(self, role: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            process = self.processes[role]
            if process.poll() is not None:
                raise DemoError(f"starting the {role} daemon: it exited with "
                                f"{process.returncode} (see {self.out / (role + '.log')})")
            try:
                status = self.request(role, Op.STATUS)
            except (DaemonUnreachable, ControlError):
                time.sleep(0.1)
                continue
            if not status.get("calls", {}).get("available"):
                raise DemoError(f"starting the {role} daemon: call handling is not "
                                f"available (see {self.out / (role + '.log')})")
            return
        raise DemoError(f"starting the {role} daemon: no control socket after "
                        f"{START_TIMEOUT:.0f} s")

    def request(self, role: str, op: Op, **args: Any) -> Any:
        """One control request; a refusal raises :class:`ControlError`."""
        with ControlClient(self.socket(role), timeout=15.0) as client:
            reply = client.request(op, **args)
        if not reply.ok:
            error = reply.error or {}
            code = str(error.get("code", "internal"))
            try:
                error_code = ErrorCode(code)
            except ValueError:
                error_code = ErrorCode.INTERNAL
            raise ControlError(error_code, str(error.get("message", "refused")))
        return reply.result

    def registration(self, role: str) -> dict[str, Any]:
        """``status.registration`` of ``role``'s daemon (empty before the first one)."""
        found = self.request(role, Op.STATUS).get("registration")
        return dict(found) if isinstance(found, dict) else {}

    def calls(self, role: str) -> list[dict[str, Any]]:
        result = self.request(role, Op.CALLS)
        return list(result) if isinstance(result, list) else []

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every daemon (it ends its calls with BYE); their exit codes."""
        codes: dict[str, int | None] = {}
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for role, process in self.processes.items():
            try:
                codes[role] = process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[role] = process.wait()
        for log in self.logs.values():
            log.close()
        return codes

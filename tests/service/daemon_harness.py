"""Runs the real ``mobilityd`` as a subprocess with a fake systemd notify socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
WAIT = 30.0  # generous: the machine is shared; nothing here measures time


class NotifySocket:
    """The test's stand-in for systemd: a Unix datagram socket the daemon reports to."""

    def __init__(self, directory: Path, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"mobilityd-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            path = directory / "notify.sock"
            self.sock.bind(str(path))
            self.env_value = str(path)
        self.sock.settimeout(WAIT)
        self.received: list[dict[str, str]] = []

    def next(self) -> dict[str, str]:
        data = self.sock.recv(4096).decode()
        message = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
        self.received.append(message)
        return message

    def wait_for(self, key: str, value: str | None = None) -> dict[str, str]:
        while True:
            message = self.next()
            if key in message and (value is None or message[key] == value):
                return message

    def close(self) -> None:
        self.sock.close()


class DaemonProcess:
    def __init__(self, config: Path, notify: NotifySocket | None,
                 extra_env: dict[str, str] | None = None,
                 command: Sequence[str] | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET",
                                                                 "WATCHDOG_USEC")}
        env["PYTHONPATH"] = str(REPO)
        if notify is not None:
            env["NOTIFY_SOCKET"] = notify.env_value
        env.update(extra_env or {})
        argv = list(command or [sys.executable, "-m", "mobilityd"])
        self.proc = subprocess.Popen([*argv, "--config", str(config), *extra_args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = WAIT) -> tuple[int, str]:
        """Wait for exit (SIGKILL if it hangs, and fail); return (code, stderr)."""
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"mobilityd did not exit; stderr:\n{err}") from None
        return self.proc.returncode, err

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.finish()


def ask(path: Path, **obj: Any) -> dict[str, Any]:
    """One request over the control socket, one reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        sock.connect(str(path))
        sock.sendall(json.dumps({"v": 1, "id": 1, **obj}).encode() + b"\n")
        reply: dict[str, Any] = json.loads(sock.makefile("rb").readline())
        return reply

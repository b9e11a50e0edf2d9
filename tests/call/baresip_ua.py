"""baresip (Debian ``baresip-core``, a plain SIP UA) as a test peer.

:class:`BaresipUA` writes a config directory from ``tests/call/baresip/*.template`` (its
own ``sip_listen``, ``ctrl_tcp`` port, a WAV tone as audio source), starts
``baresip -f DIR`` in its own session and drives it through the ctrl_tcp module: JSON
commands in netstrings (``{"command", "params", "token"}``), answered by
``{"response": true, "ok", "data", "token"}``; UA events (``CALL_RINGING``,
``CALL_ESTABLISHED``, ``CALL_CLOSED`` ...) arrive on the same connection as
``{"event": true, "type", "param", ...}``. It is stopped by ``quit`` and, failing that,
killed by its pid. Ports are picked free on loopback, so parallel runs do not collide.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mobilityd.media.tone import ToneGenerator
from mobilityd.media.wav import WavRecorder

TEMPLATES = Path(__file__).with_name("baresip")
LOOPBACK = "127.0.0.1"


def free_port(kind: int = socket.SOCK_DGRAM, ip: str = LOOPBACK) -> int:
    """A port free right now for ``kind`` (UDP: also checked for TCP, SIP uses both)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind((ip, 0))
            port: int = first.getsockname()[1]
            other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind((ip, port))
                except OSError:
                    continue
            return port


def write_tone_wav(path: Path, hz: float, seconds: float = 30.0) -> None:
    """An 8 kHz mono 16-bit WAV of a sine (what aufile plays; it loops nothing)."""
    tone = ToneGenerator(hz, 0.5)
    recorder = WavRecorder(path)
    for _ in range(int(seconds * 50)):
        recorder.write_frame(tone.read_frame())
    recorder.close()


class _Netstrings:
    """Reads netstrings (``LEN:DATA,``) off a socket in a thread into two queues."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.responses: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b":" in buffer:
                length_text, rest = buffer.split(b":", 1)
                length = int(length_text)
                if len(rest) < length + 1:
                    break
                item = json.loads(rest[:length])
                buffer = rest[length + 1:]
                (self.responses if item.get("response") else self.events).put(item)

    def send(self, item: dict[str, Any]) -> None:
        data = json.dumps(item).encode()
        self.sock.sendall(str(len(data)).encode() + b":" + data + b",")


class BaresipUA:
    """One baresip process (see the module docstring)."""

    def __init__(self, directory: Path, *, user: str = "carol", tone_hz: float = 1000.0,
                 answermode: str = "auto") -> None:
        self.binary = shutil.which("baresip")
        if self.binary is None:
            pytest.fail("baresip not found: install the Debian package baresip-core")
        self.directory = directory
        self.user = user
        self.tone_hz = tone_hz
        self.sip_port = free_port()
        self.ctrl_port = free_port(socket.SOCK_STREAM)
        self.uri = f"sip:{user}@{LOOPBACK}:{self.sip_port}"
        self.log = directory / "baresip.log"
        self._answermode = answermode
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctrl: _Netstrings | None = None
        self._token = 0

    def _write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        wav = self.directory / "source.wav"
        write_tone_wav(wav, self.tone_hz)
        rtp_low = free_port()
        values = {"sip_ip": LOOPBACK, "sip_port": self.sip_port, "name": self.user,
                  "source_wav": wav, "ctrl_ip": LOOPBACK, "ctrl_port": self.ctrl_port,
                  "rtp_ports": f"{rtp_low & ~1}-{(rtp_low & ~1) + 40}", "user": self.user,
                  "answermode": self._answermode}
        for name in ("config", "accounts"):
            text = (TEMPLATES / f"{name}.template").read_text()
            (self.directory / name).write_text(text.format(**values))
        (self.directory / "contacts").write_text("")

    def start(self, timeout: float = 15.0) -> None:
        assert self.binary is not None
        self._write_config()
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen([self.binary, "-f", str(self.directory)],
                                          stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                pytest.fail(f"baresip exited ({self._proc.returncode}): {self.output()[-1500:]}")
            with contextlib.suppress(OSError):
                sock = socket.create_connection((LOOPBACK, self.ctrl_port), timeout=1)
                self._ctrl = _Netstrings(sock)
                if "baresip is ready" in self.output():
                    return
                self._wait_ready(deadline)
                return
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"baresip did not start: {self.output()[-1500:]}")

    def _wait_ready(self, deadline: float) -> None:
        while "baresip is ready" not in self.output():
            if time.monotonic() > deadline:
                pytest.fail(f"baresip not ready: {self.output()[-1500:]}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Run a ctrl_tcp command; its response (``ok``, ``data``)."""
        assert self._ctrl is not None, "baresip not started"
        self._token += 1
        token = str(self._token)
        self._ctrl.send({"command": command, "params": params, "token": token})
        deadline = time.monotonic() + timeout
        while True:
            response = self._ctrl.responses.get(timeout=max(0.01, deadline - time.monotonic()))
            if response.get("token") == token:
                return response

    def next_event(self, types: set[str], timeout: float = 10.0) -> dict[str, Any]:
        """The next UA event whose ``type`` is in ``types`` (others are skipped)."""
        assert self._ctrl is not None, "baresip not started"
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no baresip event {types}: {self.output()[-1500:]}")
            try:
                event = self._ctrl.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event.get("type") in types:
                return event

    def stop(self) -> None:
        """``quit``, then SIGTERM / SIGKILL by pid."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None and self._ctrl is not None:
            with contextlib.suppress(Exception):
                self.command("quit", timeout=2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if proc.poll() is None:
                os.kill(proc.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=3)
        if self._ctrl is not None:
            self._ctrl.sock.close()
        self._proc = None

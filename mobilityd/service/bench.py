"""``python -m mobilityd.service.bench [--quick]``: service timings as JSON (medians).

Measures, against the real daemon started as a subprocess with a temporary config and a
notify socket: start to READY=1, SIGHUP to READY=1, a ``status`` round trip on an open
connection, and connect + ``status`` + close. Nothing asserts on time (shared machines).
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """
[identity]
uri = "sip:bob@example.org"
[[peers]]
name = "alice"
uri = "sip:alice@example.net"
psk_file = "alice.psk"
[control]
socket = "{socket}"
"""


def _wait_ready(notify: socket.socket) -> None:
    while b"READY=1" not in notify.recv(4096):
        pass


def _status(sock: socket.socket, reader: io.BufferedReader, request_id: int) -> None:
    sock.sendall(b'{"v":1,"id":%d,"op":"status"}\n' % request_id)
    line = reader.readline()
    if b'"ok":true' not in line:
        raise RuntimeError(f"status failed: {line!r}")


def run(rounds: int, requests: int) -> dict[str, object]:
    repo = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "alice.psk").write_text(os.urandom(32).hex() + "\n")
        (base / "alice.psk").chmod(0o600)
        control = base / "control.sock"
        (base / "m.toml").write_text(CONFIG.format(socket=control))
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(base / "notify.sock"))
        notify.settimeout(60)
        env = {**os.environ, "NOTIFY_SOCKET": str(base / "notify.sock"),
               "PYTHONPATH": str(repo)}
        start_ms, reload_ms, rtt_us, connect_us = [], [], [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "mobilityd", "--config",
                                     str(base / "m.toml")], env=env,
                                    stderr=subprocess.DEVNULL)
            _wait_ready(notify)
            start_ms.append((time.perf_counter() - t0) * 1000)
            for _ in range(3):
                t0 = time.perf_counter()
                proc.send_signal(signal.SIGHUP)
                _wait_ready(notify)
                reload_ms.append((time.perf_counter() - t0) * 1000)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(control))
                reader = sock.makefile("rb")
                for i in range(requests):
                    t0 = time.perf_counter()
                    _status(sock, reader, i)
                    rtt_us.append((time.perf_counter() - t0) * 1e6)
            for i in range(requests // 4):
                t0 = time.perf_counter()
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.connect(str(control))
                    _status(sock, sock.makefile("rb"), i)
                connect_us.append((time.perf_counter() - t0) * 1e6)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        notify.close()
    return {
        "rounds": rounds,
        "start_to_ready_ms_median": round(statistics.median(start_ms), 1),
        "sighup_to_ready_ms_median": round(statistics.median(reload_ms), 2),
        "status_rtt_us_median": round(statistics.median(rtt_us), 1),
        "connect_status_close_us_median": round(statistics.median(connect_us), 1),
        "samples": {"start": len(start_ms), "reload": len(reload_ms), "status": len(rtt_us),
                    "connect": len(connect_us)},
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    quick = "--quick" in args
    print(json.dumps(run(rounds=2 if quick else 5, requests=40 if quick else 400), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

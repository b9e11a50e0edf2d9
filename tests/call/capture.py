"""Capture one of our real calls with tshark inside a test host, then read it back.

:func:`captured_call` starts ``tshark -i lo -w F -f udp`` on the host (a network
namespace, ``tests/netns.py``), runs :mod:`tests.call.call_in_netns` there, stops
tshark by its pid (SIGINT: it flushes the file) and returns the call's facts with the
pcap. :func:`tshark_json` and :func:`udp_payloads` read the capture with tshark's own
dissectors (``-d udp.port==N,sip``: the caller's SIP port is not 5060).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.netns import TestHost

REPO = Path(__file__).resolve().parents[2]
CALLER_SIP_PORT = 5062


def require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: install the Debian package {package} (scripts/setup.sh)")
    return path


def _wait_for_capture(proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    """tshark says ``Capturing on 'Loopback: lo'`` on stderr once it captures."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.5)
        if ready:
            line = proc.stderr.readline()
            seen += line
            if "Capturing on" in line:
                return
            if not line and proc.poll() is not None:
                break
    pytest.fail(f"tshark did not start capturing: {seen[-500:]}")


def captured_call(host: TestHost, tmp: Path, mode: str, *, tone: float = 1000.0,
                  seconds: float = 1.0, extra: tuple[str, ...] = ()
                  ) -> tuple[dict[str, Any], Path]:
    """Run one call of ``mode`` on ``host`` under capture; (call facts, pcap path).
    ``extra``: more options of :mod:`tests.call.call_in_netns` (faults)."""
    tshark = require("tshark", "tshark")
    pcap = tmp / f"call-{mode}.pcap"
    capture = host.popen([tshark, "-i", "lo", "-F", "pcap", "-w", str(pcap), "-f", "udp"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_capture(capture)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        call = subprocess.run(
            ["ip", "netns", "exec", host.ns, sys.executable, "-m", "tests.call.call_in_netns",
             "--mode", mode, "--tone", str(tone), "--seconds", str(seconds),
             "--caller-port", str(CALLER_SIP_PORT), *extra],
            capture_output=True, text=True, timeout=120, cwd=REPO, env=env, check=False)
        if call.returncode != 0:
            pytest.fail(f"the call in {host.ns} failed: {call.stderr[-1500:]}")
        facts: dict[str, Any] = json.loads(call.stdout)
        time.sleep(0.3)  # let the last datagrams reach the capture
    finally:
        if capture.poll() is None:
            os.kill(capture.pid, signal.SIGINT)
        try:
            capture.wait(timeout=15)
        except subprocess.TimeoutExpired:
            capture.kill()
            capture.wait()
    return facts, pcap


def tshark_json(pcap: Path, display_filter: str, fields: list[str]) -> list[dict[str, list[str]]]:
    """Each matching packet's ``fields`` (lists of strings, as tshark -T json gives)."""
    tshark = require("tshark", "tshark")
    argv = [tshark, "-r", str(pcap), "-d", f"udp.port=={CALLER_SIP_PORT},sip",
            "-Y", display_filter, "-T", "json"]
    for name in fields:
        argv += ["-e", name]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        pytest.fail(f"tshark failed: {result.stderr[-800:]}")
    packets = json.loads(result.stdout or "[]")
    return [packet["_source"]["layers"] for packet in packets]


def udp_payloads(pcap: Path, src_port: int, dst_port: int) -> list[bytes]:
    """The UDP payloads from ``src_port`` to ``dst_port``, in capture order."""
    layers = tshark_json(pcap, f"udp.srcport=={src_port} && udp.dstport=={dst_port}",
                         ["udp.payload"])
    return [bytes.fromhex(layer["udp.payload"][0].replace(":", "")) for layer in layers]

"""The media benchmark's load generator: a separate process sending SRTP to many calls.

Why a separate process pinned to another core: the load must not eat the CPU of the
process being measured. Why pre-built packets: protecting on the fly (build RTP,
``protect``, ``sendto``) made the generator itself the limit on a loaded machine, so
the receiver's figure was the generator's. The generator now SRTP-protects
``packets_per_call`` packets of every call once, at start-up (RFC 3711 §3.3, each call
with its own key from :func:`call_keys`, sequence numbers 0, 1, ... so every packet
index is new to a fresh receiver), and the timed phase only sends them round-robin to
the calls' ports. When a phase outlasts the pre-built packets it goes on protecting on
the fly (the old way, sequence numbers continuing) and says how many it sent so.
This changes the load generator, not what the receiver does per packet.

Protocol on stdin/stdout, one JSON object per line:

* started as ``python -m mobilityd.bench.media_load SPEC`` (SPEC: ``calls``,
  ``packets_per_call``, ``core``, ``host``), it builds the packets and prints
  ``{"ready": true, "source": [ip, port], "prebuilt": n, "build_s": s}``;
* each command ``{"ports": [...], "seconds": s}`` (one port per call) sends for ``s``
  seconds and answers ``{"sent", "elapsed", "prebuilt_sent", "on_the_fly_sent",
  "errors"}``; packets go from the one ``source`` socket (a call's remote address);
* end of input ends the process.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from typing import Any

import pylibsrtp

from mobilityd.media import g711
from mobilityd.media.rtp import build_rtp
from mobilityd.media.srtp import SrtpKeys
from mobilityd.media.tone import ToneGenerator

BENCH_SSRC_BASE = 0x10000
#: stop checks of the clock happen once per round of this many rounds (all calls)
ROUNDS_PER_CLOCK_CHECK = 4


def call_keys(call: int) -> SrtpKeys:
    """Deterministic per-call keys (benchmark only)."""
    digest = hashlib.sha256(f"mobilityd-bench-media-{call}".encode()).digest()
    return SrtpKeys(digest[:16], digest[16:30])


def tone_payloads() -> list[bytes]:
    """One 1 kHz tone frame of G.711: at 8 kHz, 160 samples hold whole periods."""
    return [g711.encode(ToneGenerator(1000, 0.5).read_frame())]


def pin_to_core(core: int) -> int | None:
    """Pin this process to ``core`` (modulo the cores we may use); None if not allowed."""
    try:
        available = sorted(os.sched_getaffinity(0))
        chosen = available[core % len(available)]
        os.sched_setaffinity(0, {chosen})
        return chosen
    except (AttributeError, OSError):
        return None


def sender_session(call: int) -> pylibsrtp.Session:
    keys = call_keys(call)
    return pylibsrtp.Session(pylibsrtp.Policy(
        key=keys.master_key + keys.master_salt, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
    ))


def rtp_packet(call: int, seq: int, payload: bytes) -> bytes:
    """Packet ``seq`` of call ``call`` (RFC 3550 §5.1; 160 samples per 20 ms frame)."""
    return build_rtp(0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, BENCH_SSRC_BASE + call, payload)


def prebuild(calls: int, packets_per_call: int) -> list[bytes]:
    """SRTP packets in sending order: round ``r`` holds packet ``r`` of every call."""
    payload = tone_payloads()[0]
    sessions = [sender_session(call) for call in range(calls)]
    return [
        sessions[call].protect(rtp_packet(call, seq, payload))
        for seq in range(packets_per_call)
        for call in range(calls)
    ]


class Generator:
    """Sends the pre-built packets (then protected-on-the-fly ones) to the calls."""

    def __init__(self, calls: int, packets_per_call: int, host: str) -> None:
        self.calls = calls
        self.packets_per_call = packets_per_call
        self.host = host
        self.plan = prebuild(calls, packets_per_call)
        self.payload = tone_payloads()[0]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        self.sock.bind((host, 0))

    @property
    def source(self) -> tuple[str, int]:
        name = self.sock.getsockname()
        return str(name[0]), int(name[1])

    def run(self, ports: list[int], seconds: float) -> dict[str, Any]:
        if len(ports) != self.calls:
            raise ValueError(f"{len(ports)} ports for {self.calls} calls")
        targets = [(self.host, port) for port in ports]
        sendto = self.sock.sendto
        plan, calls = self.plan, self.calls
        start = time.monotonic()
        deadline = start + seconds
        sent = errors = 0
        rounds = 0
        while rounds < self.packets_per_call:
            for packet, target in zip(plan[rounds * calls:(rounds + 1) * calls], targets,
                                      strict=True):
                try:
                    sendto(packet, target)
                except OSError:
                    errors += 1
            rounds += 1
            if rounds % ROUNDS_PER_CLOCK_CHECK == 0 and time.monotonic() >= deadline:
                break
        prebuilt_sent = rounds * calls - errors
        on_the_fly = 0
        if time.monotonic() < deadline:
            sessions = [sender_session(call) for call in range(calls)]
            seq = self.packets_per_call
            while time.monotonic() < deadline:
                for call, target in enumerate(targets):
                    packet = sessions[call].protect(rtp_packet(call, seq, self.payload))
                    try:
                        sendto(packet, target)
                    except OSError:
                        errors += 1
                    else:
                        on_the_fly += 1
                seq += 1
        sent = prebuilt_sent + on_the_fly
        return {"sent": sent, "elapsed": time.monotonic() - start,
                "prebuilt_sent": prebuilt_sent, "on_the_fly_sent": on_the_fly,
                "errors": errors}


def serve(spec: dict[str, Any]) -> int:
    pin_to_core(int(spec["core"]))
    began = time.monotonic()
    generator = Generator(int(spec["calls"]), int(spec["packets_per_call"]), str(spec["host"]))
    print(json.dumps({"ready": True, "source": list(generator.source),
                      "prebuilt": len(generator.plan), "build_s": time.monotonic() - began}),
          flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        result = generator.run([int(p) for p in command["ports"]], float(command["seconds"]))
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(serve(json.loads(sys.argv[1])))

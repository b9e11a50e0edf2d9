"""Two call agents on two test hosts (network namespaces joined by a router), each a
process started with ``ip netns exec`` (tests/call/peer.py), like two devices."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from mobilityd.media.tone import pcm_samples
from tests.call.credentials import PSK, credentials
from tests.netns import TestHost, Topology

ROOT = Path(__file__).resolve().parents[2]
ALICE_URI = "sip:alice@a.test"
BOB_URI = "sip:bob@b.test"
ALICE_IP, BOB_IP = "10.61.1.2", "10.61.2.2"


@dataclass
class CallHosts:
    alice: TestHost
    bob: TestHost
    tmp: Path


def build_hosts(topology: Topology, tmp: Path, *, delay_ms: float = 0,
                loss_pct: float = 0) -> CallHosts:
    """Alice 10.61.1.2 -- rtr -- Bob 10.61.2.2; with ``delay_ms``/``loss_pct`` Bob's
    link goes through the userspace link emulator (no sch_netem on this kernel)."""
    alice, bob, rtr = topology.add_host("calla"), topology.add_host("callb"), \
        topology.add_router("callr")
    topology.connect(alice, "a0", rtr, "ra")
    if delay_ms or loss_pct:
        topology.connect_emulated(bob, "b0", rtr, "rb", delay_ms=delay_ms,
                                  loss_pct=loss_pct, seed=7)
    else:
        topology.connect(bob, "b0", rtr, "rb")
    alice.add_address("a0", f"{ALICE_IP}/24")
    bob.add_address("b0", f"{BOB_IP}/24")
    rtr.add_address("ra", "10.61.1.1/24")
    rtr.add_address("rb", "10.61.2.1/24")
    alice.add_default_route("10.61.1.1")
    bob.add_default_route("10.61.2.1")
    for host in (alice, bob):
        host.link_up("lo")
    return CallHosts(alice, bob, tmp)


def write_credentials(tmp: Path, uri: str) -> dict[str, str]:
    """PEM key (0600), certificate and CA certificate files for ``uri``."""
    creds = credentials(uri)
    name = uri.split(":")[1].split("@", maxsplit=1)[0]
    key, cert, ca = tmp / f"{name}.key", tmp / f"{name}.crt", tmp / "ca.crt"
    key.write_bytes(creds.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    key.chmod(0o600)
    cert.write_bytes(creds.certificate.public_bytes(serialization.Encoding.PEM))
    ca.write_bytes(creds.ca.public_bytes(serialization.Encoding.PEM))
    return {"key": str(key), "cert": str(cert), "ca": str(ca)}


def peer_config(hosts: CallHosts, role: str, method: str, **extra: Any) -> dict[str, Any]:
    me, peer = (ALICE_URI, BOB_URI) if role == "caller" else (BOB_URI, ALICE_URI)
    name = "alice" if role == "caller" else "bob"
    peer_name = "bob" if role == "caller" else "alice"
    conf: dict[str, Any] = {
        "role": role, "identity": me, "peer": peer, "method": method, "psk": PSK.hex(),
        "host": ALICE_IP if role == "caller" else BOB_IP, "port": 5060,
        "peer_cert": write_credentials(hosts.tmp, peer)["cert"],
        "record": str(hosts.tmp / f"at_{name}.wav"),
        "tone": 440.0 if role == "caller" else 1000.0,
    }
    conf.update(write_credentials(hosts.tmp, me))
    if role == "caller":
        conf["peer_contact"] = [BOB_IP, 5060]
    del peer_name
    conf.update(extra)
    return conf


def _command(hosts: CallHosts, conf: dict[str, Any]) -> list[str]:
    path = hosts.tmp / f"{conf['role']}.json"
    path.write_text(json.dumps(conf))
    return [sys.executable, "-m", "tests.call.peer", "--config", str(path)]


def run_call(hosts: CallHosts, caller: dict[str, Any], callee: dict[str, Any],
             timeout: float = 60.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start the callee on Bob's host, run the caller on Alice's; both reports."""
    env_cmd = ["env", f"PYTHONPATH={ROOT}"]
    bob = hosts.bob.popen(env_cmd + _command(hosts, callee), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert bob.stdout is not None
        ready = bob.stdout.readline()
        if not ready:
            raise AssertionError(f"callee did not start: {bob.stderr.read() if bob.stderr else ''}")
        result = hosts.alice.run(env_cmd + _command(hosts, caller), timeout=timeout,
                                 check=False)
        out, err = bob.communicate(timeout=timeout)
    finally:
        if bob.poll() is None:
            bob.kill()
    assert result.returncode == 0, result.stderr[-3000:]
    assert bob.returncode == 0, err[-3000:]
    return _report(result.stdout), _report(out)


def _report(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        data = json.loads(line)
        if "report" in data:
            report: dict[str, Any] = data["report"]
            return report
    raise AssertionError(f"no report in {stdout[-500:]!r}")


def wav_pcm(path: Path) -> bytes:
    """The PCM frames of a WAV we recorded (skipping the leading silence fill)."""
    import wave

    with wave.open(str(path), "rb") as reader:
        pcm = reader.readframes(reader.getnframes())
    samples = pcm_samples(pcm)
    start = next((i for i, s in enumerate(samples) if s), len(samples))
    return pcm[2 * start:]


__all__ = ["ALICE_URI", "BOB_URI", "CallHosts", "build_hosts", "peer_config",
           "run_call", "wav_pcm"]

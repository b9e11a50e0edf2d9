"""Secure calls between two test hosts in network namespaces (issue 4 "Done when"):
each side a call agent process; PSK, PKE and DH-SIGN (RFC 3830 §3.1-§3.3) in SIP
INVITE/200 (RFC 4567, thesis §11.1); a tone each way (Alice 440 Hz, Bob 1000 Hz)
through G.711, SRTP and the router, recorded to WAV and found by Goertzel; no SRTP
authentication failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilityd.media.tone import dominant_frequency, tone_share
from tests.call.hosts import build_hosts, peer_config, run_call, wav_pcm
from tests.netns import Topology

pytestmark = pytest.mark.netns

TONES = [440.0, 697.0, 1000.0, 1336.0]


def _check_audio(report: dict, wav: Path, expected: float) -> None:  # type: ignore[type-arg]
    counters = report["counters"]
    assert counters["endpoint"]["auth_failures"] == 0
    assert counters["endpoint"]["rtp_received"] >= 40  # ~2 s of 20 ms frames, minus setup
    assert all(s["auth_failures"] == 0 for s in counters["rx"].values())
    assert report["tones"]["dominant"] == expected
    pcm = wav_pcm(wav)
    assert len(pcm) >= 2 * 8000  # at least a second of audio in the file
    assert dominant_frequency(pcm, TONES) == expected
    assert tone_share(pcm, expected) > 0.5


@pytest.mark.parametrize("method", ["psk", "pke", "dh"])
def test_secure_call_with_tones_both_ways(topology: Topology, tmp_path: Path,
                                          method: str) -> None:
    hosts = build_hosts(topology, tmp_path)
    alice, bob = run_call(hosts, peer_config(hosts, "caller", method),
                          peer_config(hosts, "callee", method))
    kinds = [e["type"] for e in alice["events"]]
    assert kinds[:2] == ["CallPlaced", "CallConnected"]
    connected = alice["events"][1]
    assert connected["secure"] is True and connected["method"] == method
    assert connected["suite"] == "AES_CM_128_HMAC_SHA1_80"
    assert [e["type"] for e in bob["events"]] == [
        "IncomingCallOffered", "CallConnected", "CallTerminated"]
    assert bob["events"][2]["by_peer"] is True
    assert alice["summary"]["secure"] and bob["summary"]["key_agreement"] == method
    _check_audio(alice, tmp_path / "at_alice.wav", 1000.0)
    _check_audio(bob, tmp_path / "at_bob.wav", 440.0)


def test_secure_call_over_a_lossy_delayed_link(topology: Topology, tmp_path: Path) -> None:
    """40 ms one-way delay and 5 % loss on Bob's link (userspace emulator): SIP
    retransmits what is lost (RFC 3261 §17), SRTP packets lost are just missing (no
    authentication failure), the tones are still found."""
    hosts = build_hosts(topology, tmp_path, delay_ms=40, loss_pct=5)
    alice, bob = run_call(hosts, peer_config(hosts, "caller", "psk", duration=3.0),
                          peer_config(hosts, "callee", "psk"))
    assert alice["events"][1]["type"] == "CallConnected"
    for report, expected in ((alice, 1000.0), (bob, 440.0)):
        counters = report["counters"]
        assert counters["endpoint"]["auth_failures"] == 0
        assert counters["endpoint"]["rtp_received"] >= 60
        assert report["tones"]["dominant"] == expected

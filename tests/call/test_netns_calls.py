"""Secure calls between two test hosts in network namespaces (issue 4 "Done when"):
each side a call agent process; PSK, PKE and DH-SIGN (RFC 3830 §3.1-§3.3) in SIP
INVITE/200 (RFC 4567, thesis §11.1); a tone each way (Alice 440 Hz, Bob 1000 Hz)
through G.711, SRTP and the router, recorded to WAV and found by Goertzel; no SRTP
authentication failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilityd.media.tone import dominant_frequency, tone_share
from mobilityd.sip.sdp import SessionDescription
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


def test_media_settings_apply_between_hosts(topology: Topology, tmp_path: Path) -> None:
    """``[media]`` other than the defaults on both hosts (docs/configuration.md): the
    media ports come from each side's range (even RTP, RTCP next, RFC 3550 §11; the
    SDP names them), the answer takes Bob's first preference that Alice offered
    (RFC 3264 §6.1: PCMA, although Alice prefers PCMU), each side sends at the other's
    ``a=ptime`` (RFC 8866 §6.4: Alice asks for 40 ms, Bob for 60 ms), and the tones
    still arrive, recorded to WAV and found."""
    hosts = build_hosts(topology, tmp_path)
    a_media = {"rtp_port_min": 20000, "rtp_port_max": 20009, "codecs": ["PCMU", "PCMA"],
               "ptime_ms": 40}
    b_media = {"rtp_port_min": 30100, "rtp_port_max": 30103, "codecs": ["PCMA", "PCMU"],
               "ptime_ms": 60}
    alice, bob = run_call(hosts, peer_config(hosts, "caller", "psk", media=a_media,
                                             duration=3.0),
                          peer_config(hosts, "callee", "psk", media=b_media))
    assert alice["events"][1]["type"] == "CallConnected"
    assert alice["summary"]["local_media"][1] == 20000
    assert bob["summary"]["local_media"][1] == 30100
    offer = SessionDescription.parse(alice["media"]["local_sdp"].encode()).media[0]
    answer = SessionDescription.parse(bob["media"]["local_sdp"].encode()).media[0]
    assert (offer.port, offer.fmts, offer.get("ptime")) == (20000, ["0", "8"], "40")
    assert (answer.port, answer.fmts, answer.get("ptime")) == (30100, ["8"], "60")
    assert offer.get("rtcp") == "20001"  # RFC 3605, the pair's odd port (mux offered too)
    for report in (alice, bob):
        assert report["media"]["payload_type"] == 8  # PCMA
    assert alice["media"]["send_ptime_ms"] == 60 and bob["media"]["send_ptime_ms"] == 40
    assert alice["media"]["received_payload_sizes"] == [320]  # Bob's 40 ms packets
    assert bob["media"]["received_payload_sizes"] == [480]  # Alice's 60 ms packets
    for report, wav, expected in ((alice, "at_alice.wav", 1000.0),
                                  (bob, "at_bob.wav", 440.0)):
        counters = report["counters"]
        assert counters["endpoint"]["auth_failures"] == 0
        assert counters["endpoint"]["rtp_received"] >= 20  # ~2.5 s of 40/60 ms packets
        pcm = wav_pcm(tmp_path / wav)
        assert len(pcm) >= 2 * 8000
        assert dominant_frequency(pcm, TONES) == expected
        assert tone_share(pcm, expected) > 0.5

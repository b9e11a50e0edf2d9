"""Policy, identity and MIKEY error paths between two namespace hosts (thesis §11.3,
§11.4; RFC 4567 §4.1.2): the SIP status and the MIKEY error each side sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests.call.credentials import other_ca
from tests.call.hosts import build_hosts, peer_config, run_call, wav_pcm
from tests.netns import Topology

pytestmark = pytest.mark.netns


def kinds(report: dict[str, Any]) -> list[str]:
    return [e["type"] for e in report["events"]]


def refused(report: dict[str, Any]) -> dict[str, Any]:
    events: list[dict[str, Any]] = [
        e for e in report["events"] if e["type"] == "CallRefused"]
    assert len(events) == 1, report["events"]
    return events[0]


def test_required_caller_and_callee_without_security_488(topology: Topology,
                                                         tmp_path: Path) -> None:
    hosts = build_hosts(topology, tmp_path)
    alice, bob = run_call(hosts, peer_config(hosts, "caller", "psk"),
                          peer_config(hosts, "callee", "psk", security="off"))
    assert refused(alice)["status"] == 488 and refused(alice)["by_peer"] is True
    assert refused(bob)["status"] == 488 and refused(bob)["mikey_error"] is None


def test_plain_caller_and_callee_requiring_security_606(topology: Topology,
                                                        tmp_path: Path) -> None:
    hosts = build_hosts(topology, tmp_path)
    alice, bob = run_call(hosts, peer_config(hosts, "caller", "psk", security="off"),
                          peer_config(hosts, "callee", "psk"))
    assert refused(alice)["status"] == 606
    assert kinds(bob) == ["CallRefused"]


def test_preferred_caller_falls_back_to_rtp(topology: Topology, tmp_path: Path) -> None:
    """Thesis §11.3: SRTP and RTP offered, the callee without security takes RTP."""
    hosts = build_hosts(topology, tmp_path)
    alice, bob = run_call(hosts, peer_config(hosts, "caller", "psk", security="preferred"),
                          peer_config(hosts, "callee", "psk", security="off"))
    connected = alice["events"][1]
    assert connected["type"] == "CallConnected" and connected["secure"] is False
    assert alice["summary"]["secure"] is False and bob["summary"]["key_agreement"] is None
    assert alice["tones"]["dominant"] == 1000.0 and bob["tones"]["dominant"] == 440.0
    assert len(wav_pcm(tmp_path / "at_bob.wav")) > 8000


def test_preferred_caller_gets_srtp_from_a_secure_callee(topology: Topology,
                                                         tmp_path: Path) -> None:
    hosts = build_hosts(topology, tmp_path)
    alice, _ = run_call(hosts, peer_config(hosts, "caller", "dh", security="preferred"),
                        peer_config(hosts, "callee", "dh", security="preferred"))
    assert alice["events"][1]["secure"] is True and alice["events"][1]["method"] == "dh"
    assert alice["counters"]["endpoint"]["auth_failures"] == 0


def test_bad_mac_in_the_offer_is_answered_488_with_mikey_error(topology: Topology,
                                                               tmp_path: Path) -> None:
    """RFC 3830 §5.3 (MAC over the I_MESSAGE fails: the PSKs differ) inside SIP:
    488 whose SDP body carries the MIKEY error message (RFC 4567 §4.1.2)."""
    hosts = build_hosts(topology, tmp_path)
    alice, bob = run_call(hosts, peer_config(hosts, "caller", "psk"),
                          peer_config(hosts, "callee", "psk", psk="ff" * 32))
    seen_by_alice, seen_by_bob = refused(alice), refused(bob)
    assert seen_by_bob["status"] == 488 and seen_by_bob["mikey_error"] == "AUTH_FAILURE"
    assert seen_by_alice["status"] == 488 and seen_by_alice["by_peer"] is True
    assert seen_by_alice["mikey_error"] == "AUTH_FAILURE"  # read from the 488's body


def test_mikey_identity_other_than_sip_identity_is_refused(topology: Topology,
                                                           tmp_path: Path) -> None:
    """DH-SIGN: Mallory (SIP From and IDi) signs with Alice's certificate (SAN alice):
    the identity MIKEY authenticated is not the SIP caller -> refused."""
    hosts = build_hosts(topology, tmp_path)
    caller = peer_config(hosts, "caller", "dh", identity="sip:mallory@a.test")
    callee = peer_config(hosts, "callee", "dh", peer="sip:mallory@a.test")
    alice, bob = run_call(hosts, caller, callee)
    assert refused(bob)["status"] == 488 and refused(bob)["mikey_error"] == "AUTH_FAILURE"
    assert refused(alice)["mikey_error"] == "AUTH_FAILURE"


def test_error_in_the_answer_ends_the_call_with_bye_carrying_mikey_error(
        topology: Topology, tmp_path: Path) -> None:
    """Thesis §11.4: the caller cannot verify the 200 OK's DH response (Bob's
    certificate is not from a CA Alice trusts): ACK, then BYE with the MIKEY error."""
    hosts = build_hosts(topology, tmp_path)
    untrusted = tmp_path / "other-ca.crt"
    untrusted.write_bytes(other_ca().public_bytes(serialization.Encoding.PEM))
    caller = peer_config(hosts, "caller", "dh")
    caller["ca"] = str(untrusted)
    alice, bob = run_call(hosts, caller, peer_config(hosts, "callee", "dh"))
    failure = refused(alice)
    assert failure["status"] == 0 and failure["mikey_error"] == "INVALID_CERT"
    assert kinds(bob) == ["IncomingCallOffered", "CallConnected", "CallTerminated"]
    ended = bob["events"][2]
    assert ended["by_peer"] is True and ended["mikey_error"] == "INVALID_CERT"

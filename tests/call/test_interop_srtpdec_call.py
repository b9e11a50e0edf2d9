"""Independent check: GStreamer's ``srtpdec`` (its own libsrtp binding) decrypts the SRTP
of one of our real calls, captured on the wire, with the master key and salt OUR MIKEY
derived for that crypto session (RFC 3830 §4.1.3 TEK/salt derivation, §6.1.1 CS ID map:
CS 1 = the caller's SSRC, CS 2 = the callee's), and the G.711 inside is the tone sent.

This proves the TEK derivation and our SRTP (RFC 3711 §4.1 AES-CM, §4.2 HMAC-SHA1)
together against someone else's code. The harness is the media tests' srtpdec helper
(``tests/media/gst_srtpdec.py``, run by the system Python with python3-gi).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mobilityd.media import g711
from mobilityd.media.rtp import RtpPacket
from mobilityd.media.tone import dominant_frequency
from tests.call.capture import captured_call, udp_payloads
from tests.netns import Topology

pytestmark = [pytest.mark.interop, pytest.mark.netns]

SYSTEM_PYTHON = "/usr/bin/python3"
HARNESS = Path(__file__).resolve().parents[1] / "media" / "gst_srtpdec.py"
AUTH = {"AES_CM_128_HMAC_SHA1_80": "hmac-sha1-80", "AES_CM_128_HMAC_SHA1_32": "hmac-sha1-32"}
CALLER_TONE, CALLEE_TONE = 1000.0, 440.0


def srtpdec(master: list[str], ssrc: int, roc: int, auth: str,
            packets: list[bytes]) -> list[bytes]:
    """The packets srtpdec authenticated and decrypted (a failure drops them)."""
    if shutil.which(SYSTEM_PYTHON) is None:
        pytest.fail(f"{SYSTEM_PYTHON} missing: install python3-gi and GStreamer (setup.sh)")
    request = {"key": "".join(master), "ssrc": ssrc, "roc": roc, "auth": auth,
               "packets": [p.hex() for p in packets]}
    result = subprocess.run([SYSTEM_PYTHON, str(HARNESS)], input=json.dumps(request),
                            capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        pytest.fail("GStreamer srtpdec harness failed (needs python3-gi, "
                    "gir1.2-gst-plugins-base-1.0, gstreamer1.0-plugins-bad): "
                    f"rc={result.returncode} {result.stderr[-800:]}")
    return [bytes.fromhex(h) for h in json.loads(result.stdout)["decrypted"]]


def _stream(facts: dict[str, Any], pcap: Path, sender: str, receiver: str) -> list[bytes]:
    return udp_payloads(pcap, facts[sender]["rtp_port"], facts[receiver]["rtp_port"])


def _tone(decrypted: list[bytes]) -> float:
    pcm = g711.decode(b"".join(RtpPacket.parse(p).payload for p in decrypted))
    return dominant_frequency(pcm, [CALLER_TONE, CALLEE_TONE, 2000.0])


@pytest.mark.parametrize("mode", ["psk", pytest.param("dh", marks=pytest.mark.slow)])
def test_srtpdec_decrypts_captured_call(topology: Topology, tmp_path: Path, mode: str) -> None:
    facts, pcap = captured_call(topology.add_host("capture"), tmp_path, mode,
                                tone=CALLER_TONE, seconds=1.0)
    auth = AUTH[facts["suite"]]
    masters = facts["srtp_master"]  # from the caller's CryptoContext.srtp_master(cs_id)
    (_, caller_ssrc, caller_roc), (_, callee_ssrc, callee_roc) = facts["cs_map"]

    forward = _stream(facts, pcap, "caller", "callee")
    assert len(forward) > 20
    decrypted = srtpdec(masters["1"], caller_ssrc, caller_roc, auth, forward)
    assert len(decrypted) == len(forward), "srtpdec rejected some of our packets"
    assert {RtpPacket.parse(p).ssrc for p in decrypted} == {caller_ssrc}
    assert _tone(decrypted) == CALLER_TONE

    backward = _stream(facts, pcap, "callee", "caller")
    decrypted_back = srtpdec(masters["2"], callee_ssrc, callee_roc, auth, backward)
    assert len(decrypted_back) == len(backward) > 20
    assert _tone(decrypted_back) == CALLEE_TONE

    # Negative control: the other crypto session's key authenticates nothing.
    assert srtpdec(masters["2"], caller_ssrc, caller_roc, auth, forward[:5]) == []

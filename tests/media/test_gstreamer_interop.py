"""Independent check: GStreamer's srtpdec (gstreamer1.0-plugins-bad, its own libsrtp
binding) decrypts the SRTP we protect, for both suites and a stream whose ROC is 3
(RFC 3711 §3.3.1), and the G.711 tone inside is intact."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mobilityd.media import g711
from mobilityd.media.rtp import RtpPacket, build_rtp
from mobilityd.media.srtp import Direction, SrtpKeys, SrtpSession, SrtpSuite
from mobilityd.media.tone import ToneGenerator, dominant_frequency

pytestmark = pytest.mark.interop

SYSTEM_PYTHON = "/usr/bin/python3"
HELPER = Path(__file__).with_name("gst_srtpdec.py")
SSRC = 0x5EC0DE01
AUTH_NAMES = {
    SrtpSuite.AES_CM_128_HMAC_SHA1_80: "hmac-sha1-80",
    SrtpSuite.AES_CM_128_HMAC_SHA1_32: "hmac-sha1-32",
}


def srtpdec(keys: SrtpKeys, roc: int, packets: list[bytes]) -> list[bytes]:
    """Run the helper under the system Python with a timeout; fail clearly if missing."""
    if shutil.which(SYSTEM_PYTHON) is None:
        pytest.fail(f"{SYSTEM_PYTHON} missing: install python3-gi and GStreamer (setup.sh)")
    request = {
        "key": (keys.master_key + keys.master_salt).hex(),
        "ssrc": SSRC,
        "roc": roc,
        "auth": AUTH_NAMES[keys.suite],
        "packets": [p.hex() for p in packets],
    }
    result = subprocess.run(
        [SYSTEM_PYTHON, str(HELPER)], input=json.dumps(request), capture_output=True,
        text=True, timeout=60, check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            "GStreamer srtpdec helper failed (needs python3-gi, gir1.2-gst-plugins-base-1.0, "
            f"gstreamer1.0-plugins-bad): rc={result.returncode} {result.stderr[-800:]}"
        )
    return [bytes.fromhex(h) for h in json.loads(result.stdout)["decrypted"]]


def protected_tone(keys: SrtpKeys, roc: int) -> tuple[list[bytes], list[bytes]]:
    sender = SrtpSession(keys, Direction.OUTBOUND)
    if roc:
        sender.set_roc(SSRC, roc)
    tone = ToneGenerator(1000, 0.5)
    plain = [build_rtp(0, (65530 + n) % 65536, n * 160, SSRC, g711.encode(tone.read_frame()))
             for n in range(12)]  # crosses 65535 -> 0: ROC roc -> roc + 1 on the way
    return plain, [sender.protect(p) for p in plain]


@pytest.mark.parametrize("suite", list(SrtpSuite))
@pytest.mark.parametrize("roc", [0, 3])
def test_srtpdec_decrypts_our_stream(suite: SrtpSuite, roc: int) -> None:
    keys = SrtpKeys(bytes.fromhex("00112233445566778899aabbccddeeff"),
                    bytes.fromhex("0102030405060708090a0b0c0d0e"), suite)
    plain, protected = protected_tone(keys, roc)
    decrypted = srtpdec(keys, roc, protected)
    assert decrypted == plain
    pcm = g711.decode(b"".join(RtpPacket.parse(p).payload for p in decrypted))
    assert dominant_frequency(pcm, [440, 1000, 2000]) == 1000


def test_srtpdec_rejects_wrong_roc() -> None:
    """Negative control: told ROC 0 for a ROC 3 stream, srtpdec authenticates nothing."""
    keys = SrtpKeys(bytes(range(16)), bytes(range(14)))
    _, protected = protected_tone(keys, 3)
    assert srtpdec(keys, 0, protected[:4]) == []

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


def test_srtpdec_with_mikey_derived_keys() -> None:
    """Keys from a MIKEY PSK exchange (RFC 3830 §4.1.3 TEK/salt derivation), stream at the
    CS ID map's ROC 3: srtpdec given the same master key/salt and ROC decrypts it."""
    import random

    from mobilityd.media.keying import keys_for_crypto_session, session_for
    from mobilityd.mikey.payloads import SrtpCsEntry
    from mobilityd.mikey.session import PskInitiator, Responder

    psk, now = bytes(range(32)), 1_800_000_000.0
    initiator = PskInitiator(psk=psk, local_id=b"sip:a@x", peer_id=b"sip:b@x",
                             cs_map=[SrtpCsEntry(0, SSRC, 3)])
    done = Responder(local_id=b"sip:b@x", psk=psk).receive(
        initiator.start(now, random.Random(1).randbytes), now, random.Random(2).randbytes)
    assert done.reply is not None
    context = initiator.receive_response(done.reply, now)
    sender = session_for(context, Direction.OUTBOUND, [SSRC])
    tone = ToneGenerator(1000, 0.5)
    plain = [build_rtp(0, n, n * 160, SSRC, g711.encode(tone.read_frame())) for n in range(8)]
    protected = [sender.protect(p) for p in plain]
    assert srtpdec(keys_for_crypto_session(context, 1), 3, protected) == plain

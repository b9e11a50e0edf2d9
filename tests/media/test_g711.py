"""G.711 µ-law/A-law (ITU-T G.711) against known code points, the stdlib audioop of
Python 3.11 as an independent implementation, and the quantiser's error bound."""

from __future__ import annotations

import warnings
from array import array

import pytest

from mobilityd.media import g711
from mobilityd.media.errors import G711Error
from mobilityd.media.g711 import G711PayloadType

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop", reason="audioop (Python <= 3.12) is the reference")

ALL_SAMPLES = array("h", range(-32768, 32768)).tobytes()
ALL_CODES = bytes(range(256))


def test_known_code_points() -> None:
    """G.711: µ-law silence is 0xFF, A-law silence is 0xD5; the end points of the tables."""
    assert g711.encode(b"\x00\x00", G711PayloadType.PCMU) == b"\xff"
    assert g711.encode(b"\x00\x00", G711PayloadType.PCMA) == b"\xd5"
    assert g711.ulaw_decode_sample(0x00) == -32124 and g711.ulaw_decode_sample(0x80) == 32124
    assert g711.alaw_decode_sample(0xD5) == 8 and g711.alaw_decode_sample(0x55) == -8
    assert g711.alaw_decode_sample(0xAA) == 32256 and g711.alaw_decode_sample(0x2A) == -32256


@pytest.mark.parametrize("law", list(G711PayloadType))
def test_decode_matches_audioop(law: G711PayloadType) -> None:
    reference = audioop.ulaw2lin if law is G711PayloadType.PCMU else audioop.alaw2lin
    assert g711.decode(ALL_CODES, law) == reference(ALL_CODES, 2)


def test_alaw_encode_matches_audioop_everywhere() -> None:
    assert g711.encode(ALL_SAMPLES, G711PayloadType.PCMA) == audioop.lin2alaw(ALL_SAMPLES, 2)


def test_ulaw_encode_matches_audioop_for_non_negative_and_g191_symmetry() -> None:
    """audioop rounds negative µ-law inputs differently from ITU-T G.191's reference
    (which uses the ones' complement -x-1); we follow G.191: code(x) = code(-x-1) ^ 0x80."""
    encoded = g711.encode(ALL_SAMPLES, G711PayloadType.PCMU)
    reference = audioop.lin2ulaw(ALL_SAMPLES, 2)
    assert encoded[32768:] == reference[32768:]
    for x in range(-32768, 0):
        assert encoded[x + 32768] == encoded[-x - 1 + 32768] ^ 0x80


@pytest.mark.parametrize("law", list(G711PayloadType))
def test_round_trip_code_points_and_error_bound(law: G711PayloadType) -> None:
    decoded = g711.decode(ALL_CODES, law)
    assert g711.decode(g711.encode(decoded, law), law) == decoded
    levels = array("h", g711.decode(g711.encode(ALL_SAMPLES, law), law))
    for x, y in zip(range(-32768, 32768), levels, strict=True):
        # half the biggest step (1024 in segment 7 of either law), outside clipping
        assert abs(x - y) <= 512 or abs(x) > 32124


def test_odd_pcm_rejected() -> None:
    with pytest.raises(G711Error):
        g711.encode(b"\x00")

"""G.711 µ-law and A-law (ITU-T Recommendation G.711, 1988), our own table code.

PCM is 16-bit signed little-endian mono (as the stdlib ``wave`` module reads it);
G.711 is one octet per sample. The encoders follow G.711's segment tables (µ-law:
bias 33 on 14-bit magnitude, §"µ-law"; A-law: 13-bit magnitude, even bits inverted
with 0x55, §"A-law") and are exact inverses of the decoders on every code point.
RTP payload types: PCMU = 0, PCMA = 8 (RFC 3551 §6, 8000 Hz, 20 ms = 160 octets).
"""

from __future__ import annotations

import sys
from array import array
from enum import IntEnum
from functools import cache

from mobilityd.media.errors import G711Error

_MU_BIAS = 0x84  # 33 << 2: the µ-law bias on the 16-bit scale
_MU_CLIP = 32635


class G711PayloadType(IntEnum):
    """Static RTP payload types of G.711 (RFC 3551 §6 Table 4)."""

    PCMU = 0
    PCMA = 8


def ulaw_encode_sample(sample: int) -> int:
    """One 16-bit linear sample to a µ-law octet (G.711 µ-law, sign + 3-bit segment +
    4-bit step, all bits inverted).

    Negative samples use the ones' complement magnitude (-x - 1), as the ITU-T G.191
    reference ``ulaw_compress`` does, so the quantiser is symmetric around -1/2.
    """
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample - 1 if sample < 0 else sample, _MU_CLIP) + _MU_BIAS
    segment = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (segment + 3)) & 0x0F
    return ~(sign | (segment << 4) | mantissa) & 0xFF


def ulaw_decode_sample(code: int) -> int:
    """One µ-law octet to a 16-bit linear sample (G.711 µ-law decoding table)."""
    code = ~code & 0xFF
    magnitude = ((((code & 0x0F) << 3) + _MU_BIAS) << ((code >> 4) & 0x07)) - _MU_BIAS
    return -magnitude if code & 0x80 else magnitude


def alaw_encode_sample(sample: int) -> int:
    """One 16-bit linear sample to an A-law octet (G.711 A-law, even bits XOR 0x55)."""
    sign = 0x80 if sample >= 0 else 0
    magnitude = min((sample if sample >= 0 else -sample - 1) >> 3, 0x0FFF)
    if magnitude < 32:
        code = magnitude >> 1
    else:
        segment = magnitude.bit_length() - 5
        code = (segment << 4) | ((magnitude >> segment) & 0x0F)
    return (sign | code) ^ 0x55


def alaw_decode_sample(code: int) -> int:
    """One A-law octet to a 16-bit linear sample (G.711 A-law decoding table)."""
    code ^= 0x55
    segment = (code >> 4) & 0x07
    value = ((code & 0x0F) << 4) + 8
    if segment:
        value = (value + 0x100) << (segment - 1)
    return value if code & 0x80 else -value


@cache
def _decode_table(law: G711PayloadType) -> tuple[bytes, ...]:
    decode = ulaw_decode_sample if law is G711PayloadType.PCMU else alaw_decode_sample
    return tuple(decode(code).to_bytes(2, "little", signed=True) for code in range(256))


@cache
def encode_table(law: G711PayloadType) -> bytes:
    """All 65536 16-bit samples (indexed as unsigned) to their G.711 octet.

    Both laws only look at the top bits (µ-law: ``s >> 2``, the 14-bit sample of
    G.711; A-law: ``s >> 3``, the 13-bit sample), so the table is computed on that
    domain and each entry repeated; built once, on first use (or by
    :class:`~mobilityd.media.pacing.G711Encoder` at call setup).
    """
    if law is G711PayloadType.PCMU:
        encode, shift = ulaw_encode_sample, 2
    else:
        encode, shift = alaw_encode_sample, 3
    entries = 1 << (16 - shift)
    half = entries // 2
    coarse = bytes(
        encode((index - entries if index >= half else index) << shift) for index in range(entries)
    )
    table = bytearray(65536)
    step = 1 << shift
    for offset in range(step):
        table[offset::step] = coarse
    return bytes(table)


def _samples(pcm: bytes) -> array[int]:
    if len(pcm) % 2:
        raise G711Error(f"16-bit PCM must have an even length, got {len(pcm)} octets")
    samples = array("H")
    samples.frombytes(pcm)
    if sys.byteorder != "little":  # pragma: no cover - we run on little-endian hosts
        samples.byteswap()
    return samples


def encode(pcm: bytes, law: G711PayloadType = G711PayloadType.PCMU) -> bytes:
    """16-bit little-endian PCM to G.711 octets (one per sample)."""
    table = encode_table(law)
    return bytes(table[s] for s in _samples(pcm))


def decode(data: bytes, law: G711PayloadType = G711PayloadType.PCMU) -> bytes:
    """G.711 octets to 16-bit little-endian PCM."""
    table = _decode_table(law)
    return b"".join(table[code] for code in data)

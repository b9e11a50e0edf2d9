"""Test signals: a phase-continuous sine generator and a Goertzel tone detector.

The detector lets tests check that "the received tone is there at the right
frequency" (issue 4) after G.711 coding, SRTP and the network. Goertzel's algorithm
evaluates one DFT bin in O(N): s[n] = x[n] + 2cos(w) s[n-1] - s[n-2], and
|X(k)|^2 = s1^2 + s2^2 - 2cos(w) s1 s2 at the end.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

from mobilityd.media.errors import MediaLocalError

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz (RFC 3551 §4.5 ptime default for G.711)


class ToneGenerator:
    """Sine of ``frequency`` Hz and ``amplitude`` (fraction of full scale, 0..1),
    16-bit little-endian PCM; successive frames continue the phase."""

    def __init__(
        self, frequency: float, amplitude: float = 0.5, sample_rate: int = SAMPLE_RATE
    ) -> None:
        if not 0 < frequency < sample_rate / 2:
            raise MediaLocalError(f"frequency {frequency} Hz not below Nyquist ({sample_rate})")
        if not 0 <= amplitude <= 1:
            raise MediaLocalError(f"amplitude {amplitude} not within 0..1")
        self.frequency = frequency
        self.amplitude = amplitude
        self.sample_rate = sample_rate
        self._position = 0

    def frame(self, samples: int = FRAME_SAMPLES) -> bytes:
        """The next ``samples`` samples as PCM."""
        step = 2 * math.pi * self.frequency / self.sample_rate
        peak = self.amplitude * 32767
        start = self._position
        self._position += samples
        out = array("h", (round(peak * math.sin(step * (start + n))) for n in range(samples)))
        return out.tobytes()

    def read_frame(self) -> bytes:
        """One 20 ms frame (the audio-source protocol of :mod:`mobilityd.media.pacing`)."""
        return self.frame()


def pcm_samples(pcm: bytes) -> array[int]:
    """16-bit little-endian PCM octets to a sample array."""
    if len(pcm) % 2:
        raise MediaLocalError("16-bit PCM must have an even length")
    samples = array("h")
    samples.frombytes(pcm)
    return samples


def goertzel_power(samples: Iterable[int], frequency: float, sample_rate: int = SAMPLE_RATE
                   ) -> tuple[float, float, int]:
    """(power at ``frequency``, total energy, N): |X(f)|^2 by Goertzel and sum x^2."""
    coefficient = 2 * math.cos(2 * math.pi * frequency / sample_rate)
    s1 = s2 = 0.0
    energy = 0.0
    count = 0
    for x in samples:
        s1, s2 = x + coefficient * s1 - s2, s1
        energy += x * x
        count += 1
    return s1 * s1 + s2 * s2 - coefficient * s1 * s2, energy, count


def tone_share(pcm: bytes, frequency: float, sample_rate: int = SAMPLE_RATE) -> float:
    """Share (0..~1) of the signal's energy that sits at ``frequency``.

    For a pure sine on the analysed frequency, 2|X(f)|^2 / (N sum x^2) is 1 (Parseval).
    """
    power, energy, count = goertzel_power(pcm_samples(pcm), frequency, sample_rate)
    if energy == 0 or count == 0:
        return 0.0
    return 2 * power / (count * energy)


def dominant_frequency(
    pcm: bytes, candidates: Iterable[float], sample_rate: int = SAMPLE_RATE
) -> float:
    """The candidate frequency holding the largest share of the energy."""
    return max(candidates, key=lambda f: tone_share(pcm, f, sample_rate))

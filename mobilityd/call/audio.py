"""Audio sources and sinks of a call: tone generator or WAV player in, WAV recorder and
a tone monitor (Goertzel, :mod:`mobilityd.media.tone`) out.

Sources give frames of the call's packet time (``a=ptime``, RFC 8866 §6.4): 8 samples
per millisecond at G.711's 8 kHz (RFC 3551 §4.5.14), 160 for the default 20 ms."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mobilityd.media.pacing import AudioSource
from mobilityd.media.tone import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    ToneGenerator,
    dominant_frequency,
    tone_share,
)
from mobilityd.media.wav import WavPlayer, WavRecorder

__all__ = ["AudioOptions", "PcmTee", "ToneMonitor", "samples_for_ptime", "silence_source"]

FRAME_BYTES = 2 * FRAME_SAMPLES  # 20 ms of 16-bit PCM at 8 kHz


def samples_for_ptime(ptime_ms: int) -> int:
    """Samples in one packet of ``ptime_ms`` at 8 kHz (RFC 3551 §4.5.14)."""
    return ptime_ms * SAMPLE_RATE // 1000


@dataclass(frozen=True)
class AudioOptions:
    """What a call plays and records: a tone (Hz) or a WAV file (8 kHz mono 16-bit);
    ``record_to`` a WAV path for what we receive. Nothing given: silence, no file."""

    tone_hz: float | None = None
    play_wav: Path | None = None
    record_to: Path | None = None

    def source(self, frame_samples: int = FRAME_SAMPLES) -> AudioSource:
        """Frames of ``frame_samples`` samples (:func:`samples_for_ptime`)."""
        if self.play_wav is not None:
            return WavPlayer(self.play_wav, frame_samples=frame_samples, loop=True)
        if self.tone_hz is not None:
            return _ToneFrames(ToneGenerator(self.tone_hz, 0.5), frame_samples)
        return silence_source(frame_samples)

    def recorder(self) -> WavRecorder | None:
        return WavRecorder(self.record_to) if self.record_to is not None else None


class _ToneFrames:
    def __init__(self, generator: ToneGenerator, samples: int) -> None:
        self.generator = generator
        self.samples = samples

    def read_frame(self) -> bytes:
        return self.generator.frame(self.samples)


class _Silence:
    def __init__(self, samples: int) -> None:
        self.frame = bytes(2 * samples)

    def read_frame(self) -> bytes:
        return self.frame


def silence_source(frame_samples: int = FRAME_SAMPLES) -> AudioSource:
    return _Silence(frame_samples)


class ToneMonitor:
    """Keeps the last ``seconds`` of received PCM to say which tone is there (whatever
    the frame size: the oldest frames go once more than ``seconds`` are kept)."""

    def __init__(self, seconds: float = 5.0) -> None:
        self._frames: deque[bytes] = deque()
        self._limit = max(2, 2 * int(seconds * SAMPLE_RATE))
        self._kept = 0
        self.frames = 0

    def write_frame(self, pcm: bytes) -> None:
        self._frames.append(pcm)
        self._kept += len(pcm)
        while self._kept - len(self._frames[0]) >= self._limit:
            self._kept -= len(self._frames.popleft())
        self.frames += 1

    def pcm(self) -> bytes:
        return b"".join(self._frames)

    def dominant(self, candidates: Iterable[float]) -> float | None:
        """The strongest of ``candidates`` in the kept audio (None: nothing received)."""
        pcm = self.pcm()
        return dominant_frequency(pcm, list(candidates)) if pcm else None

    def share(self, frequency: float) -> float:
        pcm = self.pcm()
        return tone_share(pcm, frequency) if pcm else 0.0


class PcmTee:
    """A PCM writer feeding several writers (recorder and monitor)."""

    def __init__(self, *writers: ToneMonitor | WavRecorder) -> None:
        self.writers = writers

    def write_frame(self, pcm: bytes) -> None:
        for writer in self.writers:
            writer.write_frame(pcm)
